// Strict CSP at the edge (issue 9), end to end: the worker built with tests/e2e/strict.toml
// (QuoteKit's CSP with `strict = "nonce"`) in real workerd (`wrangler dev`), in front of the demo
// origin's Next.js-shaped page (/strict-demo in demo/origin.mjs), over http and https.
//
// HTTP level: a fresh 128-bit nonce per response, the same in the header and on every tag the
// edge marks, an origin-sent nonce replaced, the body byte for byte what `edgeguard nonce` makes
// of the origin's page (identity, gzip and br, streamed or not), streaming kept, non-HTML, HEAD,
// 304, 206 and unreadable codings handled, report-only sending both policies.
// In Chromium (Debian's /usr/bin/chromium via playwright-core): every legitimate script runs
// (inline bootstrap, streamed flight chunks, src and module chunks, scripts inserted by
// scripts), the script a DOM XSS injects and the inline event handlers are blocked, the browser
// fires `securitypolicyviolation` for them and its reports reach the edge's intake (metrics and
// log); report-only blocks nothing and reports the same; without strict mode the XSS runs.
//
// Needs build/edge-strict (`make edges`) and Chromium (`make chromium`); `make e2e`
// does both.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import zlib from "node:zlib";
import { chromium } from "playwright-core";

import { CHROMIUM, CHROMIUM_ARGS } from "../chromium.mjs";
import { ROOT, one, request, startEdge, startOrigin } from "./harness.mjs";

const MAIN = "build/edge-strict/index.mjs";
const CLI = path.join(ROOT, "target/debug/edgeguard");
const HOST = "app.test";
const METRICS_KEY = "e2e-metrics-scrape-key";
// What the demo page's legitimate scripts push on `self.__marks` (see demo/origin.mjs).
const LEGIT = [
  "inline-head", // inline, in <head>
  "origin-nonce", // inline, sent by the origin with nonce="evil"
  "bootstrap", // inline, first body chunk
  "flight-1", // self.__next_f.push, its <script> tag split across two body chunks
  "flight-2",
  "flight-3",
  "flight-4",
  "hash-view", // the script with the XSS sink itself is legitimate
  "dynamic-inline", // inserted by flight-4's script with createElement + textContent
  "webpack", // <script src async>, also preloaded
  "main-app", // <script src async>
  "dynamic-src", // inserted by main-app.js with createElement + src ('strict-dynamic')
  "module", // <script type=module>, also modulepreloaded
].sort();
// The DOM XSS: the page writes its fragment into the document.
const XSS = `#${encodeURIComponent("<script>self.pwned=1</script>")}`;
const NONCE = /'nonce-([^']*)'/;

let origin;
const edges = {};

before(async () => {
  assert.ok(existsSync(path.join(ROOT, MAIN)), `${MAIN} is missing: run \`make edges\``);
  execFileSync("cargo", ["build", "-q", "-p", "edgeguard-cli"], { cwd: ROOT, stdio: "inherit" });
  origin = await startOrigin("strict");
  const vars = { EDGE_ORIGINS: `*=${origin.url}` };
  // Both at once; each is kept as soon as it is up, so `after` stops it even if the other fails.
  const started = await Promise.allSettled(
    ["http", "https"].map(async (protocol) => (edges[protocol] = await startEdge({ protocol, main: MAIN, vars }))),
  );
  for (const s of started) if (s.status === "rejected") throw s.reason;
});

after(async () => {
  await Promise.all([edges.http?.stop(), edges.https?.stop()]);
  await origin?.stop();
});

/** A request through the edge with Host app.test; the body is checked against Content-Length. */
async function get(edge, pathAndQuery, headers = {}, method = "GET") {
  const res = await request(edge.url, method, pathAndQuery, { headers: { host: HOST, ...headers } });
  const length = res.headers["content-length"];
  if (length !== undefined && method !== "HEAD") {
    assert.equal(length.length, 1, "one Content-Length");
    assert.equal(Number(length[0]), res.body.length, `Content-Length matches the body of ${pathAndQuery}`);
  }
  return res;
}

