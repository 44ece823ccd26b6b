// `edgeguard verify` and `edgeguard ready --url` against the real worker in workerd in front of
// the demo origin: QuoteKit's edge matches what `explain` says for every request verify sends;
// an edge deployed with a deliberately different policy is caught, each mismatch named.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

import { ROOT, request, startEdge, startOrigin } from "./harness.mjs";

const run = promisify(execFile);
const EDGEGUARD = path.join(ROOT, "target/debug/edgeguard");
const POLICY = path.join(ROOT, "fixtures/quotekit.toml");
const DRIFTED_DIR = path.join(ROOT, "build/edge-verify-drifted");

/** Runs the CLI; resolves to { code, stdout, stderr } whatever the exit code. */
async function edgeguard(...args) {
  try {
    const { stdout, stderr } = await run(EDGEGUARD, args, { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== "number") throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Every edit must apply: a test that edits nothing would pass for the wrong reason. */
function edit(text, from, to) {
  assert.ok(text.includes(from), `\`${from}\` not in the policy`);
  return text.replace(from, to);
}

let origin;
let edge;
let plain;
let drifted;
let work;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "edgeguard-verify-"));
  // The edge deployed from a policy that drifted from the one in the repository: HSTS for a
  // day, frames from the same origin, the debug routes open and the admin API without its
  // session check.
  let other = readFileSync(POLICY, "utf8");
  other = edit(other, 'hsts = { max_age = "1y"', 'hsts = { max_age = "1d"');
  other = edit(other, '"X-Frame-Options" = "DENY"', '"X-Frame-Options" = "SAMEORIGIN"');
  other = edit(other, 'path = "/api/debug-*"\nblock = 404\nonly_in = ["production"]', 'path = "/api/debug-*"\nblock = 404\nonly_in = ["staging"]');
  other = edit(other, 'require_session = { source = "supabase", claims = { "app_metadata.role" = "admin" } }\n', "");
  writeFileSync(path.join(work, "drifted.toml"), other);
  // Inside the project: wrangler's Data rule for policy.egb matches paths under it only.
  const built = await edgeguard("build", path.join(work, "drifted.toml"), "-o", DRIFTED_DIR);
  assert.equal(built.code, 0, built.stderr);

  origin = await startOrigin("blue");
  const vars = { EDGE_ORIGINS: `*=${origin.url}` };
  [edge, plain, drifted] = await Promise.all([
    startEdge({ protocol: "https", vars }),
    startEdge({ protocol: "http", vars }),
    startEdge({ protocol: "https", vars, main: path.join(DRIFTED_DIR, "index.mjs") }),
  ]);
});

