// The worker loads its policy at runtime (issue #14): one engine, a bundle per deployment.
//
// - A bundle the engine cannot read — damaged, another format version, cut short — makes the
//   edge answer every request 503 problem+json `edge-misconfigured`, forward nothing, and log
//   one error line per isolate.
// - Shadow policies: `edgeguard build ACTIVE --shadow CANDIDATE` ships both bundles; the active
//   policy answers, and exactly the requests the candidate would have answered differently get
//   a "shadow policy disagrees" line.
//
// Each worker directory here is written by the CLI (`edgeguard build`), as a user's CI does,
// under build/ (wrangler's `.egb` Data rule matches module paths below the project).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { ROOT, json, jsonLines, one, request, startEdge, startOrigin } from "./harness.mjs";

const CLI = path.join(ROOT, "target/debug/edgeguard");
const WORK = path.join(ROOT, "build/e2e-bundles");
const HOST = { host: "app.test", "cf-connecting-ip": "198.51.100.7" };

function build(policy, out, extra = []) {
  return execFileSync(CLI, ["build", policy, "-o", out, ...extra], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

before(() => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
});

describe("a bundle the engine cannot read fails closed", () => {
  const good = path.join(WORK, "good");
  // Each damage as a worker directory of its own: the entry and engine untouched, the bundle not.
  const damages = {
    flipped: (b) => {
      const out = Buffer.from(b);
      out[out.length >> 1] ^= 0x40;
      return out;
    },
    "format version": (b) => {
      const out = Buffer.from(b);
      out.writeUInt32LE(99, 4);
      return out;
    },
    truncated: (b) => b.subarray(0, b.length >> 1),
    empty: () => Buffer.alloc(0),
  };
  let origin;
  const edges = {};

  before(async () => {
    build("tests/e2e/policy.toml", good);
    const bytes = readFileSync(path.join(good, "policy.egb"));
    origin = await startOrigin("blue");
    await Promise.all(
      Object.entries(damages).map(async ([name, damage]) => {
        const dir = path.join(WORK, name.replace(/ /g, "-"));
        cpSync(good, dir, { recursive: true });
        writeFileSync(path.join(dir, "policy.egb"), damage(bytes));
        edges[name] = await startEdge({ main: path.relative(ROOT, path.join(dir, "index.mjs")), vars: { EDGE_ORIGINS: `*=${origin.url}` } });
      }),
    );
  });

  after(async () => {
    await Promise.all([origin?.stop(), ...Object.values(edges).map((e) => e.stop())]);
  });

  for (const name of Object.keys(damages)) {
    test(`${name}: every request gets 503 edge-misconfigured, nothing is forwarded`, async () => {
      const edge = edges[name];
      const before = json(await request(origin.url, "GET", "/__demo/requests")).total;
      const asks = [
        ["GET", "/", {}],
        ["GET", "/__edge/health", {}],
        ["POST", "/api/quotes", { "content-type": "application/json", "content-length": "2" }],
        ["GET", "/ops/x", { "cf-connecting-ip": "203.0.113.9" }],
      ];
      for (const [method, p, headers] of asks) {
        const res = await request(edge.url, method, p, { headers: { ...HOST, ...headers }, body: method === "POST" ? "{}" : null });
        assert.equal(res.status, 503, `${method} ${p}`);
        assert.equal(one(res, "content-type"), "application/problem+json");
        assert.equal(one(res, "cache-control"), "no-store");
        const problem = json(res);
        assert.equal(problem.type, "https://edgeguard.dev/problems/edge-misconfigured");
        assert.equal(problem.status, 503);
        assert.equal(problem.instance, p);
        assert.equal(problem.request_id, one(res, "x-request-id"));
      }
      const head = await request(edge.url, "HEAD", "/", { headers: HOST });
      assert.equal(head.status, 503);
      assert.equal(head.body.length, 0);
      const after = json(await request(origin.url, "GET", "/__demo/requests")).total;
      assert.equal(after, before, "the origin received nothing");
      // One error line for the isolate, not one per request; it says what was wrong.
      // wrangler relays the worker's output a little later than the answer (longer on a busy machine).
      const lines = () => (edge.stdout() + edge.stderr()).split("\n").filter((l) => l.includes("edge misconfigured"));
      for (let waited = 0; lines().length === 0 && waited < 3000; waited += 100) await sleep(100);
      await sleep(100);
      const errors = lines();
      assert.equal(errors.length, 1, edge.stdout() + edge.stderr());
      assert.match(errors[0], name === "format version" ? /format version 99/ : /damaged or truncated|not an edgeguard bundle/);
    });
  }

  test("doctor refuses each damaged directory before deploy (D044)", () => {
    for (const name of Object.keys(damages)) {
      const dir = path.join(WORK, name.replace(/ /g, "-"));
      let out = "";
      let code = 0;
      try {
        out = execFileSync(CLI, ["doctor", "tests/e2e/policy.toml", "--worker", dir], { cwd: ROOT, encoding: "utf8" });
      } catch (err) {
        code = err.status;
        out = err.stdout;
      }
      assert.equal(code, 1, `${name}: ${out}`);
      assert.match(out, /D044/, name);
      assert.match(out, /503 edge-misconfigured/, name);
    }
    // The undamaged build passes.
    execFileSync(CLI, ["doctor", "tests/e2e/policy.toml", "--worker", good], { cwd: ROOT, encoding: "utf8" });
  });
});

describe("shadow policy on live traffic", () => {
  const dir = path.join(WORK, "shadow");
  let origin;
  let edge;

  before(async () => {
    // The candidate: the test policy, plus one blocked route.
    const candidate = path.join(WORK, "candidate.toml");
    const source = readFileSync(path.join(ROOT, "tests/e2e/policy.toml"), "utf8");
    // The candidate: the test policy, plus a blocked route and one more under the global limit's
    // routes (where the active decision waits for the Durable Object before it is compared).
    writeFileSync(
      candidate,
      source.replace("[[routes]]\npath = \"/ops/**\"", "[[routes]]\npath = \"/reports/**\"\nblock = 404\n\n[[routes]]\npath = \"/g/blocked/**\"\nblock = 404\n\n[[routes]]\npath = \"/ops/**\""),
    );
    const printed = build("tests/e2e/policy.toml", dir, ["--shadow", path.relative(ROOT, candidate)]);
    assert.match(printed, /shadow: shadow\.egb/);
    origin = await startOrigin("blue");
    edge = await startEdge({ main: path.relative(ROOT, path.join(dir, "index.mjs")), vars: { EDGE_ORIGINS: `*=${origin.url}`, EDGE_CANARY_PERCENT: "0" } });
  });

  after(async () => {
    await Promise.all([edge?.stop(), origin?.stop()]);
  });

  test("the active policy answers; exactly the disagreeing requests are logged", async () => {
    const sent = [];
    for (const p of ["/", "/reports/2026", "/pricing", "/reports/q4?x=1", "/ops/x", "/reportsx", "/g/blocked/1", "/g/open"]) {
      const res = await request(edge.url, "GET", p, { headers: HOST });
      sent.push({ path: p, id: one(res, "x-request-id"), status: res.status });
    }
    // The active policy does not block /reports/**: forwarded like every other page.
    const blockedByCandidate = (p) => p.startsWith("/reports/") || p.startsWith("/g/blocked/");
    for (const s of sent.filter((s) => blockedByCandidate(s.path))) assert.equal(s.status, 200, s.path);
    await sleep(200);
    const lines = jsonLines(edge).filter((l) => l.msg === "shadow policy disagrees");
    const expected = sent.filter((s) => blockedByCandidate(s.path)).map((s) => s.id);
    assert.deepEqual(lines.map((l) => l.request_id).sort(), expected.sort(), edge.stdout());
    const line = lines.find((l) => l.request_id === sent[1].id);
    assert.equal(line.level, "warn");
    assert.equal(line.path, "/reports/2026");
    assert.deepEqual(line.active, { action: "forward", reason: "ok", route: null, origin: "blue" });
    assert.equal(line.shadow.action, "reject");
    assert.equal(line.shadow.status, 404);
    assert.equal(line.shadow.reason, "blocked");
    assert.equal(line.shadow.route, "/reports/**");
    assert.match(line.revision, /^[0-9a-f]{12}$/);
    assert.match(line.shadow_revision, /^[0-9a-f]{12}$/);
    assert.notEqual(line.revision, line.shadow_revision);
    // The request that waited for the global limiter is compared once it is settled.
    const global = lines.find((l) => l.path === "/g/blocked/1");
    assert.deepEqual([global.active.action, global.active.route, global.shadow.reason, global.shadow.route], ["forward", "/g/**", "blocked", "/g/blocked/**"]);
    // Every request line names the active revision.
    const requests = jsonLines(edge).filter((l) => l.msg === "request");
    assert.ok(requests.length >= sent.length);
    for (const r of requests) assert.equal(r.revision, line.revision);
  });
});
