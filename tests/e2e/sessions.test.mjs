// Verified sessions in real workerd: QuoteKit's policy (fixtures/quotekit.toml) in front of the
// demo origin, which stands in for Supabase Auth too — an ES256 key, its JWKS (counted) and
// tokens signed with it. The edge fetches the key set (EDGE_JWKS_URLS points it at the demo)
// and checks signatures with WebCrypto.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { json, jsonLines, one, request, startEdge, startOrigin } from "./harness.mjs";

const HOST = { host: "lawnquote.online" };
const UUID = "3f2a9c1e-8b4d-4e2a-9f1c-2d3e4f5a6b7c";
let origin;
let edge;

/** A token from the demo's Supabase stand-in: { token, cookie }. */
async function mint(params) {
  const res = await fetch(`${origin.url}/__demo/session?${new URLSearchParams(params)}`, { method: "POST" });
  assert.equal(res.status, 200);
  return res.json();
}

async function jwksFetches() {
  return (await (await fetch(`${origin.url}/__demo/requests`)).json()).jwks_fetches;
}

function bearer(token, extra = {}) {
  return { ...HOST, authorization: `Bearer ${token}`, ...extra };
}

function problem(res, status, reason) {
  assert.equal(res.status, status, res.body.toString());
  assert.equal(one(res, "content-type"), "application/problem+json");
  const body = json(res);
  assert.equal(body.type, `https://edgeguard.dev/problems/${reason.replaceAll("_", "-")}`);
  assert.equal(body.status, status);
  return body;
}

before(async () => {
  origin = await startOrigin("blue");
  edge = await startEdge({
    vars: { EDGE_ORIGINS: `*=${origin.url}`, EDGE_JWKS_URLS: `supabase=${origin.url}/auth/v1/.well-known/jwks.json` },
  });
});

after(async () => {
  await Promise.all([edge?.stop(), origin?.stop()]);
});

describe("require_session on /api/admin/**", () => {
  test("no session: 401 session_missing, and the key set is not fetched for it", async () => {
    const res = await request(edge.url, "GET", "/api/admin/users", { headers: HOST });
    const body = problem(res, 401, "session_missing");
    assert.match(body.detail, /signed-in `supabase` session/);
    assert.equal(await jwksFetches(), 0);
  });

  test("a valid admin token passes; the JWKS is fetched once and reused for every later token", async () => {
    const admin = await mint({ sub: "admin-1", role: "admin" });
    const res = await request(edge.url, "GET", "/api/admin/users", { headers: bearer(admin.token) });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(one(res, "x-origin-name"), "blue");
    // supabase-js's cookie (base64- JSON), and a second admin's token: no new fetch.
    const cookie = await request(edge.url, "GET", "/api/admin/users", { headers: { ...HOST, cookie: `theme=dark; ${admin.cookie}` } });
    assert.equal(cookie.status, 200);
    const other = await mint({ sub: "admin-2", role: "admin" });
    for (let i = 0; i < 3; i++) assert.equal((await request(edge.url, "GET", "/api/admin/users", { headers: bearer(other.token) })).status, 200);
    assert.equal(await jwksFetches(), 1);
  });

  test("the session cookie split into chunks (.0, .1) as supabase-js writes a large one", async () => {
    const admin = await mint({ sub: "admin-3", role: "admin" });
    const [name, value] = [admin.cookie.slice(0, admin.cookie.indexOf("=")), admin.cookie.slice(admin.cookie.indexOf("=") + 1)];
    const half = Math.ceil(value.length / 2);
    const cookie = `${name}.1=${value.slice(half)}; ${name}.0=${value.slice(0, half)}`;
    assert.equal((await request(edge.url, "GET", "/api/admin/users", { headers: { ...HOST, cookie } })).status, 200);
  });

  test("forged: a payload changed after signing, a cookie that only has the name, alg none", async () => {
    const user = await mint({ sub: "user-9", role: "user" });
    const [h, p, s] = user.token.split(".");
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    claims.app_metadata.role = "admin";
    const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
    const body = problem(await request(edge.url, "GET", "/api/admin/users", { headers: bearer(tampered) }), 401, "session_invalid");
    assert.match(body.detail, /signature does not verify/);
    problem(await request(edge.url, "GET", "/api/admin/users", { headers: { ...HOST, cookie: "sb-abcdefghijkl-auth-token=eyJhbGciOi" } }), 401, "session_invalid");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`;
    problem(await request(edge.url, "GET", "/api/admin/users", { headers: bearer(none) }), 401, "session_invalid");
  });

  test("expired, wrong audience and wrong role each get their answer", async () => {
    const expired = await mint({ sub: "admin-1", role: "admin", expires_in: "-3600" });
    problem(await request(edge.url, "GET", "/api/admin/users", { headers: bearer(expired.token) }), 401, "session_expired");
    const anon = await mint({ sub: "admin-1", role: "admin", aud: "anon" });
    const body = problem(await request(edge.url, "GET", "/api/admin/users", { headers: bearer(anon.token) }), 401, "session_invalid");
    assert.match(body.detail, /another audience/);
    const user = await mint({ sub: "user-1", role: "user" });
    const forbidden = problem(await request(edge.url, "GET", "/api/admin/users", { headers: bearer(user.token) }), 403, "session_claims");
    assert.match(forbidden.detail, /app_metadata\.role/);
  });

  test("no token, no subject, no claim value ever reaches a log line", async () => {
    const admin = await mint({ sub: "secret-subject-42", role: "admin" });
    const res = await request(edge.url, "GET", "/api/admin/users", { headers: bearer(admin.token) });
    assert.equal(res.status, 200);
    await new Promise((r) => setTimeout(r, 300));
    const out = edge.stdout() + edge.stderr();
    assert.ok(jsonLines(edge).some((l) => l.msg === "request" && l.request_id === one(res, "x-request-id")), "the request was logged");
    for (const secret of [admin.token, admin.token.split(".")[1], admin.token.split(".")[2], "secret-subject-42"]) {
      assert.ok(!out.includes(secret), `a log line carries ${secret.slice(0, 12)}…`);
    }
  });
});

describe("limits by identity", () => {
  const email = (headers) => request(edge.url, "POST", `/api/quotes/${UUID}/email`, { headers: { ...headers, "content-length": "2" }, body: "{}" });

  test("two users behind one address get a quote-email budget each; an address without a session keeps its own", async () => {
    const nat = { "cf-connecting-ip": "198.51.100.50" };
    const a = await mint({ sub: "user-a" });
    const b = await mint({ sub: "user-b" });
    for (let i = 0; i < 5; i++) assert.notEqual((await email(bearer(a.token, nat))).status, 429, `user-a #${i + 1}`);
    const refused = await email(bearer(a.token, nat));
    assert.equal(refused.status, 429);
    assert.equal(json(refused).type, "https://iana.org/assignments/http-problem-types#quota-exceeded");
    assert.notEqual((await email(bearer(b.token, nat))).status, 429, "user-b has a budget of its own");
    assert.notEqual((await email({ ...HOST, ...nat })).status, 429, "no session: counted by address");
    // user-a from another address is still user-a.
    assert.equal((await email(bearer(a.token, { "cf-connecting-ip": "203.0.113.77" }))).status, 429);
  });
});
