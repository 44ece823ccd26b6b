// The bypass suite (crates/compiler/tests/bypass.rs) against the real worker in workerd: requests
// crafted to reach a resource the QuoteKit policy protects, sent byte for byte over TLS (no
// client library rewrites them). workerd parses every URL first (WHATWG: `\` becomes `/`, dot
// segments are resolved, spaces escaped), so the assertion is on the edge's final answer:
//
//   - refused: an edge problem (or workerd's own 4xx) and the origin saw nothing, or
//   - forwarded: the origin saw a path (its own WHATWG `pathname`, from the demo origin's
//     request counts) that the edge, asked for that path directly, treats the same way —
//     forwarded too. A spelling that reached the origin while its canonical path is refused
//     would fail here.

import assert from "node:assert/strict";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";

import { json, request, startEdge, startOrigin } from "./harness.mjs";

const HOST = "lawnquote.online";
const UUID = "123e4567-e89b-12d3-a456-426614174000";
let origin;
let edge;
let ops; // the e2e test policy's build: ip_allow on /ops/**
let cases = 0;
const runtime5xx = [];

before(async () => {
  origin = await startOrigin("blue");
  [edge, ops] = await Promise.all([
    startEdge({ protocol: "https", vars: { EDGE_ORIGINS: `*=${origin.url}` } }),
    startEdge({ protocol: "https", main: "build/edge-test/index.mjs", vars: { EDGE_ORIGINS: `*=${origin.url}` } }),
  ]);
});

after(async () => {
  console.log(`bypass e2e: ${cases} crafted requests; answered 5xx by the local runtime: ${runtime5xx.length}`);
  for (const w of runtime5xx) console.log(`  ${w}`);
  await Promise.all([edge?.stop(), ops?.stop(), origin?.stop()]);
});

/**
 * One request exactly as written: `head` lines are sent verbatim (CR LF added), then the body.
 * Resolves to { status, headers (lowercase → array), body (Buffer) }.
 */
function raw(base, method, target, headerLines, body = null) {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false, servername: "localhost" });
    const chunks = [];
    socket.setTimeout(20_000, () => socket.destroy(new Error(`timeout ${method} ${target}`)));
    // Resolve as soon as the response is complete: the local proxy may hold the connection
    // open for seconds despite `connection: close`.
    socket.on("data", (c) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      if (split < 0) return;
      const head = all.subarray(0, split).toString("latin1").toLowerCase();
      const length = /\r\ncontent-length: *(\d+)/.exec(head);
      const bodyLen = all.length - split - 4;
      const complete = length
        ? bodyLen >= Number(length[1])
        : /\r\ntransfer-encoding: *chunked/.test(head)
          ? all.subarray(all.length - 5).toString() === "0\r\n\r\n"
          : method === "HEAD" || /^http\/1\.1 (1\d\d|204|304)/.test(head);
      if (complete) {
        finish();
        socket.destroy();
      }
    });
    // A refusal may close the connection while a large body is still being written (EPIPE,
    // ECONNRESET): whatever arrived is the answer, and nothing at all is status 0.
    socket.on("error", () => finish());
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("secureConnect", () => {
      const lines = [`${method} ${target} HTTP/1.1`, ...headerLines, "connection: close", "", ""];
      socket.write(Buffer.from(lines.join("\r\n"), "latin1"));
      if (body !== null) socket.write(body);
    });
    let done = false;
    function finish() {
      if (done) return;
      done = true;
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      if (split < 0) return resolve({ status: 0, headers: {}, body: all });
      const head = all.subarray(0, split).toString("latin1").split("\r\n");
      const status = Number(head[0].split(" ")[1]);
      const headers = {};
      for (const line of head.slice(1)) {
        const at = line.indexOf(":");
        (headers[line.slice(0, at).trim().toLowerCase()] ??= []).push(line.slice(at + 1).trim());
      }
      let rest = all.subarray(split + 4);
      if ((headers["transfer-encoding"] ?? []).join().includes("chunked")) rest = dechunk(rest);
      resolve({ status, headers, body: rest });
    }
  });
}

