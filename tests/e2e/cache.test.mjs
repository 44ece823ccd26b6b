// The edge cache, stale-while-revalidate, stale-if-error, the fallback page and maintenance mode,
// in real workerd (wrangler dev) in front of the demo origin (tests/e2e/cache.toml).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ROOT, jsonLines, one, request, startEdge, startOrigin } from "./harness.mjs";

const HOST = { host: "app.test" };
const PAGE = { ...HOST, accept: "text/html,application/xhtml+xml" };

async function originCount(origin, path) {
  const res = await fetch(`${origin.url}/__demo/requests`);
  return (await res.json()).paths[path] ?? 0;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The request log line of the response `res` (by its request id), once wrangler printed it. */
async function lineOf(edge, res) {
  const id = one(res, "x-request-id");
  for (let i = 0; i < 40; i++) {
    const line = jsonLines(edge).find((l) => l.msg === "request" && l.request_id === id);
    if (line) return line;
    await sleep(50);
  }
  return undefined;
}

function startCacheEdge(origin, vars = {}) {
  return startEdge({ main: "build/edge-cache/index.mjs", vars: { "EDGE_ORIGINS": `*=${origin.url}`, ...vars } });
}

describe("edge cache", () => {
  let origin;
  let edge;
  before(async () => {
    origin = await startOrigin("blue");
    edge = await startCacheEdge(origin);
  });
  after(async () => {
    await edge?.stop();
    await origin?.stop();
  });

  test("miss, then hit: one origin request; Age and Cache-Status say so; headers applied again", async () => {
    const path = "/_next/static/chunks/cached.js";
    const miss = await request(edge.url, "GET", path, { headers: HOST });
    assert.equal(miss.status, 200);
    assert.match(one(miss, "cache-status"), /^edgeguard; fwd=miss; stored; fwd-status=200$/);
    assert.equal(miss.headers["set-cookie"], undefined, "the policy removes the asset's cookie");
    const hit = await request(edge.url, "GET", path, { headers: HOST });
    assert.equal(hit.status, 200);
    assert.equal(hit.body.toString(), miss.body.toString());
    assert.match(one(hit, "cache-status"), /^edgeguard; hit; ttl=\d+$/);
    assert.match(one(hit, "age"), /^\d+$/);
    assert.equal(one(hit, "cache-control"), "public, max-age=31536000, immutable");
    assert.equal(hit.headers["set-cookie"], undefined);
    assert.equal(one(hit, "x-content-type-options"), "nosniff", "the response phase runs on a hit");
    assert.equal(hit.headers["x-edgeguard-stored"], undefined, "the cache's own headers stay inside");
    assert.notEqual(one(hit, "x-request-id"), one(miss, "x-request-id"));
    assert.equal(await originCount(origin, path), 1);
    assert.equal((await lineOf(edge, hit))?.cache, "hit");
    assert.equal((await lineOf(edge, miss))?.cache, "miss");
    const head = await request(edge.url, "HEAD", path, { headers: HOST });
    assert.equal(head.status, 200);
    assert.match(one(head, "cache-status"), /hit/);
    assert.equal(await originCount(origin, path), 1, "HEAD is answered from the GET's copy");
  });

  test("a client holding the copy (If-None-Match) gets 304 from the cache", async () => {
    const first = await request(edge.url, "GET", "/features?etag=1", { headers: PAGE });
    const etag = one(first, "etag");
    assert.match(etag, /^"page-\d+"$/);
    const asked = await originCount(origin, "/features");
    const same = await request(edge.url, "GET", "/features?etag=1", { headers: { ...PAGE, "if-none-match": `W/${etag}` } });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    assert.match(one(same, "cache-status"), /^edgeguard; hit/);
    assert.equal(one(same, "x-content-type-options"), "nosniff");
    const other = await request(edge.url, "GET", "/features?etag=1", { headers: { ...PAGE, "if-none-match": '"page-0"' } });
    assert.equal(other.status, 200, "another tag gets the copy");
    assert.equal(await originCount(origin, "/features"), asked, "both answered from the cache");
  });

  test("Vary: the HTML page and its RSC payload are separate copies of one URL", async () => {
    const asked = await originCount(origin, "/features");
    const html = await request(edge.url, "GET", "/features", { headers: PAGE });
    const rsc = await request(edge.url, "GET", "/features", { headers: { ...HOST, rsc: "1" } });
    assert.match(one(html, "content-type"), /^text\/html/);
    assert.equal(one(rsc, "content-type"), "text/x-component");
    const html2 = await request(edge.url, "GET", "/features", { headers: PAGE });
    const rsc2 = await request(edge.url, "GET", "/features", { headers: { ...HOST, rsc: "1" } });
    assert.match(one(html2, "cache-status"), /hit/);
    assert.match(one(rsc2, "cache-status"), /hit/);
    assert.match(one(html2, "content-type"), /^text\/html/, "the HTML request gets the HTML copy");
    assert.equal(one(rsc2, "content-type"), "text/x-component", "the RSC request gets the RSC copy");
    assert.equal(rsc2.body.toString(), rsc.body.toString());
    assert.equal(one(html2, "vary"), one(html, "vary"), "the origin's Vary reaches the client");
    assert.equal(await originCount(origin, "/features"), asked + 2);
  });

  test("never stored: a Set-Cookie answer, a private one, a request with a session cookie", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await request(edge.url, "GET", "/dashboard", { headers: PAGE });
      assert.equal(res.status, 200);
      assert.match(one(res, "cache-status"), /fwd=miss; detail=set-cookie/);
      assert.equal((await lineOf(edge, res))?.cache, "no-store");
    }
    assert.equal(await originCount(origin, "/dashboard"), 2);
    // /pricing is storable for anonymous visitors; with a session cookie it is personal.
    const before = await originCount(origin, "/pricing");
    const session = { ...PAGE, cookie: "sb-demo-auth-token=eyJ; ph_x=1" };
    const a = await request(edge.url, "GET", "/pricing", { headers: session });
    const b = await request(edge.url, "GET", "/pricing", { headers: session });
    assert.equal(await originCount(origin, "/pricing"), before + 2);
    for (const res of [a, b]) {
      assert.equal(res.headers["cache-status"], undefined);
      assert.equal((await lineOf(edge, res))?.cache, "bypass");
      assert.ok(res.headers["set-cookie"]?.some((c) => c.startsWith("sb-demo-auth-token=")), "the session is refreshed for its owner");
    }
    // …and the anonymous copy is not the personal answer.
    const anon = await request(edge.url, "GET", "/pricing", { headers: PAGE });
    assert.equal(anon.headers["set-cookie"], undefined);
  });

  test("stale-while-revalidate: a stale copy answers at once and one refresh replaces it", async () => {
    const first = await request(edge.url, "GET", "/pricing?swr=1&delay=400", { headers: PAGE });
    const serial = one(first, "x-demo-serial");
    const asked = await originCount(origin, "/pricing");
    await sleep(1300);
    const stale = await Promise.all([0, 1, 2].map(() => request(edge.url, "GET", "/pricing?swr=1&delay=400", { headers: PAGE })));
    for (const res of stale) {
      assert.equal(one(res, "x-demo-serial"), serial, "the stale copy answers");
      assert.match(one(res, "cache-status"), /hit; ttl=-\d+; detail=stale/);
    }
    await sleep(900); // the refresh: the origin holds its answer 400 ms
    const fresh = await request(edge.url, "GET", "/pricing?swr=1&delay=400", { headers: PAGE });
    assert.notEqual(one(fresh, "x-demo-serial"), serial, "the refresh stored a new copy");
    assert.match(one(fresh, "cache-status"), /^edgeguard; hit/);
    // Three stale answers, one refresh behind them.
    assert.equal(await originCount(origin, "/pricing"), asked + 1);
  });

  test("stale-while-revalidate asks the origin conditionally: a 304 keeps the copy, fresh again", async () => {
    const url = "/pricing?stable=1";
    const first = await request(edge.url, "GET", url, { headers: PAGE });
    assert.match(one(first, "cache-status"), /stored/);
    const body = first.body.toString();
    const asked = await originCount(origin, "/pricing");
    const notModified = async () => (await (await fetch(`${origin.url}/__demo/requests`)).json()).not_modified;
    const before = await notModified();
    await sleep(1300);
    const stale = await request(edge.url, "GET", url, { headers: { ...PAGE, "if-none-match": '"the-client-s-own"' } });
    assert.match(one(stale, "cache-status"), /detail=stale/);
    await sleep(600);
    assert.equal(await originCount(origin, "/pricing"), asked + 1, "one refresh");
    assert.equal(await notModified(), before + 1, "sent with the copy's ETag, not the client's: answered 304");
    const fresh = await request(edge.url, "GET", url, { headers: PAGE });
    assert.match(one(fresh, "cache-status"), /^edgeguard; hit; ttl=[01]$/, "renewed by the 304: fresh again");
    assert.equal(fresh.body.toString(), body);
    assert.equal(await originCount(origin, "/pricing"), asked + 1);
  });

  test("concurrent misses for one key make one origin request", async () => {
    // The origin holds its answer 400 ms, so all five requests arrive while the first waits.
    const before = await originCount(origin, "/features");
    const all = await Promise.all([0, 1, 2, 3, 4].map(() => request(edge.url, "GET", "/features?delay=400", { headers: PAGE })));
    for (const res of all) assert.equal(res.status, 200);
    assert.equal(await originCount(origin, "/features"), before + 1);
    const outcomes = [];
    for (const res of all) outcomes.push((await lineOf(edge, res))?.cache);
    assert.deepEqual(outcomes.sort(), ["collapsed", "collapsed", "collapsed", "collapsed", "miss"]);
    assert.equal(new Set(all.map((res) => one(res, "x-demo-serial"))).size, 1, "all five have the one answer");
  });

  test("the metrics and the explain contract agree on the route's cache", async () => {
    const res = await request(edge.url, "GET", "/api/things", { headers: HOST });
    assert.equal(res.headers["cache-status"], undefined, "a route without an edge cache says nothing");
    assert.equal(one(res, "cache-control"), "no-store");
  });
});

