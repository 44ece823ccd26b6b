// Fleet behaviour in workerd: one global limit enforced across two worker instances sharing
// one Durable Object namespace (and a local one that is not), on_error when the limiter is
// gone, the canary split over a thousand clients, sticky lanes, and failover.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { one, request, startEdge, startOrigin } from "./harness.mjs";

const MAIN = "build/edge-test/index.mjs";
const HOST = "app.test";
let blue;
let green;
let a;
let b;

before(async () => {
  [blue, green] = await Promise.all([startOrigin("blue"), startOrigin("green")]);
  const vars = { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}` };
  a = await startEdge({ main: MAIN, vars });
  b = await startEdge({ main: MAIN, vars, config: "tests/e2e/wrangler.peer.toml" });
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop(), blue?.stop(), green?.stop()]);
});

function client(ip) {
  return { host: HOST, "cf-connecting-ip": ip, cookie: "eg_lane=blue" };
}

test("a global limit holds fleet-wide: 3 clients × 16 requests spread over two instances", async () => {
  for (const ip of ["198.51.100.61", "198.51.100.62", "198.51.100.63"]) {
    let admitted = 0;
    const remaining = [];
    for (let i = 0; i < 16; i++) {
      const res = await request(i % 2 ? a.url : b.url, "GET", "/g/x", { headers: client(ip) });
      if (res.status === 200) {
        admitted++;
        remaining.push(Number(/r=(\d+)/.exec(one(res, "ratelimit"))[1]));
      } else {
        assert.equal(res.status, 429);
        assert.ok(Number(one(res, "retry-after")) >= 1);
      }
    }
    assert.equal(admitted, 10, `client ${ip}: exactly the limit, whichever instance it hits`);
    assert.deepEqual(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], "one counter, shared by both instances");
  }
});

test("the same rate with scope = local is counted per instance (2 × the limit)", async () => {
  let admitted = 0;
  for (let i = 0; i < 24; i++) {
    const res = await request(i % 2 ? a.url : b.url, "GET", "/l/x", { headers: client("198.51.100.70") });
    admitted += res.status === 200 ? 1 : 0;
  }
  assert.equal(admitted, 20);
});

test("limiter unreachable: on_error = allow admits, on_error = deny refuses", async () => {
  const nodo = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}` }, config: "tests/e2e/wrangler.nodo.toml" });
  try {
    for (let i = 0; i < 12; i++) {
      const res = await request(nodo.url, "GET", "/g/x", { headers: client("198.51.100.80") });
      assert.equal(res.status, 200, "allow: never a 500, never a refusal");
    }
    const denied = await request(nodo.url, "GET", "/strict/x", { headers: client("198.51.100.80") });
    assert.equal(denied.status, 429);
    assert.equal(one(denied, "retry-after"), "1");
  } finally {
    await nodo.stop();
  }
});

test("canary at 5 %: within ±2 points over 1 000 distinct clients; sticky clients keep their lane", async () => {
  const edge = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}`, EDGE_CANARY_PERCENT: "5" } });
  try {
    let toGreen = 0;
    const lanes = [];
    for (let i = 0; i < 1000; i++) {
      const ip = `10.${(i >> 8) & 255}.${i & 255}.7`;
      const res = await request(edge.url, "GET", "/page", { headers: { host: HOST, "cf-connecting-ip": ip } });
      const lane = one(res, "x-origin-name");
      if (lane === "green") toGreen++;
      if (i < 60) lanes.push([ip, res.headers["set-cookie"].find((c) => c.startsWith("eg_lane=")).split(";")[0], lane]);
    }
    const percent = toGreen / 10;
    assert.ok(Math.abs(percent - 5) <= 2, `${percent} % went to green`);
    for (const [ip, cookie, lane] of lanes) {
      for (let j = 0; j < 3; j++) {
        const res = await request(edge.url, "GET", "/page", { headers: { host: HOST, "cf-connecting-ip": ip, cookie } });
        assert.equal(one(res, "x-origin-name"), lane, "a sticky client stays on its lane");
      }
    }
  } finally {
    await edge.stop();
  }
});

test("green answering 500: GETs fail over to blue once, POSTs do not", async () => {
  const edge = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}`, EDGE_ACTIVE_ORIGIN: "green", EDGE_CANARY_PERCENT: "0" } });
  await request(green.url, "POST", "/__demo/fail?status=500");
  try {
    const get = await request(edge.url, "GET", "/page", { headers: { host: HOST } });
    assert.equal(get.status, 200);
    assert.equal(one(get, "x-origin-name"), "blue");
    assert.match(one(get, "server-timing"), /failover;desc="green 500 -> blue"/);
    const post = await request(edge.url, "POST", "/api/echo", { headers: { host: HOST, "content-length": "2" }, body: "{}" });
    assert.equal(post.status, 500, "a POST is never sent twice");
    assert.equal(one(post, "x-origin-name"), "green");
  } finally {
    await request(green.url, "POST", "/__demo/fail?status=0");
    await edge.stop();
  }
});

test("green refusing connections: GETs are served by blue", async () => {
  const edge = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `blue=${blue.url},green=http://127.0.0.1:1`, EDGE_ACTIVE_ORIGIN: "green", EDGE_CANARY_PERCENT: "0" } });
  try {
    const first = await request(edge.url, "GET", "/page", { headers: { host: HOST } });
    assert.equal(first.status, 200);
    assert.equal(one(first, "x-origin-name"), "blue");
    for (let i = 0; i < 5; i++) {
      const res = await request(edge.url, "GET", "/page", { headers: { host: HOST } });
      assert.equal(one(res, "x-origin-name"), "blue");
    }
  } finally {
    await edge.stop();
  }
});

test("a global limit survives a restart of the runtime: no fresh burst", async () => {
  // Its own edge and local state, restarted: wrangler dev stops (workerd and every Durable
  // Object with it) and starts again on the same state directory.
  const state = mkdtempSync(path.join(tmpdir(), "edgeguard-restart-"));
  const vars = { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}` };
  const ip = "198.51.100.90";
  try {
    let edge = await startEdge({ main: MAIN, vars, persistTo: state });
    let admitted = 0;
    for (let i = 0; i < 12; i++) admitted += (await request(edge.url, "GET", "/g/x", { headers: client(ip) })).status === 200 ? 1 : 0;
    assert.equal(admitted, 10, "the burst, then refusals");
    const stopped = Date.now();
    await edge.stop();
    edge = await startEdge({ main: MAIN, vars, persistTo: state });
    try {
      // 10 per minute: one request back every 6 s of the restart, not a fresh burst of 10.
      const earned = Math.floor((Date.now() - stopped) / 6000) + 1;
      let after = 0;
      for (let i = 0; i < 10; i++) after += (await request(edge.url, "GET", "/g/x", { headers: client(ip) })).status === 200 ? 1 : 0;
      assert.ok(after <= earned && after < 10, `${after} admitted after a restart that earned at most ${earned}`);
      // Another client, never seen: its full burst.
      let fresh = 0;
      for (let i = 0; i < 10; i++) fresh += (await request(edge.url, "GET", "/g/x", { headers: client("198.51.100.91") })).status === 200 ? 1 : 0;
      assert.equal(fresh, 10);
    } finally {
      await edge.stop();
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});