function dechunk(buf) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) break;
    const size = parseInt(buf.subarray(at, eol).toString(), 16);
    if (!size) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

// A fresh client address per request (and its direct re-request), so the policy's own rate
// limits never answer for a test that is about something else.
let client = 0;
const H = (extra = []) => {
  client++;
  return [`host: ${HOST}`, `cf-connecting-ip: 100.64.${(client >> 8) & 255}.${client & 255}`, ...extra];
};

async function originPaths() {
  const res = await request(origin.url, "GET", "/__demo/requests");
  return json(res).paths;
}

/** Paths the origin was asked for between two snapshots (health probes left out). */
function hits(beforeSnap, afterSnap) {
  return Object.keys(afterSnap).filter((p) => p !== "/api/health" && afterSnap[p] !== beforeSnap[p]);
}

const forwardedBy = (res) => (res.headers["x-origin-name"] ?? []).length > 0;

/**
 * Send one crafted request: refused (edge problem or workerd 4xx, origin untouched), or
 * forwarded with every path the origin saw treated the same by the edge when asked directly.
 * Returns the response.
 */
async function probe(base, method, target, headers, body = null, { canonicalHeaders = headers } = {}) {
  cases++;
  const beforeSnap = await originPaths();
  const res = await raw(base, method, target, headers, body);
  const seen = hits(beforeSnap, await originPaths());
  const what = `${method} ${JSON.stringify(target)} ${JSON.stringify(headers)} → ${res.status}`;
  if (process.env.BYPASS_TRACE) console.error(`${Date.now() % 100000} ${what}`);
  if (!forwardedBy(res)) {
    // 4xx from the edge or workerd. An absolute-form target gets a 500 from `wrangler dev`'s
    // local proxy before workerd sees it (Cloudflare's front end accepts that form): not the
    // edge's answer, but nothing reached the origin either, which is what is checked here.
    assert.ok(res.status >= 400 || res.status === 0, `${what}: neither forwarded nor refused: ${res.body}`);
    if (res.status >= 500) runtime5xx.push(what);
    assert.deepEqual(seen, [], `${what}: refused, yet the origin saw ${seen}`);
    return res;
  }
  assert.ok(seen.length >= 1, `${what}: forwarded but the origin counted no path`);
  for (const p of seen) {
    const direct = await raw(base, method, p, canonicalHeaders, body);
    assert.ok(forwardedBy(direct), `${what}: the origin saw ${p}, which the edge refuses (${direct.status}) when asked directly`);
  }
  return res;
}

/** Spellings of a path (the Rust suite's list, as raw request targets). */
function spellings(path) {
  const at = path.lastIndexOf("/");
  const head = path.slice(0, at);
  const last = path.slice(at + 1);
  const hex = last.charCodeAt(0).toString(16);
  const rest = last.slice(1);
  return [
    path,
    `${head}/%${hex}${rest}`,
    `${head}/%${hex.toUpperCase()}${rest}`,
    `${head}/%25${hex}${rest}`,
    `/${path}`,
    path.replace("/", "//"),
    `${head}/./${last}`,
    `${head}/x/../${last}`,
    `${head}/x/%2e%2e/${last}`,
    `${head}/x/%2E./${last}`,
    `${head}/%2e/${last}`,
    `/x/..${path}`,
    `${path}/`,
    `${path}/.`,
    `${path}.`,
    `${path};x=1`,
    `${path}%3Bx=1`,
    `${head}%2f${last}`,
    `${head}%2F${last}`,
    `${head}%5c${last}`,
    `${head}\\${last}`,
    `${path}%00`,
    `${path}%`,
    `${path}%g0`,
    `/..${path}`,
    `/%2e%2e${path}`,
    `${path}%20`,
    `${path}\t`,
    `${head}%C0%AF${last}`,
    `${head}/%c0%ae%c0%ae/${last}`,
    `${head}%EF%BC%8F${last}`,
    `${head}\u00ef\u00bc\u008f${last}`, // fullwidth solidus as raw UTF-8 bytes
    path.toUpperCase(),
    `https://${HOST}${path}`,
    `https://${HOST.toUpperCase()}.:443${path}`,
  ];
}

