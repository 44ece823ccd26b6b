// The QuoteKit policy, enforced by the real worker in workerd in front of the demo origin:
// every pipeline stage and reason code, over https and plain http.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { json, one, request, startEdge, startOrigin } from "./harness.mjs";

const HOST = { host: "lawnquote.online" };
const UUID = "123e4567-e89b-12d3-a456-426614174000";
let origin;
let edge;
let plain;

before(async () => {
  origin = await startOrigin("blue");
  // The demo origin stands in for Supabase Auth too (its JWKS signs the admin sessions).
  const vars = { EDGE_ORIGINS: `*=${origin.url}`, EDGE_JWKS_URLS: `supabase=${origin.url}/auth/v1/.well-known/jwks.json` };
  [edge, plain] = await Promise.all([startEdge({ protocol: "https", vars }), startEdge({ protocol: "http", vars })]);
});

after(async () => {
  await Promise.all([edge?.stop(), plain?.stop(), origin?.stop()]);
});

function assertProblem(res, status, type) {
  assert.equal(res.status, status, res.body.toString());
  assert.equal(one(res, "content-type"), "application/problem+json");
  const body = json(res);
  assert.equal(body.status, status);
  assert.equal(body.type, `https://edgeguard.dev/problems/${type}`);
  assert.equal(body.request_id, one(res, "x-request-id"));
  // Refusals carry the security headers too.
  assert.ok(one(res, "content-security-policy").includes("object-src 'none'"));
  assert.equal(one(res, "x-frame-options"), "DENY");
  return body;
}

