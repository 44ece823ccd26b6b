// The playground decides exactly as `edgeguard explain` does: QuoteKit's routes × methods ×
// headers (and hosts, schemes, client addresses, repeats, environments) through the wasm's
// `explain` (the wasm-bindgen output in www/dist/pkg, loaded in Node) and through
// `target/debug/edgeguard explain --format json`, compared as JSON. Only the random request
// id differs (each side draws its own); the canary lane draw cannot matter, as QuoteKit's
// canary is at 0 % (and `origin` and `lane` are compared).
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PKG = join(ROOT, "www/dist/pkg");
const CLI = join(ROOT, "target/debug/edgeguard");
const POLICY = join(ROOT, "fixtures/quotekit.toml");
const run = promisify(execFile);

let wasm;

before(async () => {
  assert.ok(existsSync(join(PKG, "edgeguard_playground.js")), "www/dist/pkg is missing: run `make playground` first");
  execFileSync("cargo", ["build", "-q", "-p", "edgeguard-cli"], { cwd: ROOT, stdio: "inherit" });
  wasm = await import(join(PKG, "edgeguard_playground.js"));
  wasm.initSync({ module: readFileSync(join(PKG, "edgeguard_playground_bg.wasm")) });
});

const UUID = "123e4567-e89b-12d3-a456-426614174000";

/// The cases: every QuoteKit route (and some paths between them) × methods × header sets, plus
/// hosts, schemes, client addresses, repeats and the staging environment.
function cases() {
  const paths = [
    "/",
    "/pricing?plan=pro",
    "/_next/static/chunks/app.js",
    "/favicon.ico",
    "/api",
    "/api/health",
    "/api/features",
    "/api/webhooks/stripe",
    "/api/webhooks",
    "/api/admin/users",
    "/api/admin/metrics",
    "/api/quotes",
    `/api/quotes/${UUID}/pdf`,
    "/api/quotes/not-a-uuid/pdf",
    `/api/quotes/${UUID}/email`,
    `/api/quotes/${UUID}/status`,
    "/api/quotes/bulk-delete",
    "/api/billing-history/in_123/invoice",
    "/api/billing-history/ch_123/invoice",
    "/api/debug-subscription",
    "/api/debug-oauth",
    "/api/test-supabase-connection",
    "/api/supabase/functions/send",
    "/test-edge-functions/x",
    "/debug/env",
    "/__edge/health",
    "/a/../../etc/passwd",
    "/%2e%2e/x",
  ];
  const methods = ["GET", "POST", "DELETE"];
  const headerSets = [
    [],
    [["Content-Length", "2"]],
    [["Stripe-Signature", "t=1,v1=abc"], ["Content-Length", "2"]],
    [["Cookie", "sb-abcd-auth-token.0=xyz"]],
    [["X-Api-Key", "demo-metrics-key"]],
  ];
  const out = [];
  let i = 0;
  for (const path of paths) {
    for (const method of methods) {
      // Each route with each method, and a rotating header set (all of them on the API).
      const sets = path.startsWith("/api/admin") || path.startsWith("/api/webhooks") ? headerSets : [headerSets[i++ % headerSets.length]];
      for (const headers of sets) out.push({ method, url: `https://lawnquote.online${path}`, headers });
    }
  }
  const extra = [
    { method: "GET", url: "http://lawnquote.online/pricing" },
    { method: "POST", url: "http://lawnquote.online/api/quotes" },
    { method: "GET", url: "https://www.lawnquote.online/about" },
    { method: "GET", url: "http://www.lawnquote.online/" },
    { method: "GET", url: "https://evil.example/" },
    { method: "GET", url: "/api/quotes", headers: [["Host", "lawnquote.online"]] },
    { method: "GET", url: "https://lawnquote.online/api/quotes", client_ip: "198.51.100.7" },
    { method: "GET", url: "https://lawnquote.online/api/quotes", client_ip: "2001:db8::7", repeat: 21 },
    { method: "GET", url: "https://lawnquote.online/api/quotes", client_ip: "198.51.100.7", repeat: 20 },
    { method: "POST", url: `https://lawnquote.online/api/quotes/${UUID}/email`, headers: [["Content-Length", "2"]], client_ip: "198.51.100.7", repeat: 6 },
    { method: "GET", url: "https://lawnquote.online/api/admin/metrics", headers: [["X-Api-Key", "demo-metrics-key"]], repeat: 3 },
    { method: "GET", url: "https://lawnquote.online/api/admin/metrics", headers: [["X-Api-Key", "wrong"]] },
    { method: "GET", url: "https://lawnquote.online/", headers: [["Cookie", "eg_lane=green"]] },
    { method: "GET", url: "https://lawnquote.online/api/quotes", at: 3600, repeat: 2, client_ip: "203.0.113.9" },
    { method: "PUT", url: "https://lawnquote.online/api/quotes" },
    { method: "OPTIONS", url: "https://lawnquote.online/api/quotes" },
    { method: "GET", url: "https://quotekit-staging.fly.dev/api/debug-oauth", env: "staging" },
    { method: "GET", url: "https://lawnquote.online/api/debug-oauth", env: "staging" },
    { method: "GET", url: `https://lawnquote.online/${"a".repeat(9000)}` },
    // Test sessions, signed with the policy's test_secret on each side.
    { method: "GET", url: "https://lawnquote.online/api/admin/users", session: { sub: "u-1", app_metadata: { role: "admin" } } },
    { method: "GET", url: "https://lawnquote.online/api/admin/users", session: { sub: "u-2", app_metadata: { role: "user" } } },
    { method: "POST", url: `https://lawnquote.online/api/quotes/${UUID}/email`, headers: [["Content-Length", "2"]], session: { sub: "u-3" }, repeat: 6 },
    { method: "GET", url: "https://lawnquote.online/", headers: [["X-Big", "x".repeat(33000)]] },
  ];
  return [...out, ...extra];
}