/** Every spelling of a protected path: refused, or the origin gets a path the edge also forwards. */
async function allSpellings(method, path, extra = [], body = null) {
  const canonical = await raw(edge.url, method, path, H(extra), body);
  assert.ok(!forwardedBy(canonical), `${method} ${path} must be refused for this suite to mean anything`);
  for (const target of spellings(path)) await probe(edge.url, method, target, H(extra), body);
}

describe("bypass in workerd", () => {
  test("block: debug and proxy routes under every spelling", async () => {
    for (const path of ["/api/debug-oauth", "/api/supabase/functions/run", "/debug/env", "/api/formbricks/test"]) {
      await allSpellings("GET", path);
    }
  });

  test("methods: DELETE on a GET route; method-override headers are stripped", async () => {
    await allSpellings("DELETE", `/api/quotes/${UUID}/pdf`);
    for (const name of ["X-HTTP-Method-Override", "x-method-override", "X-HTTP-Method"]) {
      const res = await probe(edge.url, "GET", "/api/quotes", H([`${name}: DELETE`]));
      assert.ok(forwardedBy(res));
      const echo = json(res);
      assert.equal(echo.method, "GET");
      assert.equal(echo.headers[name.toLowerCase()], undefined, `${name} reached the origin`);
      const refused = await probe(edge.url, "DELETE", `/api/quotes/${UUID}/pdf`, H([`${name}: GET`]));
      assert.equal(refused.status, 405);
    }
    for (const method of ["delete", "PROPFIND", "BREW"]) {
      const res = await probe(edge.url, method, `/api/quotes/${UUID}/pdf`, H());
      assert.ok(!forwardedBy(res));
    }
  });

  test("require_cookie: /api/admin/** without a session", async () => {
    await allSpellings("GET", "/api/admin/users");
    for (const cookie of ["sb-abc-auth-token=", "SB-abc-AUTH-TOKEN=x", "xsb-abc-auth-token=x", "a=sb-abc-auth-token=x"]) {
      assert.equal((await probe(edge.url, "GET", "/api/admin/users", H([`cookie: ${cookie}`]))).status, 401);
    }
    for (const name of ["cookie2", "set-cookie", "x-cookie"]) {
      assert.equal((await probe(edge.url, "GET", "/api/admin/users", H([`${name}: sb-abc-auth-token=x`]))).status, 401);
    }
    // CR, LF and NUL inside a value: never a second header, never forwarded.
    for (const v of ["x\rcookie: sb-abc-auth-token=x", "sb-abc-auth-token=x\u0000"]) {
      await probe(edge.url, "GET", "/api/admin/users", H([`cookie: ${v}`]));
    }
  });

  test("api_key: /api/admin/metrics with a wrong, padded or repeated key", async () => {
    await allSpellings("GET", "/api/admin/metrics", ["x-api-key: wrong"]);
    const ok = await probe(edge.url, "GET", "/api/admin/metrics", H(["X-API-KEY: demo-metrics-key"]));
    assert.equal(ok.status, 200);
    for (const lines of [["x-api-key: DEMO-METRICS-KEY"], ["x-api-key: wrong", "x-api-key: demo-metrics-key"], ["x_api_key: demo-metrics-key"], ["authorization: Bearer demo-metrics-key"]]) {
      assert.equal((await probe(edge.url, "GET", "/api/admin/metrics", H(lines))).status, 401, lines.join());
    }
  });

  test("ip_allow: only the trusted header counts (e2e test policy, /ops/**)", async () => {
    const host = "host: app.test";
    const allowed = await raw(ops.url, "GET", "/ops/x", [host, "cf-connecting-ip: 203.0.113.9"]);
    assert.ok(forwardedBy(allowed), `${allowed.status} ${allowed.body}`);
    for (const lines of [
      ["cf-connecting-ip: 6.6.6.6", "x-forwarded-for: 203.0.113.9"],
      ["cf-connecting-ip: 6.6.6.6", "x-real-ip: 203.0.113.9"],
      ["cf-connecting-ip: 6.6.6.6", "forwarded: for=203.0.113.9"],
      ["cf-connecting-ip: 6.6.6.6", "true-client-ip: 203.0.113.9"],
      ["x-forwarded-for: 203.0.113.9"],
      ["cf-connecting-ip: 203.0.113.9, 6.6.6.6"],
      ["cf-connecting-ip: 203.0.113.9", "cf-connecting-ip: 6.6.6.6"],
      ["cf-connecting-ip: [203.0.113.9]"],
    ]) {
      for (const target of ["/ops/x", "//ops/x", "/x/../ops/x", "/%6fps/x", "/ops/./x", "/ops"]) {
        const res = await probe(ops.url, "GET", target, [host, ...lines], null, { canonicalHeaders: [host, ...lines] });
        assert.equal(res.status, 403, `${target} ${lines}`);
      }
    }
  });

  test("limits: one client under any spelling, spoofed address or second header line", async () => {
    const ip = "203.0.113.91";
    const email = `/api/quotes/${UUID}/email`;
    const post = (target, lines) => probe(edge.url, "POST", target, [`host: ${HOST}`, "content-length: 2", ...lines], "{}");
    for (let i = 0; i < 5; i++) {
      const res = await raw(edge.url, "POST", email, [`host: ${HOST}`, "content-length: 2", `cf-connecting-ip: ${ip}`], "{}");
      assert.equal(res.status, 200);
    }
    for (const target of [email, `${email}/`, `/${email}`, `/api/./quotes/${UUID}/email`, `/api/quotes/${UUID}/x/../email`, `/api/quotes/${UUID}/%65mail`, `${email}?a=1`, `/api/quotes/${UUID.toUpperCase()}/email`]) {
      assert.equal((await post(target, [`cf-connecting-ip: ${ip}`])).status, 429, target);
    }
    for (const spoof of ["x-forwarded-for: 192.0.2.50", "x-real-ip: 192.0.2.50", "forwarded: for=192.0.2.50", "true-client-ip: 192.0.2.50"]) {
      assert.equal((await post(email, [`cf-connecting-ip: ${ip}`, spoof])).status, 429, spoof);
    }
    // Two lines: the last is the client (workerd joins them; the engine reads the last entry).
    assert.equal((await post(email, ["cf-connecting-ip: 192.0.2.51", `cf-connecting-ip: ${ip}`])).status, 429);
    assert.equal((await post(email, [`cf-connecting-ip: 192.0.2.52, ${ip}`])).status, 429);
  });

  test("max_body: lengths that lie, chunked bodies, two lengths", async () => {
    const stripe = "/api/webhooks/stripe";
    const base = [`host: ${HOST}`, "cf-connecting-ip: 198.51.100.7", "stripe-signature: t=1"];
    const big = Buffer.alloc(2 * 1024 * 1024, 120);
    const chunked = Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from("\r\n0\r\n\r\n")]);
    assert.equal((await probe(edge.url, "POST", stripe, [...base, `content-length: ${big.length}`], big)).status, 413);
    for (const [lines, body] of [
      [["transfer-encoding: chunked"], chunked],
      [["content-length: 2", "transfer-encoding: chunked"], chunked],
      [["transfer-encoding: chunked", "content-length: 2"], chunked],
      [["content-length: 2", "content-length: 2097152"], big],
      [["content-length: 2, 2097152"], big],
      [["content-length: +2"], Buffer.from("{}")],
    ]) {
      const res = await probe(edge.url, "POST", stripe, [...base, ...lines], body);
      assert.ok(!forwardedBy(res), `${lines}: ${res.status}`);
    }
    for (const target of [`${stripe}/`, "/api//webhooks/stripe", "/api/webhooks/%73tripe"]) {
      assert.equal((await probe(edge.url, "POST", target, [...base, `content-length: ${big.length}`], big)).status, 413, target);
    }
  });

  test("headers: CR, LF, NUL, bad names, too many, too large", async () => {
    for (const line of ["x-a: a\rb", "x-a: a\u0000b", "x-a : v", "bad name: v", "x-a\tb: v", "x-a: a\nb"]) {
      const res = await probe(edge.url, "GET", "/api/quotes", H([line]));
      if (forwardedBy(res)) {
        // The local HTTP parser repaired it (`x-a : v` → `x-a: v`) before the edge saw it: the
        // origin then gets the header the edge checked, never a raw CR, LF or NUL.
        for (const [name, values] of Object.entries(json(res).headers)) {
          assert.match(name, /^[!#$%&'*+.^_`|~0-9a-z-]+$/, JSON.stringify(line));
          for (const v of values) assert.ok(!/[\r\n\0]/.test(v), JSON.stringify(line));
        }
      }
    }
    const many = Array.from({ length: 120 }, (_, i) => `x-h${i}: v`);
    assert.ok(!forwardedBy(await probe(edge.url, "GET", "/api/quotes", H(many))));
    assert.ok(!forwardedBy(await probe(edge.url, "GET", "/api/quotes", H([`cookie: ${"a".repeat(40 * 1024)}`]))));
    assert.ok(!forwardedBy(await probe(edge.url, "GET", "/api/quotes", H(Array.from({ length: 10 }, () => `x-part: ${"b".repeat(4000)}`)))));
  });

  test("host: port, trailing dot, case, duplicates, absolute-form authority", async () => {
    for (const host of ["LawnQuote.Online", "lawnquote.online.", "lawnquote.online:443", "LAWNQUOTE.ONLINE.:8443"]) {
      const res = await probe(edge.url, "GET", "/api/quotes", [`host: ${host}`, "cf-connecting-ip: 198.51.100.7"]);
      assert.ok(forwardedBy(res), `${host}: ${res.status}`);
      assert.deepEqual(json(res).headers["x-forwarded-host"], [HOST]);
    }
    for (const lines of [
      ["host: evil.example"],
      ["host: lawnquote.online.evil.example"],
      ["host: lawnquote.online..", ],
      ["host: lawnquote.online", "host: evil.example"],
      ["host: evil.example", "host: lawnquote.online"],
      ["host: user@lawnquote.online"],
      [],
    ]) {
      const res = await probe(edge.url, "GET", "/api/quotes", [...lines, "cf-connecting-ip: 198.51.100.7"]);
      assert.ok(!forwardedBy(res), `${lines}: ${res.status}`);
    }
    // Absolute-form targets: the authority and Host disagree. Whichever workerd picks, the
    // edge checks that one, and the origin is told the edge's host.
    for (const [target, host] of [
      [`https://evil.example/api/quotes`, HOST],
      [`https://${HOST}/api/quotes`, "evil.example"],
      [`https://${HOST}/api/admin/users`, "evil.example"],
      [`https://${HOST}@evil.example/api/quotes`, HOST],
    ]) {
      const res = await probe(edge.url, "GET", target, [`host: ${host}`, "cf-connecting-ip: 198.51.100.7"]);
      if (forwardedBy(res)) assert.deepEqual(json(res).headers["x-forwarded-host"], [HOST], target);
      if (target.endsWith("/admin/users")) assert.ok(!forwardedBy(res));
    }
  });
});
