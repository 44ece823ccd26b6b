// The edge's health endpoint reads the app's own health answer (issue #16, part 5), in workerd
// against two demo origins with tests/e2e/policy.toml: `[health]` probes /api/health with a
// 500 ms timeout, reuses results for 300 ms and keeps the default `warn_after` of 100 ms.

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { json, one, request, startEdge, startOrigin } from "./harness.mjs";

const MAIN = "build/edge-test/index.mjs";
const HOST = { host: "app.test" };
const RESET = "status=200&fail=&delay=0&format=json";
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

afterEach(async () => {
  await Promise.all([request(blue.url, "POST", `/__demo/health?${RESET}`), request(green.url, "POST", `/__demo/health?${RESET}`)]);
  await until((body) => body.status === "pass");
});

async function health() {
  const res = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
  assert.equal(one(res, "content-type"), "application/health+json");
  return { code: res.status, body: json(res) };
}

/**
 * The edge's health answer once it satisfies `ready`: probes are reused for 300 ms, so a change
 * at an origin shows within one round. Fails with the last answer after 3 s.
 */
async function until(ready) {
  const deadline = Date.now() + 3_000;
  let last;
  while (Date.now() < deadline) {
    last = await health();
    if (ready(last.body)) return last;
    await sleep(100);
  }
  assert.fail(`health never got there: ${JSON.stringify(last?.body)}`);
}

/** `{origin: [status, output]}` for one check key. */
function byOrigin(body, key) {
  return Object.fromEntries((body.checks[key] ?? []).map((c) => [c.componentId, [c.status, c.output]]));
}

/** Where a client pinned to `lane` is served. */
async function servedBy(lane) {
  const page = await request(edge.url, "GET", "/page", { headers: { ...HOST, cookie: `eg_lane=${lane}` } });
  assert.equal(page.status, 200);
  return one(page, "x-origin-name");
}

test("every dependency of the app's answer is its own check, per origin", async () => {
  const { code, body } = await until((b) => b.status === "pass");
  assert.equal(code, 200);
  for (const dep of ["database", "stripe", "supabase"]) {
    assert.deepEqual(byOrigin(body, dep), { blue: ["pass", undefined], green: ["pass", undefined] }, dep);
    assert.equal(body.checks[dep][0].componentType, "component");
  }
  assert.deepEqual(Object.keys(body.checks).sort(), ["database", "origin:responseTime", "stripe", "supabase"]);
});

test("one dependency failing: that check fails, the origin warns, overall warn (200), routing unchanged", async () => {
  await request(green.url, "POST", "/__demo/health?fail=stripe");
  const { code, body } = await until((b) => b.checks.stripe?.some((c) => c.status === "fail"));
  assert.equal(code, 200);
  assert.equal(body.status, "warn");
  assert.deepEqual(byOrigin(body, "stripe"), { blue: ["pass", undefined], green: ["fail", undefined] });
  assert.deepEqual(byOrigin(body, "database"), { blue: ["pass", undefined], green: ["pass", undefined] });
  assert.deepEqual(byOrigin(body, "origin:responseTime").green, ["warn", "the app reports `degraded`"]);
  // A dependency is shared by every origin: the edge does not drain the one that reports it.
  for (let i = 0; i < 4; i++) assert.equal(await servedBy("green"), "green");

  // The database down makes the app call itself unhealthy; still answering 200, so still warn.
  await request(green.url, "POST", "/__demo/health?fail=database");
  const down = await until((b) => b.checks.database?.some((c) => c.status === "fail"));
  assert.equal(down.code, 200);
  assert.equal(down.body.status, "warn");
  assert.deepEqual(byOrigin(down.body, "origin:responseTime").green, ["warn", "the app reports `unhealthy`"]);
});

test("an origin slower than warn_after (100 ms) warns, with its latency", async () => {
  await request(blue.url, "POST", "/__demo/health?delay=250");
  const { code, body } = await until((b) => b.checks["origin:responseTime"].some((c) => c.componentId === "blue" && c.status === "warn"));
  assert.equal(code, 200);
  assert.equal(body.status, "warn");
  const check = body.checks["origin:responseTime"].find((c) => c.componentId === "blue");
  assert.ok(check.observedValue >= 250 && check.observedValue < 500, JSON.stringify(check));
  assert.equal(check.observedUnit, "ms");
  assert.equal(check.output, `answered in ${check.observedValue} ms, over the 100 ms threshold`);
  assert.deepEqual(byOrigin(body, "origin:responseTime").green, ["pass", undefined]);
  // Slow is not down: the dependencies it reported are there, and it keeps its traffic.
  assert.deepEqual(byOrigin(body, "database").blue, ["pass", undefined]);
  assert.equal(await servedBy("blue"), "blue");
});

test("a body that is not JSON, or larger than 64 KiB, fails that origin's check; it still answers, so overall warn", async () => {
  await request(green.url, "POST", "/__demo/health?format=text");
  let { code, body } = await until((b) => byOrigin(b, "origin:responseTime").green?.[0] === "fail");
  assert.equal(code, 200);
  assert.equal(body.status, "warn");
  assert.deepEqual(byOrigin(body, "origin:responseTime").green, ["fail", "health answer is not JSON"]);
  assert.deepEqual(byOrigin(body, "database"), { blue: ["pass", undefined] }, "nothing to read from green");
  assert.equal(await servedBy("green"), "green", "answering 200: still routed to");

  // 1 MiB of JSON: the shell stops reading at 64 KiB and the engine refuses it unparsed.
  await request(green.url, "POST", "/__demo/health?format=big");
  ({ code, body } = await until((b) => byOrigin(b, "origin:responseTime").green?.[1] === "health answer larger than 64 KiB"));
  assert.equal(code, 200);
  assert.equal(body.status, "warn");
});

test("no origin answering 2xx/3xx: fail (503), with the reasons the apps gave", async () => {
  await request(blue.url, "POST", "/__demo/health?status=503&fail=database");
  await request(green.url, "POST", "/__demo/health?status=503");
  const { code, body } = await until((b) => b.status === "fail");
  assert.equal(code, 503);
  assert.deepEqual(byOrigin(body, "origin:responseTime"), { blue: ["fail", "probe answered 503"], green: ["fail", "probe answered 503"] });
  assert.deepEqual(byOrigin(body, "database"), { blue: ["fail", undefined], green: ["pass", undefined] });
});