/** The origin's own answer, straight from it (no edge). */
function fromOrigin(pathAndQuery, headers = {}) {
  return request(origin.url, "GET", pathAndQuery, { headers });
}

/** The body with its content coding undone. */
function decoded(res) {
  const coding = (res.headers["content-encoding"] ?? ["identity"]).join(",").trim().toLowerCase();
  if (coding === "gzip") return zlib.gunzipSync(res.body);
  if (coding === "br") return zlib.brotliDecompressSync(res.body);
  if (coding === "deflate") return zlib.inflateSync(res.body);
  assert.equal(coding, "identity", `unexpected content-encoding ${coding}`);
  return res.body;
}

function csp(res) {
  return one(res, "content-security-policy");
}

function directive(policy, name) {
  const d = policy.split(";").find((x) => x.trim().split(" ")[0] === name);
  return d === undefined ? null : d.trim().split(/\s+/).slice(1);
}

/** The nonce of a strict policy; fails unless script-src is the strict shape. */
function strictNonce(policy) {
  const script = directive(policy, "script-src");
  assert.ok(script, `no script-src in ${policy}`);
  assert.deepEqual(script.slice(1), ["'strict-dynamic'", "'unsafe-eval'", "'unsafe-inline'", "https:"], `strict script-src: ${script.join(" ")}`);
  const nonce = NONCE.exec(script[0])?.[1];
  assert.ok(nonce, `script-src starts with a nonce: ${script.join(" ")}`);
  assert.match(nonce, /^[A-Za-z0-9+/]{22}==$/, "24 characters of standard base64");
  const raw = Buffer.from(nonce, "base64");
  assert.equal(raw.length, 16, "128 bits");
  assert.equal(raw.toString("base64"), nonce, "canonical base64");
  return nonce;
}

/** QuoteKit's policy as written: 'unsafe-inline' and the host allowlist, no nonce. */
function assertLegacy(policy) {
  const script = directive(policy, "script-src");
  assert.deepEqual(script.slice(0, 3), ["'self'", "'unsafe-inline'", "'unsafe-eval'"], `legacy script-src: ${script.join(" ")}`);
  assert.ok(script.includes("https://js.stripe.com"));
  assert.doesNotMatch(policy, /nonce|strict-dynamic/);
}

// Start tags the edge marks (the engine's NONCE_SELECTORS) and the others.
const TAG = /<(script|style|link)\b[^>]*>/gi;
const MARKED_LINK = /\brel="?[^">]*\b(stylesheet|preload|modulepreload)\b/i;

function markableTags(html) {
  return [...html.matchAll(TAG)].map((m) => m[0]).filter((t) => !/^<link/i.test(t) || MARKED_LINK.test(t));
}

