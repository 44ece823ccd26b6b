// Request bodies at the edge (issue #15, findings 3 and 6), in workerd:
//
// - `max_body` holds for a body without a length (HTTP/2 and HTTP/3 need neither
//   Content-Length nor Transfer-Encoding). An entry in front of the edge hands it such a request,
//   built in the runtime (h2entry.mjs says why not over the local HTTP/1.1 or a service
//   binding). Past the limit within the shell's 1 MiB buffer: 413 and the origin is never
//   asked; past it later: 413 and the origin sees an aborted upload.
// - Failover holds a body for its second attempt up to 1 MiB only: a larger PUT is sent once.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { json, jsonLines, one, request, startEdge, startOrigin } from "./harness.mjs";

const HOST = { host: "app.test" };
let blue;
let green;
let edge;

before(async () => {
  [blue, green] = await Promise.all([startOrigin("blue"), startOrigin("green")]);
  const vars = { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}`, EDGE_ACTIVE_ORIGIN: "blue", EDGE_CANARY_PERCENT: "0" };
  edge = await startEdge({ main: "tests/e2e/h2entry.mjs", vars });
});

after(async () => {
  await Promise.all([edge?.stop(), blue?.stop(), green?.stop()]);
});

/** `size` bytes without a length, handed to the edge as an HTTP/2 body; the edge's answer. */
async function streamed(path, size, method = "POST") {
  const res = await request(edge.url, "GET", `/__h2/send?method=${method}&path=${encodeURIComponent(path)}&size=${size}`, { headers: HOST });
  assert.equal(res.status, 200, res.body.toString());
  return json(res);
}

const seen = async (origin, path) => json(await request(origin.url, "GET", "/__demo/requests")).paths[path] ?? 0;

test("the client's body reaches the edge with no length header", async () => {
  const r = await streamed("/__echo/open", 10_000);
  assert.ok(!r.request_headers.includes("content-length") && !r.request_headers.includes("transfer-encoding"), JSON.stringify(r.request_headers));
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).body_bytes, 10_000, "an unlimited route forwards it whole");
});

test("under max_body: forwarded whole", async () => {
  const r = await streamed("/__echo/capped/ok", 64 * 1024);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).body_bytes, 64 * 1024);
});

test("past max_body before anything is sent: 413, the origin never asked", async () => {
  const before = await seen(blue, "/__echo/capped/big");
  const r = await streamed("/__echo/capped/big", 64 * 1024 + 1);
  assert.equal(r.status, 413, r.body);
  assert.equal(r.headers["content-type"], "application/problem+json");
  const problem = JSON.parse(r.body);
  assert.equal(problem.type, "https://edgeguard.dev/problems/payload-too-large");
  assert.match(problem.detail, /max_body of 65536 bytes before anything was sent/);
  assert.equal(await seen(blue, "/__echo/capped/big"), before);
});

test("past max_body while streaming: 413, the origin saw an aborted upload", async () => {
  const before = await seen(blue, "/__echo/large/big");
  const r = await streamed("/__echo/large/big", 3 * 1024 * 1024);
  assert.equal(r.status, 413, r.body);
  assert.match(JSON.parse(r.body).detail, /max_body of 2097152 bytes while it was sent; the origin got an aborted upload/);
  assert.equal(await seen(blue, "/__echo/large/big"), before + 1, "the origin got the request, not the whole body");
  const fine = await streamed("/__echo/large/fine", 2 * 1024 * 1024);
  assert.equal(fine.status, 200);
  assert.equal(JSON.parse(fine.body).body_bytes, 2 * 1024 * 1024);
});

test("the log line says what happened", async () => {
  await streamed("/__echo/capped/logged", 100_000);
  await new Promise((r) => setTimeout(r, 200));
  const line = jsonLines(edge).find((l) => l.msg === "request" && l.path === "/__echo/capped/logged");
  assert.deepEqual([line.status, line.action, line.reason], [413, "reject", "payload_too_large"]);
});

test("failover holds a body up to 1 MiB: a larger PUT is sent once", async () => {
  await request(blue.url, "POST", "/__demo/fail?status=500");
  try {
    const small = await request(edge.url, "PUT", "/__echo/put", { headers: { ...HOST, "content-length": "1000" }, body: Buffer.alloc(1000, 1) });
    assert.equal(small.status, 200);
    assert.equal(one(small, "x-origin-name"), "green", "failed over with its body");
    assert.equal(json(small).body_bytes, 1000);
    const size = 1024 * 1024 + 1;
    const large = await request(edge.url, "PUT", "/__echo/put", { headers: { ...HOST, "content-length": String(size) }, body: Buffer.alloc(size, 1) });
    assert.equal(large.status, 500, "not held for a second attempt");
    assert.equal(one(large, "x-origin-name"), "blue");
  } finally {
    await request(blue.url, "POST", "/__demo/fail?status=0");
  }
});