after(async () => {
  await Promise.all([edge?.stop(), plain?.stop(), drifted?.stop(), origin?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
  rmSync(DRIFTED_DIR, { recursive: true, force: true });
});

const KINDS = [
  "health", "page", "https-redirect", "canonical-host", "unknown-host", "rate-limit-headers", "method",
  "required-header", "session", "api-key", "param-type", "blocked",
];

/** verify's arguments: 10 requests a second unless `extra` says otherwise; JSON output. */
function verifyArgs(url, ...extra) {
  const rate = extra.includes("--rate") ? [] : ["--rate", "10"];
  return ["verify", POLICY, "--url", url, "--host", "lawnquote.online", "--insecure", ...rate, "--format", "json", ...extra];
}

describe("verify", () => {
  test("QuoteKit's edge answers every request as explain says", async () => {
    const before = await (await request(origin.url, "GET", "/__demo/requests")).body.toString();
    const { code, stdout, stderr } = await edgeguard(...verifyArgs(edge.url, "--http-url", plain.url));
    assert.equal(code, 0, stdout + stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.ok, true);
    assert.equal(report.requests, 12);
    assert.deepEqual(report.checks.map((c) => c.kind), KINDS);
    assert.deepEqual(report.not_applicable, []);
    for (const c of report.checks) {
      assert.deepEqual(c.mismatches, [], c.kind);
      assert.equal(c.error, null, c.kind);
      assert.ok(c.headers_checked >= 14, `${c.kind}: ${c.headers_checked} headers`);
    }
    const by = Object.fromEntries(report.checks.map((c) => [c.kind, c]));
    assert.deepEqual([by.health.status, by.health.reason], [200, "health"]);
    assert.deepEqual([by["https-redirect"].status, by["https-redirect"].reason], [301, "https_redirect"]);
    assert.deepEqual([by.blocked.status, by.blocked.reason], [404, "blocked"]);
    assert.deepEqual([by["required-header"].request, by["required-header"].status], ["POST https://lawnquote.online/api/webhooks/stripe", 400]);
    assert.ok(report.elapsed_ms < 10_000, `${report.elapsed_ms} ms`);
    // What the edge refused never reached the app: only GETs of forwarded pages did.
    const seen = JSON.parse((await request(origin.url, "GET", "/__demo/requests")).body.toString());
    const was = JSON.parse(before);
    const forwarded = Object.keys(seen.paths).filter((p) => seen.paths[p] !== was.paths[p] && p !== "/api/health");
    assert.deepEqual(forwarded.sort(), ["/", "/api/00000000-0000-4000-8000-000000000000"].sort());
  });

  test("bounded: --max-requests caps the requests, and the rate holds", async () => {
    const { code, stdout } = await edgeguard(...verifyArgs(edge.url, "--max-requests", "3", "--rate", "2"));
    assert.equal(code, 0, stdout);
    const report = JSON.parse(stdout);
    assert.equal(report.requests, 3);
    // Three requests at 2/s: two waits of 0.5 s.
    assert.ok(report.elapsed_ms >= 1000, `${report.elapsed_ms} ms`);
    const tooFast = await edgeguard(...verifyArgs(edge.url, "--rate", "50"));
    assert.equal(tooFast.code, 2);
    assert.match(tooFast.stderr, /--rate must be above 0 and at most 10/);
  });

  test("an edge deployed from a different policy: each mismatch is named", async () => {
    const { code, stdout } = await edgeguard(...verifyArgs(drifted.url));
    assert.equal(code, 1, stdout);
    const report = JSON.parse(stdout);
    assert.equal(report.ok, false);
    // No --http-url and a URL with a port: the http hop is not checked.
    assert.deepEqual(report.not_applicable, ["https-redirect"]);
    const by = Object.fromEntries(report.checks.map((c) => [c.kind, c]));
    const fields = (kind) => by[kind].mismatches.map((m) => `${m.field}: ${m.actual}, expected ${m.expected}`);
    assert.deepEqual(fields("blocked").slice(0, 2), ["status: 200, expected 404", "reason: ok, expected blocked"]);
    assert.deepEqual(fields("session").slice(0, 2), ["status: 200, expected 401", "reason: ok, expected session_missing"]);
    for (const kind of ["page", "health", "unknown-host", "method"]) {
      assert.ok(fields(kind).includes("header strict-transport-security: max-age=86400; includeSubDomains, expected max-age=31536000; includeSubDomains"), `${kind}: ${fields(kind)}`);
      assert.ok(fields(kind).includes("header x-frame-options: SAMEORIGIN, expected DENY"), `${kind}: ${fields(kind)}`);
    }
    // What did not drift still matches.
    assert.deepEqual(by["api-key"].mismatches.filter((m) => !m.field.startsWith("header ")), []);
    assert.equal(by["param-type"].status, 404);
    const text = await edgeguard("verify", POLICY, "--url", drifted.url, "--host", "lawnquote.online", "--insecure", "--rate", "10");
    assert.match(text.stdout, /FAIL {2}blocked {13}GET https:\/\/lawnquote\.online\/api\/debug-x/);
    assert.match(text.stdout, /status: 200, expected 404; reason: ok, expected blocked/);
    assert.match(text.stdout, /verify: \d+ passed, \d+ failed — 11 requests to https:\/\/127\.0\.0\.1:\d+ in [\d.]+ s\n$/);
  });

  test("an edge that is not there: every check fails with the reason, exit 1", async () => {
    const { code, stdout } = await edgeguard(...verifyArgs("https://127.0.0.1:9", "--max-requests", "2", "--timeout", "2"));
    assert.equal(code, 1);
    const report = JSON.parse(stdout);
    assert.equal(report.checks.length, 2);
    for (const c of report.checks) assert.match(c.error, /^no answer from https:\/\/127\.0\.0\.1:9\//);
  });
});

describe("ready --url", () => {
  const inputs = ["--fly", "fixtures/deploy/fly.toml", "--wrangler", "fixtures/deploy/wrangler.toml", "--host", "lawnquote.online", "--insecure", "--format", "json"];
  const criterion = (report, id) => report.gates.flatMap((g) => g.criteria).find((c) => c.id === id);

  test("the live lines pass against QuoteKit's edge", async () => {
    const { stdout } = await edgeguard("ready", POLICY, "--url", edge.url, "--http-url", plain.url, ...inputs);
    const report = JSON.parse(stdout);
    const live = criterion(report, "live");
    assert.equal(live.status, "pass", live.why);
    assert.equal(live.why, `12 requests to ${edge.url} (as lawnquote.online): every answer is what explain says`);
    const health = criterion(report, "health-live");
    assert.equal(health.status, "pass", health.why);
    assert.deepEqual(health.at, [{ what: "GET https://lawnquote.online/__edge/health", line: null }]);
  });

  test("against the drifted edge: the live line fails and names the checks", async () => {
    const { code, stdout } = await edgeguard("ready", POLICY, "--url", drifted.url, ...inputs);
    assert.equal(code, 1);
    const live = criterion(JSON.parse(stdout), "live");
    assert.equal(live.status, "fail");
    assert.match(live.why, /^11 of 11 checks differ — health: header strict-transport-security: max-age=86400; includeSubDomains, expected max-age=31536000; includeSubDomains/);
    assert.ok(live.at.some((a) => a.what === "GET https://lawnquote.online/api/debug-x"), JSON.stringify(live.at));
  });
});
