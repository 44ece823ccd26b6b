// The npm package's `edgeguard` (the CLI as wasm under Node's WASI) against the native binary,
// on the fixtures: the same stdout, stderr, exit code and files for every command the package
// promises (check, compile, build, explain, test, schema) and the others it carries.
//
// Needs build/npm/package (`make npm-package`) and target/debug/edgeguard with its engine
// (`make cli`); `make npm-test` runs it.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { before, test } from "node:test";

import { ROOT } from "../e2e/harness.mjs";

const NATIVE = path.join(ROOT, "target/debug/edgeguard");
const NPM_BIN = path.join(ROOT, "build/npm/package/bin/edgeguard.mjs");
const WORK = "build/npm-parity";

function run(which, args, input = null) {
  const [cmd, argv] = which === "native" ? [NATIVE, args] : [process.execPath, [NPM_BIN, ...args]];
  const out = spawnSync(cmd, argv, { cwd: ROOT, encoding: "utf8", input, env: { ...process.env, NO_COLOR: "1" } });
  if (out.error) throw out.error;
  return { code: out.status, stdout: out.stdout, stderr: out.stderr };
}

/** Both binaries on `args`; `mask` blanks what is random by design (request ids, nonces). */
function same(args, { mask = (s) => s, input = null } = {}) {
  const native = run("native", args, input);
  const npm = run("npm", args, input);
  assert.equal(npm.code, native.code, `exit code of ${args.join(" ")}\n${npm.stderr}`);
  assert.equal(mask(npm.stdout), mask(native.stdout), `stdout of ${args.join(" ")}`);
  assert.equal(mask(npm.stderr), mask(native.stderr), `stderr of ${args.join(" ")}`);
  return native;
}

/** A command that writes `out` (a file or directory): the same output and the same bytes. */
function sameFiles(args, out) {
  const target = path.join(ROOT, out);
  const snapshot = () => {
    if (!existsSync(target)) return null;
    if (!readdirSync(path.dirname(target)).includes(path.basename(target))) return null;
    try {
      return Object.fromEntries(readdirSync(target).sort().map((f) => [f, readFileSync(path.join(target, f)).toString("base64")]));
    } catch {
      return readFileSync(target).toString("base64");
    }
  };
  rmSync(target, { recursive: true, force: true });
  const native = run("native", args);
  const nativeFiles = snapshot();
  rmSync(target, { recursive: true, force: true });
  const npm = run("npm", args);
  const npmFiles = snapshot();
  assert.deepEqual([npm.code, npm.stdout, npm.stderr], [native.code, native.stdout, native.stderr], args.join(" "));
  assert.deepEqual(npmFiles, nativeFiles, `files written by ${args.join(" ")}`);
  return native;
}

const requestIds = (s) => s.replace(/\b[0-9a-f]{32}\b/g, "<request-id>");

before(() => {
  assert.ok(existsSync(NPM_BIN), "build/npm/package is missing: run `make npm-package`");
  assert.ok(existsSync(NATIVE), "target/debug/edgeguard is missing: run `make cli`");
  rmSync(path.join(ROOT, WORK), { recursive: true, force: true });
  mkdirSync(path.join(ROOT, WORK), { recursive: true });
  writeFileSync(path.join(ROOT, WORK, "broken.toml"), "version = 1\n[app]\nhosts = [\"x.test\"]\nunknown_key = 1\n[[routes]]\npath = \"/a\"\nmethods = [\"FETCH\"]\n[limits.api]\nrate = \"lots\"\n");
  writeFileSync(path.join(ROOT, WORK, "page.html"), "<!doctype html><html><head><script src=/a.js></script><style>b{}</style></head><body><script>x()</script></body></html>");
});

test("check: every format, warnings, errors and usage errors", () => {
  for (const policy of ["fixtures/quotekit.toml", "fixtures/minimal.toml", "fixtures/strict.toml", `${WORK}/broken.toml`]) {
    for (const format of ["text", "json", "github", "sarif"]) same(["check", policy, "--format", format]);
  }
  assert.equal(same(["check", "fixtures/quotekit.toml", "--deny-warnings"]).code, 1);
  assert.equal(same(["check", `${WORK}/broken.toml`]).code, 1);
  assert.equal(same(["check", `${WORK}/missing.toml`]).code, 2);
  assert.equal(same(["check", "--format", "nope", "fixtures/quotekit.toml"]).code, 2);
});

