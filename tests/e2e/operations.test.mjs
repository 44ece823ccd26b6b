// Operational paths of the worker with tests/e2e/policy.toml: IP rules, origin timeouts and
// failures, canary lanes, health pass and fail, and the rollback levers in worker vars.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { json, one, request, startEdge, startOrigin } from "./harness.mjs";

const MAIN = "build/edge-test/index.mjs";
const HOST = { host: "app.test" };
let blue;
let green;
let edge;

before(async () => {
  [blue, green] = await Promise.all([startOrigin("blue"), startOrigin("green")]);
  edge = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}` } });
});

after(async () => {
  await Promise.all([edge?.stop(), blue?.stop(), green?.stop()]);
});

test("ip_allow: 403 problem+json outside the list, forwarded inside", async () => {
  const refused = await request(edge.url, "GET", "/ops/x", { headers: { ...HOST, "cf-connecting-ip": "192.0.2.1" } });
  assert.equal(refused.status, 403);
  assert.equal(json(refused).type, "https://edgeguard.dev/problems/forbidden");
  const allowed = await request(edge.url, "GET", "/ops/x", { headers: { ...HOST, "cf-connecting-ip": "203.0.113.9", cookie: "eg_lane=blue" } });
  assert.equal(allowed.status, 200);
});

test("a slow origin gets 504 at the origin's timeout, never a hang", async () => {
  const began = Date.now();
  const res = await request(edge.url, "GET", "/slow?ms=5000", { headers: HOST });
  const took = Date.now() - began;
  assert.equal(res.status, 504, res.body.toString());
  assert.equal(json(res).type, "https://edgeguard.dev/problems/origin-timeout");
  assert.ok(took >= 900 && took < 4000, `answered in ${took} ms`);
  assert.match(one(res, "server-timing"), /origin-error;desc="timeout"/);
  assert.equal(one(res, "x-frame-options"), "SAMEORIGIN", "edge answers carry the security headers");
});

test("an origin that resets the connection gets 502", async () => {
  const res = await request(edge.url, "GET", "/drop", { headers: HOST });
  assert.equal(res.status, 502, res.body.toString());
  assert.equal(json(res).type, "https://edgeguard.dev/problems/origin-unreachable");
});

test("origin 500s pass through with the edge's headers", async () => {
  const res = await request(edge.url, "GET", "/fail", { headers: HOST });
  assert.equal(res.status, 500);
  assert.equal(res.headers["x-powered-by"], undefined);
});

test("canary: new clients are split and pinned by a Secure HttpOnly lane cookie", async () => {
  const seen = { blue: 0, green: 0 };
  for (let i = 0; i < 40; i++) {
    const res = await request(edge.url, "GET", "/page", { headers: HOST });
    assert.equal(res.status, 200);
    const lane = one(res, "x-origin-name");
    seen[lane]++;
    const cookie = res.headers["set-cookie"].find((c) => c.startsWith("eg_lane="));
    assert.equal(cookie, `eg_lane=${lane}; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax`);
  }
  assert.ok(seen.blue > 5 && seen.green > 5, JSON.stringify(seen));
  for (let i = 0; i < 10; i++) {
    const res = await request(edge.url, "GET", "/page", { headers: { ...HOST, cookie: "eg_lane=green" } });
    assert.equal(one(res, "x-origin-name"), "green");
    assert.ok(!(res.headers["set-cookie"] ?? []).some((c) => c.startsWith("eg_lane=")), "no new lane cookie for a pinned client");
  }
});

test("health: pass; warn while one origin fails and routing avoids it; fail (503) when all fail", async () => {
  let res = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
  assert.equal(res.status, 200);
  assert.equal(json(res).status, "pass");
  await request(green.url, "POST", "/__demo/health?status=503");
  try {
    await sleep(400);
    res = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
    assert.equal(res.status, 200, res.body.toString());
    const body = json(res);
    assert.equal(body.status, "warn");
    const greenCheck = body.checks["origin:responseTime"].find((c) => c.componentId === "green");
    assert.equal(greenCheck.status, "fail");
    assert.equal(greenCheck.output, "probe answered 503");
    // A failing canary gets no users, sticky ones included, within one probe interval.
    for (let i = 0; i < 20; i++) {
      const page = await request(edge.url, "GET", "/page", { headers: { ...HOST, cookie: i % 2 ? "eg_lane=green" : "" } });
      assert.equal(one(page, "x-origin-name"), "blue");
    }
    await request(blue.url, "POST", "/__demo/health?status=503");
    await sleep(400);
    res = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
    assert.equal(res.status, 503, res.body.toString());
    assert.equal(json(res).status, "fail");
  } finally {
    await request(blue.url, "POST", "/__demo/health?status=200");
    await request(green.url, "POST", "/__demo/health?status=200");
  }
  await sleep(400);
  res = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
  assert.equal(res.status, 200);
  assert.equal(json(res).status, "pass");
});

test("rollback levers: EDGE_ACTIVE_ORIGIN and EDGE_CANARY_PERCENT=0 move every client, no rebuild", async () => {
  const flipped = await startEdge({
    main: MAIN,
    vars: { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}`, EDGE_ACTIVE_ORIGIN: "green", EDGE_CANARY_PERCENT: "0" },
  });
  try {
    for (let i = 0; i < 10; i++) {
      const res = await request(flipped.url, "GET", "/page", { headers: HOST });
      assert.equal(one(res, "x-origin-name"), "green");
      assert.equal(res.headers["set-cookie"]?.some((c) => c.startsWith("eg_lane=")), false);
    }
  } finally {
    await flipped.stop();
  }
});

test("EDGE_SHADOW: what would be refused is forwarded; an unreachable origin is 502", async () => {
  const shadow = await startEdge({ main: MAIN, vars: { EDGE_ORIGINS: `blue=http://127.0.0.1:1,green=${green.url}`, EDGE_SHADOW: "1", EDGE_CANARY_PERCENT: "0", EDGE_ACTIVE_ORIGIN: "green" } });
  try {
    const res = await request(shadow.url, "GET", "/ops/x", { headers: { ...HOST, "cf-connecting-ip": "192.0.2.1" } });
    assert.equal(res.status, 200, "the 403 is only logged in shadow mode");
    assert.equal(one(res, "x-origin-name"), "green");
    const down = await request(shadow.url, "GET", "/pinned/x", { headers: HOST });
    assert.equal(down.status, 502);
    assert.equal(json(down).type, "https://edgeguard.dev/problems/origin-unreachable");
    const malformed = await request(shadow.url, "GET", "/a%2fb", { headers: HOST });
    assert.equal(malformed.status, 400, "malformed requests are refused even in shadow mode");
  } finally {
    await shadow.stop();
  }
});