describe("when the origin is down", () => {
  let origin;
  let edge;
  let port;
  before(async () => {
    origin = await startOrigin("blue");
    port = new URL(origin.url).port;
    edge = await startCacheEdge(origin);
  });
  after(async () => {
    await edge?.stop();
    await origin?.stop();
  });

  test("stale copies stand in, uncached pages get the fallback page, APIs problem+json; back up → fresh", async () => {
    const warm = await request(edge.url, "GET", "/", { headers: PAGE });
    assert.equal(warm.status, 200);
    assert.match(one(warm, "cache-status"), /stored/);
    const serial = one(warm, "x-demo-serial");
    await origin.stop();

    const stale = await request(edge.url, "GET", "/", { headers: PAGE });
    assert.equal(stale.status, 200);
    assert.equal(one(stale, "x-demo-serial"), serial);
    assert.match(one(stale, "cache-status"), /detail=stale-if-error/);
    const staleLine = await lineOf(edge, stale);
    assert.equal(staleLine.cache, "stale-if-error");
    assert.equal(staleLine.origin_error, "unreachable");

    const page = await request(edge.url, "GET", "/dashboard", { headers: PAGE });
    assert.equal(page.status, 503);
    assert.match(one(page, "content-type"), /^text\/html/);
    assert.equal(one(page, "retry-after"), "30");
    assert.equal(one(page, "cache-control"), "no-store");
    assert.match(one(page, "content-security-policy"), /^default-src 'none'/);
    assert.match(page.body.toString(), /id="fallback"/);
    assert.equal((await lineOf(edge, page)).cache, "fallback");

    const api = await request(edge.url, "GET", "/api/things", { headers: { ...HOST, accept: "application/json" } });
    assert.equal(api.status, 502);
    assert.equal(one(api, "content-type"), "application/problem+json");
    assert.equal(JSON.parse(api.body.toString()).type, "https://edgeguard.dev/problems/origin-unreachable");

    origin = await startOrigin("blue", port);
    const back = await request(edge.url, "GET", "/dashboard", { headers: PAGE });
    assert.equal(back.status, 200);
    const fresh = await request(edge.url, "GET", "/", { headers: PAGE });
    assert.equal(fresh.status, 200);
    assert.match(one(fresh, "cache-status"), /fwd=stale/, "an edge = 0 route asks the origin again once it answers");
    assert.equal(await originCount(origin, "/"), 1);
  });

  test("a 5xx from the origin: the stored copy stands in", async () => {
    await request(edge.url, "GET", "/features", { headers: PAGE });
    await fetch(`${origin.url}/__demo/fail?status=503`, { method: "POST" });
    try {
      // /features is fresh for an hour: a hit. Past `edge` it would be stale-if-error; an
      // uncached key on the same route shows the origin's 503 is not served.
      const miss = await request(edge.url, "GET", "/features?new=1", { headers: PAGE });
      assert.equal(miss.status, 503, "nothing stored: the origin's answer passes");
      const hit = await request(edge.url, "GET", "/features", { headers: PAGE });
      assert.equal(hit.status, 200);
      const stale = await request(edge.url, "GET", "/", { headers: PAGE });
      assert.equal(stale.status, 200);
      assert.match(one(stale, "cache-status"), /detail=stale-if-error/);
    } finally {
      await fetch(`${origin.url}/__demo/fail?status=0`, { method: "POST" });
    }
  });
});