test("compile: the same bundle bytes", () => {
  assert.equal(sameFiles(["compile", "fixtures/quotekit.toml", "-o", `${WORK}/q.egb`], `${WORK}/q.egb`).code, 0);
  sameFiles(["compile", "fixtures/quotekit.toml", "--env", "staging", "-o", `${WORK}/s.egb`], `${WORK}/s.egb`);
  assert.equal(sameFiles(["compile", `${WORK}/broken.toml`, "-o", `${WORK}/b.egb`], `${WORK}/b.egb`).code, 1);
});

test("build: the same worker directory, byte for byte", () => {
  assert.equal(sameFiles(["build", "fixtures/quotekit.toml", "-o", `${WORK}/edge`], `${WORK}/edge`).code, 0);
  sameFiles(["build", "fixtures/quotekit.toml", "--shadow", "fixtures/strict.toml", "--env", "staging", "-o", `${WORK}/edge2`], `${WORK}/edge2`);
  assert.equal(sameFiles(["build", `${WORK}/broken.toml`, "-o", `${WORK}/edge3`], `${WORK}/edge3`).code, 1);
});

test("explain: the same decisions, text and json", () => {
  const requests = [
    ["GET https://lawnquote.online/api/debug-oauth"],
    ["GET http://lawnquote.online/pricing"],
    ["POST https://lawnquote.online/api/quotes/123e4567-e89b-12d3-a456-426614174000/email", "-H", "content-length: 2", "--client-ip", "198.51.100.7", "--repeat", "6"],
    ["GET https://evil.example/"],
  ];
  for (const [request, ...rest] of requests) {
    for (const format of ["json", "text"]) same(["explain", "fixtures/quotekit.toml", "--request", request, ...rest, "--format", format], { mask: requestIds });
  }
  assert.equal(same(["explain", "fixtures/quotekit.toml", "--request", "NOT A REQUEST"]).code, 2);
});

test("test: the QuoteKit case file, text and json", () => {
  assert.equal(same(["test", "fixtures/quotekit.toml", "fixtures/quotekit.cases.toml"]).code, 0);
  same(["test", "fixtures/quotekit.toml", "fixtures/quotekit.cases.toml", "--format", "json"]);
});

test("schema, init, diff, doctor, import, nonce", () => {
  same(["schema"]);
  same(["init", "--preset", "nextjs-fly"]);
  same(["diff", "fixtures/minimal.toml", "fixtures/quotekit.toml", "--format", "markdown"]);
  same(["doctor", "fixtures/quotekit.toml", "--wrangler", "fixtures/deploy/wrangler.toml", "--fly", "fixtures/deploy/fly.toml"]);
  same(["import", "next", "fixtures/nextjs-app", "--policy", "fixtures/quotekit.toml"]);
  // The environment catalog and the readiness report read the same files the same way.
  same(["schema", "--catalog"]);
  const env = ["--catalog", "fixtures/quotekit.env.toml", "--fly", "fixtures/deploy/fly.toml", "--fly-secrets", "fixtures/env/production.fly-secrets.json", "--fly-env", "staging=fixtures/deploy/fly.staging.toml", "--fly-secrets", "staging=fixtures/env/staging.fly-secrets.json"];
  same(["doctor", "fixtures/quotekit.toml", ...env, "--format", "json"]);
  assert.equal(same(["ready", "fixtures/quotekit.toml", ...env, "--wrangler", "fixtures/deploy/wrangler.toml", "--cases", "fixtures/quotekit.cases.toml", "--runbook", "fixtures/deploy/RUNBOOK.md", "--format", "markdown"]).code, 1);
  same(["nonce", `${WORK}/page.html`, "--nonce", "R4nd0mN0nc3"]);
  // Standard input, read through WASI's fd 0 as natively.
  same(["nonce", "-", "--nonce", "R4nd0mN0nc3"], { input: readFileSync(path.join(ROOT, WORK, "page.html"), "utf8") });
  same(["--version"]);
  same(["--help"]);
});