describe("https", () => {
  test("forwarded: security headers replaced, never duplicated; origin's removed; cookies intact", async () => {
    const res = await request(edge.url, "GET", "/dashboard", { headers: HOST });
    assert.equal(res.status, 200);
    assert.equal(one(res, "x-origin-name"), "blue");
    // The origin sends its own CSP and X-Frame-Options: exactly one of each reaches the client.
    assert.ok(one(res, "content-security-policy").startsWith("default-src 'self';"));
    assert.equal(one(res, "x-frame-options"), "DENY");
    assert.equal(one(res, "strict-transport-security"), "max-age=31536000; includeSubDomains");
    assert.equal(res.headers["x-powered-by"], undefined);
    assert.equal(res.headers["server"], undefined);
    assert.deepEqual(res.headers["set-cookie"]?.sort(), [
      "sb-demo-auth-token=refreshed; Path=/; HttpOnly; Secure; SameSite=Lax",
      "theme=light; Path=/",
    ]);
    assert.match(one(res, "server-timing"), /^edge;dur=\d+, origin;dur=\d+$/);
    assert.match(one(res, "x-request-id"), /^[0-9a-f]{32}$/);
    assert.equal(one(res, "ratelimit-policy"), '"pages";q=600;w=300');
  });

  test("client-sent forwarding headers are replaced with the edge's", async () => {
    const res = await request(edge.url, "GET", "/api/echo", {
      headers: {
        ...HOST,
        "cf-connecting-ip": "198.51.100.23",
        "x-forwarded-for": "6.6.6.6",
        "x-real-ip": "6.6.6.6",
        forwarded: "for=6.6.6.6",
        "x-forwarded-host": "evil.example",
        "cf-ray": "8c1f00aa-IAD",
      },
    });
    const echo = json(res);
    assert.deepEqual(echo.headers["x-forwarded-for"], ["198.51.100.23"]);
    assert.deepEqual(echo.headers["x-real-ip"], ["198.51.100.23"]);
    assert.deepEqual(echo.headers["x-forwarded-host"], ["lawnquote.online"]);
    assert.deepEqual(echo.headers["x-forwarded-proto"], ["https"]);
    assert.deepEqual(echo.headers["forwarded"], ['for=198.51.100.23;host="lawnquote.online";proto=https']);
    assert.deepEqual(echo.headers["x-request-id"], ["8c1f00aa-IAD"], "the trusted cf-ray is the request id");
    assert.equal(one(res, "x-request-id"), "8c1f00aa-IAD");
  });

  test("request bodies reach the origin byte for byte (Stripe signs them)", async () => {
    const body = randomBytes(700_000);
    const res = await request(edge.url, "POST", "/api/webhooks/stripe?x=1", {
      headers: { ...HOST, "stripe-signature": "t=1,v1=abc", "content-type": "application/json", "content-length": String(body.length) },
      body,
    });
    assert.equal(res.status, 200, res.body.toString());
    const echo = json(res);
    assert.equal(echo.body_bytes, body.length);
    assert.equal(echo.body_sha256, createHash("sha256").update(body).digest("hex"));
    assert.equal(echo.url, "/api/webhooks/stripe?x=1");
    assert.equal(one(res, "cache-control"), "no-store");
  });

  test("static assets: cached immutable, cookies stripped, not rate limited", async () => {
    const res = await request(edge.url, "GET", "/_next/static/chunks/app.js", { headers: HOST });
    assert.equal(res.status, 200);
    assert.equal(one(res, "cache-control"), "public, max-age=31536000, immutable");
    assert.equal(res.headers["set-cookie"], undefined);
    assert.equal(res.headers["ratelimit"], undefined);
  });

  test("canonical host redirect carries HSTS", async () => {
    const res = await request(edge.url, "GET", "/pricing?plan=pro", { headers: { host: "www.lawnquote.online" } });
    assert.equal(res.status, 301);
    assert.equal(one(res, "location"), "https://lawnquote.online/pricing?plan=pro");
    assert.equal(one(res, "strict-transport-security"), "max-age=31536000; includeSubDomains");
  });

  test("sanitize: 400, 414, 431", async () => {
    assertProblem(await request(edge.url, "GET", "/api/a%2fb", { headers: HOST }), 400, "bad-request");
    assertProblem(await request(edge.url, "GET", "/api/%zz", { headers: HOST }), 400, "bad-request");
    assertProblem(await request(edge.url, "GET", `/${"a".repeat(9000)}`, { headers: HOST }), 414, "uri-too-long");
    const many = { ...HOST };
    for (let i = 0; i < 120; i++) many[`x-h${i}`] = "v";
    assertProblem(await request(edge.url, "GET", "/", { headers: many }), 431, "headers-too-large");
  });

  test("host: 421", async () => {
    assertProblem(await request(edge.url, "GET", "/", { headers: { host: "evil.example" } }), 421, "host-not-allowed");
  });

  test("route: blocked, 405 with Allow, typed parameter 404; debug-subscription stays reachable", async () => {
    assertProblem(await request(edge.url, "GET", "/api/debug-oauth", { headers: HOST }), 404, "blocked");
    assertProblem(await request(edge.url, "GET", "/api/x/../debug-%61ccount", { headers: HOST }), 404, "blocked");
    const ok = await request(edge.url, "POST", "/api/debug-subscription", { headers: { ...HOST, "content-length": "2" }, body: "{}" });
    assert.equal(ok.status, 200);
    assert.equal(json(ok).url, "/api/debug-subscription");
    const res = await request(edge.url, "DELETE", `/api/quotes/${UUID}/pdf`, { headers: HOST });
    assertProblem(res, 405, "method-not-allowed");
    assert.equal(one(res, "allow"), "GET, HEAD");
    assertProblem(await request(edge.url, "GET", "/api/quotes/not-a-uuid/pdf", { headers: HOST }), 404, "not-found");
    const pdf = await request(edge.url, "GET", `/api/quotes/${UUID}/pdf`, { headers: HOST });
    assert.equal(pdf.status, 200);
  });

  test("access: 401 without session or key, 400 without signature, 413, 411", async () => {
    assertProblem(await request(edge.url, "GET", "/api/admin/users", { headers: HOST }), 401, "session-missing");
    assertProblem(await request(edge.url, "GET", "/api/admin/users", { headers: { ...HOST, cookie: "sb-abc-auth-token.0=x" } }), 401, "session-invalid");
    const session = await (await fetch(`${origin.url}/__demo/session?sub=admin-1&role=admin`, { method: "POST" })).json();
    const admin = await request(edge.url, "GET", "/api/admin/users", { headers: { ...HOST, cookie: session.cookie } });
    assert.equal(admin.status, 200);
    assertProblem(await request(edge.url, "GET", "/api/admin/metrics", { headers: { ...HOST, "x-api-key": "wrong" } }), 401, "unauthorized");
    const metrics = await request(edge.url, "GET", "/api/admin/metrics", { headers: { ...HOST, "x-api-key": "demo-metrics-key" } });
    assert.equal(metrics.status, 200);
    assertProblem(
      await request(edge.url, "POST", "/api/webhooks/stripe", { headers: { ...HOST, "content-length": "2" }, body: "{}" }),
      400,
      "missing-header",
    );
    const big = Buffer.alloc(2 * 1024 * 1024, 120);
    const tooBig = await request(edge.url, "POST", "/api/webhooks/stripe", {
      headers: { ...HOST, "stripe-signature": "t=1", "content-length": String(big.length) },
      body: big,
    });
    assertProblem(tooBig, 413, "payload-too-large");
    const chunked = await request(edge.url, "POST", "/api/webhooks/stripe", {
      headers: { ...HOST, "stripe-signature": "t=1", "transfer-encoding": "chunked" },
      body: "{}",
    });
    assertProblem(chunked, 411, "length-required");
  });

  test("limits: 429 after the burst, with decreasing r, Retry-After and quota-exceeded", async () => {
    const headers = { ...HOST, "cf-connecting-ip": "203.0.113.77", "content-length": "2" };
    const remaining = [];
    for (let i = 0; i < 5; i++) {
      const res = await request(edge.url, "POST", `/api/quotes/${UUID}/email`, { headers, body: "{}" });
      assert.equal(res.status, 200);
      remaining.push(Number(/r=(\d+)/.exec(one(res, "ratelimit"))[1]));
    }
    assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
    const refused = await request(edge.url, "POST", `/api/quotes/${UUID}/email`, { headers, body: "{}" });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers["content-type"][0], "application/problem+json");
    const body = json(refused);
    assert.equal(body.type, "https://iana.org/assignments/http-problem-types#quota-exceeded");
    assert.ok(Number(one(refused, "retry-after")) >= 700);
    assert.equal(one(refused, "ratelimit-policy"), '"quote-email";q=5;w=3600');
    // Another client is not affected.
    const other = await request(edge.url, "POST", `/api/quotes/${UUID}/email`, {
      headers: { ...headers, "cf-connecting-ip": "203.0.113.78" },
      body: "{}",
    });
    assert.equal(other.status, 200);
  });

  test("health: answered by the edge from origin probes, HEAD too, never cached", async () => {
    const res = await request(edge.url, "GET", "/__edge/health", { headers: HOST });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(one(res, "content-type"), "application/health+json");
    assert.equal(one(res, "cache-control"), "no-store");
    const body = json(res);
    // `warn` is the policy's warn_after (100 ms) on a loaded machine: still up, as the check says.
    const up = (status, check) => status === "pass" || (status === "warn" && check.observedValue >= 100);
    const checks = body.checks["origin:responseTime"];
    assert.deepEqual(checks.map((c) => c.componentId), ["blue", "green"]);
    for (const c of checks) assert.ok(up(c.status, c), JSON.stringify(c));
    assert.ok(["pass", "warn"].includes(body.status), body.status);
    assert.equal(body.releaseId.length, 64);
    const head = await request(edge.url, "HEAD", "/__edge/health", { headers: HOST });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const post = await request(edge.url, "POST", "/__edge/health", { headers: { ...HOST, "content-length": "0" } });
    assert.equal(post.status, 405);
    assert.equal(one(post, "allow"), "GET, HEAD");
  });
});

