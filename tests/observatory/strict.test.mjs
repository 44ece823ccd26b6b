// The MDN HTTP Observatory's CSP test (npm @mdn/mdn-http-observatory, scoring algorithm v4) on
// responses from the local edge (issue 9): strict mode removes the unsafe-inline penalty that
// QuoteKit's policy gets today.
//
// The package's scanner and CLI (`mdn-http-observatory-scan HOST`) take a host name only and
// scan https://HOST/ on port 443, so this test calls the same code one level down: its
// retriever (`retrieve(host, { httpsPort, httpPort, path })`, the HTTP client a scan uses,
// which falls back to an unverified TLS session for wrangler's self-signed certificate) and
// its `contentSecurityPolicyTest` analyzer, graded with the package's own score table. Nothing
// leaves the machine: the edge (build/edge-strict, tests/e2e/strict.toml) and the demo origin
// run on loopback. The numbers go to target/observatory-strict.json (docs/strict-csp.md).
//
// Needs build/edge-strict (`make edges`); `make e2e` runs this file.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { contentSecurityPolicyTest } from "@mdn/mdn-http-observatory/src/analyzer/tests/csp.js";
import { getScoreModifier } from "@mdn/mdn-http-observatory/src/grader/grader.js";
import { retrieve } from "@mdn/mdn-http-observatory/src/retriever/retriever.js";
import { Expectation } from "@mdn/mdn-http-observatory/src/types.js";

import { ROOT, freePort, startEdge, startOrigin } from "../e2e/harness.mjs";

const MAIN = "build/edge-strict/index.mjs";

let origin;
let edge;
let httpsPort;
let deadPort; // the scan's plain-http probe finds nothing listening: this edge is https-only
const results = {};

before(async () => {
  assert.ok(existsSync(path.join(ROOT, MAIN)), `${MAIN} is missing: run \`make edges\``);
  origin = await startOrigin("observatory");
  edge = await startEdge({ protocol: "https", main: MAIN, vars: { EDGE_ORIGINS: `*=${origin.url}` } });
  httpsPort = new URL(edge.url).port;
  deadPort = await freePort();
});

after(async () => {
  await edge?.stop();
  await origin?.stop();
  mkdirSync(path.join(ROOT, "target"), { recursive: true });
  writeFileSync(path.join(ROOT, "target/observatory-strict.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.log("observatory CSP test:", JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, `${v.result} (${v.modifier})`]))));
});

/** The Observatory's CSP test on https://127.0.0.1:<edge>/<path>. */
async function cspTest(name, pathname) {
  const requests = await retrieve("127.0.0.1", { httpsPort, httpPort: deadPort, path: pathname });
  assert.equal(requests.responses.auto?.status, 200, `the scan reached ${pathname}`);
  assert.equal(requests.session.url.protocol, "https:");
  const out = contentSecurityPolicyTest(requests);
  const r = { path: pathname, result: out.result, modifier: getScoreModifier(out.result), pass: out.pass, policy: out.policy, scriptSrc: out.data?.["script-src"] };
  results[name] = r;
  return r;
}

test("QuoteKit's policy today (strict off): the unsafe-inline penalty, -20", async () => {
  const r = await cspTest("legacy", "/strict-demo/legacy");
  assert.equal(r.result, Expectation.CspImplementedWithUnsafeInline);
  assert.equal(r.modifier, -20);
  assert.equal(r.policy.unsafeInline, true);
  assert.equal(r.pass, false);
});

test("strict mode on QuoteKit's policy: no unsafe-inline penalty; its kept 'unsafe-eval' costs -10", async () => {
  const r = await cspTest("strict", "/strict-demo");
  assert.notEqual(r.result, Expectation.CspImplementedWithUnsafeInline);
  assert.equal(r.policy.unsafeInline, false, "'unsafe-inline' and https: are discounted beside a nonce and 'strict-dynamic'");
  assert.equal(r.policy.strictDynamic, true);
  assert.ok(r.scriptSrc.some((s) => /^'nonce-[A-Za-z0-9+/]{22}=='$/.test(s)), JSON.stringify(r.scriptSrc));
  // What is left is QuoteKit's own 'unsafe-eval', which strict mode keeps (the app uses it).
  assert.equal(r.result, Expectation.CspImplementedWithUnsafeEval);
  assert.equal(r.modifier, -10);
});

test("strict mode once 'unsafe-eval' is gone: the CSP test passes, 0", async () => {
  const r = await cspTest("strict-no-eval", "/strict-demo/no-eval");
  assert.equal(r.pass, true);
  assert.equal(r.policy.unsafeInline, false);
  assert.equal(r.policy.unsafeEval, false);
  // style-src keeps 'unsafe-inline' (React's style attributes): not penalised.
  assert.equal(r.result, Expectation.CspImplementedWithUnsafeInlineInStyleSrcOnly);
  assert.equal(r.modifier, 0);
});

test("report-only rollout: the Observatory grades the enforced policy only, so no points yet", async () => {
  const r = await cspTest("report-only", "/strict-demo/report-only");
  assert.equal(r.result, Expectation.CspImplementedWithUnsafeInline);
  assert.equal(r.modifier, -20);
});