/// The CLI's arguments for a case.
function cliArgs(c) {
  const args = ["explain", POLICY, "--format", "json", "--request", `${c.method} ${c.url}`];
  for (const [n, v] of c.headers ?? []) args.push("-H", `${n}: ${v}`);
  if (c.client_ip) args.push("--client-ip", c.client_ip);
  if (c.repeat) args.push("--repeat", String(c.repeat));
  if (c.at) args.push("--at", String(c.at));
  if (c.env) args.push("--env", c.env);
  if (c.session) args.push("--session", JSON.stringify(c.session));
  return args;
}

/// The explanation without the request id (a random draw on each side).
function normalize(e) {
  const id = e.response_headers["x-request-id"];
  assert.match(id ?? "", /^[0-9a-f]{32}$/, "every answer carries a request id");
  const copy = JSON.parse(JSON.stringify(e).replaceAll(id, "<request-id>"));
  // A test session expires an hour after each side's clock (now for the CLI, the playground's
  // fixed 2026-01-01).
  if (copy.session?.expires) copy.session.expires = "<an hour on>";
  return copy;
}

test("wasm explain equals `edgeguard explain --format json` on ≥ 50 QuoteKit cases", async () => {
  const all = cases();
  assert.ok(all.length >= 50, `${all.length} cases`);
  const source = readFileSync(POLICY, "utf8");
  const seen = new Set();
  // Four CLI processes at a time.
  for (let i = 0; i < all.length; i += 4) {
    await Promise.all(
      all.slice(i, i + 4).map(async (c) => {
        const { stdout } = await run(CLI, cliArgs(c), { maxBuffer: 1 << 24 });
        const expected = normalize(JSON.parse(stdout));
        const request = { method: c.method, url: c.url, headers: c.headers ?? [], client_ip: c.client_ip ?? "", repeat: c.repeat ?? 1, at: c.at ?? 0, seed: 7, session: c.session ?? null };
        const actual = JSON.parse(wasm.explain(source, c.env ?? "", JSON.stringify(request)));
        assert.equal(actual.error, undefined, `${c.method} ${c.url}: ${actual.error}`);
        assert.deepEqual(normalize(actual), expected, `${c.method} ${c.url.slice(0, 120)} ${JSON.stringify(c.headers ?? [])}`);
        // Key order too: the contract is printed from the same struct.
        assert.deepEqual(Object.keys(actual), Object.keys(expected));
        seen.add(`${expected.action} ${expected.status} ${expected.reason}`);
      }),
    );
  }
  // The cases cover the pipeline, not one answer 50 times.
  for (const reason of ["ok", "https_redirect", "canonical_host", "host_not_allowed", "bad_request", "uri_too_long", "headers_too_large", "health", "blocked", "method_not_allowed", "not_found", "missing_header", "unauthorized", "rate_limited", "session_missing", "session_invalid", "session_claims"]) {
    assert.ok([...seen].some((s) => s.endsWith(` ${reason}`)), `no case ends in ${reason}: ${[...seen].join(", ")}`);
  }
});

test("wasm check equals `edgeguard check --format json` on the fixtures", async () => {
  for (const name of ["quotekit.toml", "helmet.toml", "minimal.toml", "strict.toml"]) {
    const path = join(ROOT, "fixtures", name);
    let stdout;
    try {
      ({ stdout } = await run(CLI, ["check", path, "--format", "json"]));
    } catch (e) {
      stdout = e.stdout; // exit 1: errors
    }
    const cli = JSON.parse(stdout);
    const mine = JSON.parse(wasm.check(readFileSync(path, "utf8"), ""));
    const cliDiags = Array.isArray(cli) ? cli : (cli.diagnostics ?? []);
    const pick = (d) => [d.line, d.column, d.end_line, d.end_column, d.severity, d.code, d.message, d.help];
    assert.deepEqual(mine.diagnostics.map(pick), cliDiags.map(pick), name);
  }
});