describe("plain http", () => {
  test("redirects to https on the same host: 301 for GET, 308 for POST, no HSTS", async () => {
    const get = await request(plain.url, "GET", "/pricing", { headers: { host: "www.lawnquote.online" } });
    assert.equal(get.status, 301);
    assert.equal(one(get, "location"), "https://www.lawnquote.online/pricing");
    assert.equal(get.headers["strict-transport-security"], undefined);
    const post = await request(plain.url, "POST", "/api/quotes", { headers: { ...HOST, "content-length": "0" } });
    assert.equal(post.status, 308);
    assert.equal(one(post, "location"), "https://lawnquote.online/api/quotes");
  });

  test("health answers over http (probes need no TLS)", async () => {
    const res = await request(plain.url, "GET", "/__edge/health", { headers: HOST });
    assert.equal(res.status, 200);
    assert.ok(["pass", "warn"].includes(json(res).status), json(res).status);
  });
});

// The outside review's findings that the runtime carries (issue #15), in workerd.
describe("review findings", () => {
  test("Next.js internal headers never reach the origin (CVE-2025-29927 and the router's own)", async () => {
    const sent = {
      "x-middleware-subrequest": "middleware:middleware:middleware:middleware:middleware",
      "x-middleware-subrequest-id": "1",
      "x-middleware-rewrite": "/api/admin/users",
      "x-invoke-path": "/api/admin/users",
      "x-matched-path": "/api/admin/users",
      "x-now-route-matches": "1",
      "x-kept": "yes",
    };
    const res = await request(edge.url, "POST", "/api/quotes", { headers: { ...HOST, ...sent, "content-type": "application/json", "content-length": "2", cookie: "sb-x-auth-token=1" }, body: "{}" });
    assert.equal(res.status, 200, res.body.toString());
    const seen = json(res).headers;
    for (const name of Object.keys(sent).filter((n) => n !== "x-kept")) assert.equal(seen[name], undefined, name);
    assert.deepEqual(seen["x-kept"], ["yes"]);
  });

  test("the client address is CF-Connecting-IP, and an IPv6 client is its /64", async () => {
    // quote-email (5/hour, global): five addresses of one /64 use the client's five emails.
    const url = `/api/quotes/${UUID}/email`;
    const send = (ip) => request(edge.url, "POST", url, { headers: { ...HOST, "cf-connecting-ip": ip, "content-length": "2", cookie: "sb-x-auth-token=1" }, body: "{}" });
    for (let i = 1; i <= 5; i++) assert.equal((await send(`2001:db8:e2e:1::${i}`)).status, 200, `address ${i}`);
    const sixth = await send("2001:db8:e2e:1::ffff");
    assert.equal(sixth.status, 429, "the sixth address of the same /64 is the same client");
    assert.equal(json(sixth).type, "https://iana.org/assignments/http-problem-types#quota-exceeded");
    assert.equal((await send("2001:db8:e2e:2::1")).status, 200, "another /64 is another client");
  });

  test("the eleventh wrong API key gets 429, the right one too until the wait is over", async () => {
    const metrics = (key) => request(edge.url, "GET", "/api/admin/metrics", { headers: { ...HOST, "cf-connecting-ip": "203.0.113.77", "x-api-key": key } });
    for (let i = 0; i < 10; i++) assert.equal((await metrics(`guess-${i}`)).status, 401, `guess ${i}`);
    const locked = await metrics("guess-10");
    assert.equal(locked.status, 429);
    assert.ok(Number(one(locked, "retry-after")) >= 1);
    assert.equal((await metrics("demo-metrics-key")).status, 429);
  });
});