describe("cache_version", () => {
  test("a new version misses every stored copy", async () => {
    const origin = await startOrigin("blue");
    const { execFileSync } = await import("node:child_process");
    const { readFileSync, writeFileSync, mkdtempSync, copyFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(tmpdir(), "edgeguard-cache-version-"));
    copyFileSync(path.join(ROOT, "tests/e2e/cache.fallback.html"), path.join(dir, "cache.fallback.html"));
    writeFileSync(path.join(dir, "policy.toml"), readFileSync(path.join(ROOT, "tests/e2e/cache.toml"), "utf8").replace('version = "1"', 'version = "2"'));
    // Inside the repository: its wrangler.toml has the `.egb` Data rule.
    const built = path.join(ROOT, "build/edge-cache-v2");
    execFileSync(path.join(ROOT, "target/debug/edgeguard"), ["build", path.join(dir, "policy.toml"), "-o", built]);
    // Both edges share one local cache (one persisted state directory), as a deploy does.
    const state = mkdtempSync(path.join(tmpdir(), "edgeguard-cache-state-"));
    const vars = { EDGE_ORIGINS: `*=${origin.url}` };
    const asset = "/_next/static/chunks/versioned.js";
    try {
      const v1 = await startEdge({ main: "build/edge-cache/index.mjs", vars, persistTo: state });
      await request(v1.url, "GET", asset, { headers: HOST });
      const again = await request(v1.url, "GET", asset, { headers: HOST });
      assert.match(one(again, "cache-status"), /hit/);
      await v1.stop();
      const v1b = await startEdge({ main: "build/edge-cache/index.mjs", vars, persistTo: state });
      const kept = await request(v1b.url, "GET", asset, { headers: HOST });
      await v1b.stop();
      assert.match(one(kept, "cache-status"), /hit/, "the same version finds its copy after a restart");
      const v2 = await startEdge({ main: "build/edge-cache-v2/index.mjs", vars, persistTo: state });
      const res = await request(v2.url, "GET", asset, { headers: HOST });
      await v2.stop();
      assert.match(one(res, "cache-status"), /fwd=miss/);
      assert.equal(await originCount(origin, asset), 2);
    } finally {
      await origin.stop();
    }
  });
});