/** Every tag the edge should mark carries exactly `nonce="N"`, and nothing else has a nonce. */
function assertMarked(html, nonce, originHtml) {
  const tags = markableTags(html);
  const expected = markableTags(originHtml).length;
  assert.equal(tags.length, expected, "the edge adds or drops no tag");
  assert.ok(expected >= 15, `the demo page has at least 15 markable tags (got ${expected})`);
  for (const t of tags) {
    const nonces = [...t.matchAll(/\snonce="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(nonces, [nonce], `one nonce, this response's, on ${t}`);
  }
  assert.doesNotMatch(html, /nonce="evil"/, "the origin's nonce is replaced, never trusted");
  assert.equal([...html.matchAll(/\snonce="/g)].length, expected, "no nonce outside the marked tags");
}

/** `edgeguard nonce`: the page as the edge rewrites it, from the engine's lol_html rewriter. */
function cliNonce(html, nonce) {
  return execFileSync(CLI, ["nonce", "-", "--nonce", nonce], { input: html, maxBuffer: 64 << 20 });
}

for (const protocol of ["http", "https"]) {
  describe(`strict CSP over ${protocol}`, () => {
    const edge = () => edges[protocol];

    test("an HTML page gets the strict policy and its nonce on every script, style and preload", async () => {
      const page = await fromOrigin("/strict-demo?encoding=identity");
      const res = await get(edge(), "/strict-demo", { "accept-encoding": "gzip" });
      assert.equal(res.status, 200);
      const policy = csp(res);
      const nonce = strictNonce(policy);
      // The rest of QuoteKit's policy is kept; 'self' and the hosts leave script-src only.
      assert.deepEqual(directive(policy, "object-src"), ["'none'"]);
      assert.deepEqual(directive(policy, "base-uri"), ["'self'"]);
      assert.deepEqual(directive(policy, "frame-ancestors"), ["'none'"]);
      assert.ok(directive(policy, "connect-src").includes("https://*.supabase.co"));
      assert.deepEqual(directive(policy, "report-uri"), ["/__edge/csp-report"]);
      assert.equal(res.headers["content-security-policy-report-only"], undefined);
      assert.equal(res.headers["x-powered-by"], undefined);
      // gzip from the origin: the runtime decoded it for the rewriter and encodes it again.
      assert.equal(one(res, "content-encoding"), "gzip");
      assert.equal(res.headers["content-length"], undefined, "a rewritten body has no Content-Length");
      assert.equal(one(res, "etag"), 'W/"strict-demo-1"', "a rewritten body's ETag is weak");
      assertMarked(decoded(res).toString("utf8"), nonce, page.body.toString("utf8"));
    });

    test("every response gets a fresh nonce", async () => {
      const seen = new Set();
      for (let i = 0; i < 20; i++) {
        const res = await get(edge(), "/strict-demo?stream=0&encoding=identity");
        const nonce = strictNonce(csp(res));
        assert.match(res.body.toString("utf8"), new RegExp(`<script nonce="${nonce.replace(/[+/]/g, "\\$&")}">`));
        seen.add(nonce);
      }
      assert.equal(seen.size, 20, "20 responses, 20 different nonces");
    });

    for (const [name, query, headers, coding] of [
      ["streamed, identity", "?encoding=identity", {}, null],
      ["streamed, gzip", "", { "accept-encoding": "gzip" }, "gzip"],
      ["streamed, br", "?encoding=br", { "accept-encoding": "br" }, "br"],
      ["one write with Content-Length", "?stream=0&encoding=identity", {}, null],
      ["one write, gzip with Content-Length", "?stream=0&encoding=gzip", { "accept-encoding": "gzip" }, "gzip"],
    ]) {
      test(`the body is byte for byte \`edgeguard nonce\` of the origin's page (${name})`, async () => {
        const page = await fromOrigin("/strict-demo?encoding=identity");
        const res = await get(edge(), `/strict-demo${query}`, headers);
        assert.equal(res.status, 200);
        if (coding) assert.equal(one(res, "content-encoding"), coding);
        const nonce = strictNonce(csp(res));
        const body = decoded(res);
        const expected = cliNonce(page.body, nonce);
        assert.equal(body.toString("utf8"), expected.toString("utf8"));
        assert.ok(body.equals(expected), "byte-identical");
      });
    }

    test("the page streams through the rewriter: the first bytes arrive before the origin has finished", async (t) => {
      // Four chunks 400 ms apart: the origin needs 1.2 s for the whole page.
      const { first, end, body } = await timedGet(edge().url, "/strict-demo?encoding=identity&delay=400");
      const text = body.toString("utf8");
      const nonce = /<script nonce="([^"]+)">/.exec(text)?.[1];
      assert.ok(nonce, "the page is marked");
      t.diagnostic(`first body bytes after ${first.toFixed(0)} ms, last after ${end.toFixed(0)} ms`);
      assert.ok(end - first >= 700, `first body bytes ${first.toFixed(0)} ms, last ${end.toFixed(0)} ms: the edge does not buffer the page`);
    });

    test("JSON, scripts and stylesheets keep QuoteKit's policy and their bytes", async () => {
      for (const p of ["/strict-demo/data.json", "/_next/static/chunks/strict-main-app.js", "/_next/static/css/strict-demo.css"]) {
        const direct = await fromOrigin(p);
        const res = await get(edge(), p);
        assert.equal(res.status, 200, p);
        assertLegacy(csp(res));
        assert.ok(res.body.equals(direct.body), `${p}: untouched`);
        assert.equal(one(res, "content-length"), String(direct.body.length), `${p}: Content-Length kept`);
      }
      // The JSON holds a "<script>" string: not HTML, so not rewritten.
      const json = await get(edge(), "/strict-demo/data.json");
      assert.match(json.body.toString(), /"<script>not markup<\/script>"/);
    });

    test("HEAD gets the strict policy with a fresh nonce and no body", async () => {
      const a = await get(edge(), "/strict-demo", {}, "HEAD");
      const b = await get(edge(), "/strict-demo", {}, "HEAD");
      assert.equal(a.status, 200);
      assert.equal(a.body.length, 0);
      assert.notEqual(strictNonce(csp(a)), strictNonce(csp(b)));
    });

    test("a 304 carries no CSP, so the browser keeps the policy cached with the page", async () => {
      const res = await get(edge(), "/strict-demo", { "if-none-match": 'W/"strict-demo-1"' });
      assert.equal(res.status, 304);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers["content-security-policy"], undefined);
      assert.equal(res.headers["content-security-policy-report-only"], undefined);
    });

    test("a range (206) passes through untouched with QuoteKit's policy", async () => {
      const direct = await fromOrigin("/strict-demo", { range: "bytes=0-999" });
      const res = await get(edge(), "/strict-demo", { range: "bytes=0-999" });
      assert.equal(res.status, 206);
      assertLegacy(csp(res));
      assert.equal(one(res, "content-range"), one(direct, "content-range"));
      assert.ok(res.body.equals(direct.body), "the range's bytes are the origin's");
      assert.doesNotMatch(res.body.toString(), /nonce="(?!evil)/);
    });

    test("a content coding the edge cannot read (deflate) passes through with QuoteKit's policy", async () => {
      const direct = await fromOrigin("/strict-demo?encoding=deflate&stream=0");
      const res = await get(edge(), "/strict-demo?encoding=deflate&stream=0", { "accept-encoding": "deflate" });
      assert.equal(res.status, 200);
      assert.equal(one(res, "content-encoding"), "deflate");
      assertLegacy(csp(res));
      assert.equal(one(res, "etag"), '"strict-demo-1"', "the strong ETag stays");
      assert.ok(res.body.equals(direct.body), "the compressed bytes are the origin's");
      assert.match(zlib.inflateSync(res.body).toString(), /<script nonce="evil">/);
    });

    test("report-only: QuoteKit's policy enforced, the strict one reported, the page marked", async () => {
      const page = await fromOrigin("/strict-demo/report-only?encoding=identity");
      const res = await get(edge(), "/strict-demo/report-only?encoding=identity");
      assert.equal(res.status, 200);
      assertLegacy(csp(res));
      const nonce = strictNonce(one(res, "content-security-policy-report-only"));
      assertMarked(res.body.toString("utf8"), nonce, page.body.toString("utf8"));
    });

    test("strict = \"off\" on a route: QuoteKit's policy and the origin's bytes", async () => {
      const direct = await fromOrigin("/strict-demo/legacy?encoding=identity");
      const res = await get(edge(), "/strict-demo/legacy?encoding=identity");
      assertLegacy(csp(res));
      assert.equal(res.headers["content-security-policy-report-only"], undefined);
      assert.ok(res.body.equals(direct.body));
    });
  });
}

/** GET over raw node:http(s), timing the first body bytes and the end from the request. */
function timedGet(base, pathAndQuery) {
  const url = new URL(base);
  const lib = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = null;
    const chunks = [];
    const req = lib.request(
      { host: url.hostname, port: url.port, path: pathAndQuery, headers: { host: HOST, "accept-encoding": "identity" }, rejectUnauthorized: false, agent: false },
      (res) => {
        res.on("data", (c) => {
          first ??= performance.now() - t0;
          chunks.push(c);
        });
        res.on("end", () => resolve({ first, end: performance.now() - t0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

// ── In Chromium ─────────────────────────────────────────────────────────────────────────────

/** The value of one Prometheus sample (`name{labels}`), 0 when absent. */
function sample(text, series) {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function violationCounts(edge) {
  const res = await request(edge.url, "GET", "/__edge/metrics", { headers: { host: HOST, "x-api-key": METRICS_KEY } });
  assert.equal(res.status, 200, res.body.toString());
  const text = res.body.toString();
  return {
    accepted: sample(text, 'edgeguard_csp_reports_total{result="accepted"}'),
    elem: sample(text, 'edgeguard_csp_violations_total{directive="script-src-elem"}'),
    attr: sample(text, 'edgeguard_csp_violations_total{directive="script-src-attr"}'),
  };
}

/** Waits until the intake has counted at least `elem`/`attr` more violations than `base`. */
async function reportsArrive(edge, base, { elem, attr }) {
  const until = Date.now() + 20_000;
  for (;;) {
    const now = await violationCounts(edge);
    if (now.elem - base.elem >= elem && now.attr - base.attr >= attr) return now;
    if (Date.now() > until) assert.fail(`reports did not reach the edge: before ${JSON.stringify(base)}, now ${JSON.stringify(now)}`);
    await sleep(100);
  }
}

describe("strict CSP in Chromium", () => {
  let context;
  let profile;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), "Chromium is missing: run `make chromium`");
    profile = mkdtempSync(path.join(tmpdir(), "edgeguard-strict-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      ignoreHTTPSErrors: true, // wrangler's self-signed certificate
      args: [...CHROMIUM_ARGS, "--short-reporting-delay"], // Reporting API uploads after 100 ms instead of a minute
    });
    // Record every violation the page sees, from before its first script (CDP-injected, so
    // not subject to the page's CSP).
    await context.addInitScript(() => {
      self.__violations = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        self.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI, disposition: e.disposition }),
      );
    });
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Opens the page with the XSS in its fragment, clicks the inline-handler button, and
   * returns what ran, what was blocked and the styles applied. */
  async function visit(url, { violations }) {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      const res = await page.goto(url + XSS);
      assert.equal(res.status(), 200);
      await page.waitForFunction((n) => (self.__marks ?? []).length >= n, LEGIT.length, { timeout: 15_000 });
      await page.click("#buy");
      // The image error and the click each meet the handler check; the XSS met script-src-elem.
      await page.waitForFunction(
        ({ elem, attr }) =>
          self.__violations.filter((v) => v.directive === "script-src-elem").length >= elem &&
          self.__violations.filter((v) => v.directive === "script-src-attr").length >= attr,
        violations,
        { timeout: 15_000 },
      );
      await sleep(200); // anything late (a script that should not run) gets its chance
      const state = await page.evaluate(() => ({
        marks: [...self.__marks].sort(),
        pwned: self.pwned ?? null,
        handler: self.__handler ?? null,
        clicked: self.__clicked ?? null,
        violations: self.__violations,
        inlineStyle: getComputedStyle(document.getElementById("styled")).color,
        stylesheet: getComputedStyle(document.getElementById("buy")).backgroundColor,
        nonceAttribute: document.querySelector("script").getAttribute("nonce"),
      }));
      return { ...state, errors, csp: (await res.allHeaders())["content-security-policy"] };
    } finally {
      await page.close();
    }
  }

  test("enforce: every legitimate script runs; the injected script and inline handlers are blocked and reported", async () => {
    const edge = edges.https;
    const base = await violationCounts(edge);
    const r = await visit(`${edge.url}/strict-demo`, { violations: { elem: 1, attr: 2 } });
    strictNonce(r.csp);
    assert.deepEqual(r.marks, LEGIT, "every legitimate script ran, once");
    assert.equal(r.pwned, null, "the script the XSS wrote did not run");
    assert.equal(r.handler, null, "the onerror handler did not run");
    assert.equal(r.clicked, null, "the onclick handler did not run");
    assert.deepEqual(r.errors, []);
    // The browser's own account: the injected inline script, the two handlers, enforced.
    const elem = r.violations.filter((v) => v.directive === "script-src-elem");
    assert.deepEqual(elem, [{ directive: "script-src-elem", blocked: "inline", disposition: "enforce" }]);
    const attr = r.violations.filter((v) => v.directive === "script-src-attr");
    assert.ok(attr.length >= 2 && attr.every((v) => v.blocked === "inline" && v.disposition === "enforce"), JSON.stringify(attr));
    assert.equal(r.violations.length, elem.length + attr.length, `no other violation: ${JSON.stringify(r.violations)}`);
    // Styles: the inline <style> and the stylesheet both apply.
    assert.equal(r.inlineStyle, "rgb(45, 106, 79)");
    assert.equal(r.stylesheet, "rgb(1, 2, 3)");
    assert.equal(r.nonceAttribute, "", "Chromium hides the nonce from the DOM");
    // Chromium's reports reached the edge's intake (Reporting API, application/reports+json).
    // Chromium sends one report per distinct violation in a document: the two handlers' are
    // alike, so at least one script-src-attr report arrives.
    const now = await reportsArrive(edge, base, { elem: 1, attr: 1 });
    assert.ok(now.accepted - base.accepted >= 2);
    const lines = edge.stdout().split("\n").filter((l) => l.startsWith("{") && l.includes('"reason":"csp_report"')).map((l) => JSON.parse(l));
    assert.ok(lines.length > 0 && lines.every((l) => l.status === 204 && l.path === "/__edge/csp-report" && l.csp.violations >= 1), JSON.stringify(lines));
  });

  test("report-only: nothing is blocked, the strict policy's violations are reported", async () => {
    const edge = edges.https;
    const base = await violationCounts(edge);
    const r = await visit(`${edge.url}/strict-demo/report-only`, { violations: { elem: 1, attr: 2 } });
    assertLegacy(r.csp);
    assert.deepEqual(r.marks, LEGIT);
    assert.equal(r.pwned, 1, "QuoteKit's enforced policy lets the XSS run");
    assert.equal(r.handler, 1);
    assert.equal(r.clicked, 1);
    assert.ok(r.violations.length >= 3 && r.violations.every((v) => v.disposition === "report"), JSON.stringify(r.violations));
    assert.deepEqual([...new Set(r.violations.map((v) => v.directive))].sort(), ["script-src-attr", "script-src-elem"], "only the XSS and the handlers: no legitimate script is reported");
    await reportsArrive(edge, base, { elem: 1, attr: 1 });
  });

  test("control: without strict mode the same XSS runs", async () => {
    const r = await visit(`${edges.https.url}/strict-demo/legacy`, { violations: { elem: 0, attr: 0 } });
    assertLegacy(r.csp);
    assert.deepEqual(r.marks, LEGIT);
    assert.equal(r.pwned, 1);
    assert.equal(r.handler, 1);
    assert.equal(r.clicked, 1);
    assert.deepEqual(r.violations, []);
  });

  test("over plain http too: the same scripts run and the same ones are blocked", async () => {
    // (Chromium sends Reporting API reports over https only, so none are expected here.)
    const r = await visit(`${edges.http.url}/strict-demo`, { violations: { elem: 1, attr: 2 } });
    strictNonce(r.csp);
    assert.deepEqual(r.marks, LEGIT);
    assert.equal(r.pwned, null);
    assert.equal(r.handler, null);
    assert.equal(r.clicked, null);
  });
});