describe("maintenance mode", () => {
  let origin;
  let edge;
  before(async () => {
    origin = await startOrigin("blue");
    edge = await startCacheEdge(origin, { EDGE_MAINTENANCE: "1", EDGE_MAINTENANCE_SECRET: "open-sesame" });
  });
  after(async () => {
    await edge?.stop();
    await origin?.stop();
  });

  test("everyone gets 503 (pages the fallback page, APIs problem+json) except the allow-list", async () => {
    const reached = async () => (await originCount(origin, "/dashboard")) + (await originCount(origin, "/api/quotes"));
    const page = await request(edge.url, "GET", "/dashboard", { headers: { ...PAGE, "cf-connecting-ip": "203.0.113.9" } });
    assert.equal(page.status, 503);
    assert.match(one(page, "content-type"), /^text\/html/);
    assert.equal(one(page, "retry-after"), "900");
    assert.match(page.body.toString(), /id="fallback"/);
    const api = await request(edge.url, "POST", "/api/quotes", { headers: { ...HOST, "content-type": "application/json", "cf-connecting-ip": "203.0.113.9" }, body: "{}" });
    assert.equal(api.status, 503);
    assert.equal(one(api, "content-type"), "application/problem+json");
    assert.equal(JSON.parse(api.body.toString()).type, "https://edgeguard.dev/problems/maintenance");
    assert.equal(one(api, "retry-after"), "900");
    const wrong = await request(edge.url, "GET", "/dashboard", { headers: { ...PAGE, "x-maintenance-bypass": "open-sesamE" } });
    assert.equal(wrong.status, 503);
    assert.equal(await reached(), 0, "nothing reached the app");

    const office = await request(edge.url, "GET", "/dashboard", { headers: { ...PAGE, "cf-connecting-ip": "198.51.100.7" } });
    assert.equal(office.status, 200);
    const bypass = await request(edge.url, "GET", "/dashboard", { headers: { ...PAGE, "x-maintenance-bypass": "open-sesame" } });
    assert.equal(bypass.status, 200);
    const health = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
    assert.notEqual(health.status, 503, "monitors still reach the edge's own endpoints");
  });
});

describe("QuoteKit's policy, as `make run` serves it, with the demo origin stopped", () => {
  test("the front page it served is served again, other pages get the fallback page, APIs problem+json", async () => {
    const origin = await startOrigin("blue");
    const edge = await startEdge({ vars: { EDGE_ORIGINS: `*=${origin.url}` } });
    const QK = { host: "lawnquote.online", accept: "text/html" };
    try {
      const first = await request(edge.url, "GET", "/", { headers: QK });
      assert.equal(first.status, 200);
      assert.match(one(first, "cache-status"), /stored/);
      const asset = await request(edge.url, "GET", "/_next/static/chunks/app.js", { headers: QK });
      assert.equal(asset.status, 200);
      await origin.stop();
      const page = await request(edge.url, "GET", "/", { headers: QK });
      assert.equal(page.status, 200);
      assert.match(one(page, "cache-status"), /stale-if-error/);
      assert.equal(one(page, "x-frame-options"), "DENY", "QuoteKit's headers on the stored page");
      const again = await request(edge.url, "GET", "/_next/static/chunks/app.js", { headers: QK });
      assert.equal(again.status, 200);
      assert.match(one(again, "cache-status"), /^edgeguard; hit/);
      const dashboard = await request(edge.url, "GET", "/dashboard", { headers: QK });
      assert.equal(dashboard.status, 503);
      assert.match(dashboard.body.toString(), /LawnQuote is not answering right now/);
      assert.equal(one(dashboard, "retry-after"), "60");
      const api = await request(edge.url, "GET", "/api/quotes", { headers: { host: "lawnquote.online", accept: "application/json" } });
      assert.equal(api.status, 502);
      assert.equal(one(api, "content-type"), "application/problem+json");
    } finally {
      await edge.stop();
      await origin.stop().catch(() => {});
    }
  });
});
