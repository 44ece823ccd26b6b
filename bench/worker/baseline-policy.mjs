// The benchmark's baseline: fixtures/quotekit.toml written by hand as an idiomatic JS worker —
// what a team would write instead of edgeguard. It does the same work as the edge for the
// benchmarked traffic (GET pages forwarded to the origin):
//
//   sanitize   URL length, header count and bytes, encoded `/` `\` NUL, dot segments (URL parser)
//   host       allowed hosts (421), http → https and www → apex redirects, the health path
//   route      a regex route table, most specific first; typed params (404), blocked routes,
//              methods (405), required header / session cookie / API key, Content-Length cap
//   limit      GCRA per client IP (`cf-connecting-ip`) in a Map, RateLimit / RateLimit-Policy
//   forward    the client's X-Forwarded-* / Forwarded / X-Real-IP / X-Request-Id replaced by
//              the edge's own, request id from cf-ray or random, 10 s timeout → 502/504
//   respond    Server and X-Powered-By removed, the same security headers set with a
//              `headers.set` loop, HSTS on https, route cache, X-Request-Id, Server-Timing
//
// Not modelled because the benchmarked requests never reach them: the canary lane draw and
// sticky cookie (the canary is at 0 %, so the edge returns the active origin at once) and
// origin failover. ORIGIN is a text binding (baseline.capnp).

const HOSTS = new Set(["lawnquote.online", "www.lawnquote.online"]);
const CANONICAL_HOST = "lawnquote.online";
const HEALTH_PATH = "/__edge/health";
const MAX_URL = 8 * 1024;
const MAX_HEADER_BYTES = 32 * 1024;
const MAX_HEADERS = 100;
const ORIGIN_TIMEOUT_MS = 10_000;
const MAX_LIMITER_KEYS = 100_000;

import { HSTS, REMOVE, SECURITY_HEADERS, forwardHeaders } from "./quotekit-headers.mjs";

const LIMITS = {
  api: { name: "api", count: 100, windowSecs: 900, burst: 20 },
  pages: { name: "pages", count: 600, windowSecs: 300, burst: 150 },
  webhook: { name: "webhook", count: 100, windowSecs: 60, burst: 100 },
  admin: { name: "admin", count: 60, windowSecs: 60, burst: 20 },
  "quote-email": { name: "quote-email", count: 5, windowSecs: 3600, burst: 5 },
  metrics: { name: "metrics", count: 10, windowSecs: 60, burst: 2, header: "x-api-key" },
};

const ALL = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INVOICE_ID = /^(in|sub)_[A-Za-z0-9_-]+$/;
// SHA-256 of the demo metrics key (fixtures/quotekit.toml [api_keys.metrics]).
const METRICS_KEYS = ["f449e8d17b6f79dd2781f6b03268f5fb48d739d96f0c6a4572e9a42d4a00112a"];

// Most specific first; the first match wins. Unset fields take the [defaults].
const DEFAULTS = { methods: ALL, limit: "api", maxBody: 10 * 1024 * 1024, cache: null, block: null };
const ROUTES = [
  { re: /^\/api\/admin\/metrics$/, methods: ["GET", "HEAD"], apiKey: METRICS_KEYS, limit: "metrics", cache: "no-store" },
  { re: /^\/api\/admin(?:\/.*)?$/, requireCookie: /^sb-.*-auth-token.*$/, limit: "admin", cache: "no-store" },
  { re: /^\/api\/webhooks\/stripe$/, methods: ["POST"], requireHeaders: ["stripe-signature"], maxBody: 1024 * 1024, limit: "webhook", cache: "no-store" },
  { re: /^\/api\/webhooks$/, methods: ["POST"], maxBody: 1024 * 1024, limit: "webhook", cache: "no-store" },
  { re: /^\/api\/health$/, methods: ["GET", "HEAD"], limit: null, cache: "no-store" },
  { re: /^\/api\/quotes\/([^/]+)\/pdf$/, params: [UUID], methods: ["GET", "HEAD"], cache: "no-store" },
  { re: /^\/api\/quotes\/([^/]+)\/email$/, params: [UUID], methods: ["POST"], limit: "quote-email", cache: "no-store" },
  { re: /^\/api\/quotes\/([^/]+)\/status$/, params: [UUID], methods: ["PATCH"], cache: "no-store" },
  { re: /^\/api\/quotes\/bulk-delete$/, methods: ["DELETE"], cache: "no-store" },
  { re: /^\/api\/quotes\/bulk-export$/, methods: ["POST"], cache: "no-store" },
  { re: /^\/api\/quotes\/bulk-status$/, methods: ["PATCH"], cache: "no-store" },
  { re: /^\/api\/quotes$/, methods: ["GET", "POST"], cache: "no-store" },
  { re: /^\/api\/billing-history\/([^/]+)\/invoice$/, params: [INVOICE_ID], methods: ["GET", "POST"], cache: "no-store" },
  { re: /^\/api\/debug-subscription$/, methods: ["POST"], cache: "no-store" },
  { re: /^\/api\/debug-[^/]*$/, block: 404, cache: "no-store" },
  { re: /^\/api\/test-supabase-connection$/, block: 404, cache: "no-store" },
  { re: /^\/api\/formbricks\/test$/, block: 404, cache: "no-store" },
  { re: /^\/api\/supabase\/functions(?:\/.*)?$/, block: 404, cache: "no-store" },
  { re: /^\/api(?:\/.*)?$/, cache: "no-store" },
  { re: /^\/_next\/static(?:\/.*)?$/, methods: ["GET", "HEAD"], limit: null, cache: "public, max-age=31536000, immutable", remove: ["set-cookie"] },
  { re: /^\/favicon\.ico$/, methods: ["GET", "HEAD"], limit: null, cache: "public, max-age=86400", remove: ["set-cookie"] },
  { re: /^\/test-edge-functions(?:\/.*)?$/, block: 404, methods: ["GET", "HEAD", "POST"], limit: "pages" },
  { re: /^\/debug(?:\/.*)?$/, block: 404, methods: ["GET", "HEAD", "POST"], limit: "pages" },
  { re: /^\/.*$/, methods: ["GET", "HEAD", "POST"], limit: "pages" },
].map((route) => ({ ...DEFAULTS, ...route }));

// GCRA: one theoretical arrival time (ms) per limit and client.
const tats = new Map();

function rateLimit(limit, key, now) {
  const interval = (limit.windowSecs * 1000) / limit.count;
  const tolerance = interval * (limit.burst - 1);
  const stored = tats.get(key);
  const tat = Math.max(stored ?? now, now);
  if (tat - tolerance > now) {
    return { allowed: false, remaining: 0, reset: Math.ceil((tat - now) / 1000), retryAfter: Math.max(1, Math.ceil((tat - tolerance - now) / 1000)) };
  }
  if (stored === undefined && tats.size >= MAX_LIMITER_KEYS) tats.delete(tats.keys().next().value);
  tats.set(key, tat + interval);
  const used = tat + interval - now;
  return { allowed: true, remaining: Math.floor((tolerance + interval - used) / interval), reset: Math.ceil(used / 1000), retryAfter: 0 };
}

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function cookieNames(request) {
  const names = [];
  for (const pair of (request.headers.get("cookie") ?? "").split(";")) {
    const at = pair.indexOf("=");
    if (at > 0 && pair.slice(at + 1).trim() !== "") names.push(pair.slice(0, at).trim());
  }
  return names;
}

function secure(headers, ctx) {
  for (const name of REMOVE) headers.delete(name);
  for (const name of ctx.route?.remove ?? []) headers.delete(name);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
  if (ctx.https) headers.set("strict-transport-security", HSTS);
  if (ctx.rl) {
    headers.set("ratelimit-policy", `"${ctx.rl.limit.name}";q=${ctx.rl.limit.count};w=${ctx.rl.limit.windowSecs}`);
    headers.set("ratelimit", `"${ctx.rl.limit.name}";r=${ctx.rl.remaining};t=${ctx.rl.reset}`);
  }
  headers.set("x-request-id", ctx.requestId);
  return headers;
}

function refuse(ctx, status, detail, extra = {}) {
  const body = JSON.stringify({ type: "about:blank", status, detail, request_id: ctx.requestId });
  const headers = secure(new Headers({ "content-type": "application/problem+json", "cache-control": "no-store", ...extra }), ctx);
  if (ctx.rl && status === 429) headers.set("retry-after", String(ctx.rl.retryAfter));
  headers.set("server-timing", `edge;dur=${Date.now() - ctx.start}`);
  return new Response(body, { status, headers });
}

function redirect(ctx, status, location) {
  const headers = secure(new Headers({ location }), ctx);
  headers.set("server-timing", `edge;dur=${Date.now() - ctx.start}`);
  return new Response(null, { status, headers });
}

let health = null;

async function answerHealth(ctx, origin) {
  if (health === null || Date.now() - health.at > 10_000) {
    let status = null;
    try {
      const r = await fetch(origin + "/api/health", { redirect: "manual", signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      status = r.status;
    } catch {}
    health = { at: Date.now(), ok: status !== null && status < 500, status };
  }
  const body = JSON.stringify({ status: health.ok ? "pass" : "fail", checks: { origin: [{ observedValue: health.status }] } });
  const headers = secure(new Headers({ "content-type": "application/health+json", "cache-control": "no-store" }), ctx);
  return new Response(body, { status: health.ok ? 200 : 503, headers });
}

// With the LOG binding set to "1" (the baseline-log variant), one JSON line per request with
// the fields of edgeguard's request line, written the idiomatic way: JSON.stringify and
// console.log once the response is ready.
function logLine(request, ctx, response) {
  const url = new URL(request.url);
  const ip = request.headers.get("cf-connecting-ip") ?? "";
  const forwarded = ctx.originMs !== null;
  console.log(
    JSON.stringify({
      ts: new Date(ctx.start).toISOString(),
      level: response.status >= 500 ? "error" : response.status >= 400 ? "warn" : "info",
      msg: "request",
      request_id: ctx.requestId,
      method: request.method,
      host: url.hostname,
      path: url.pathname,
      route: ctx.route ? ctx.route.re.source : null,
      action: forwarded ? "forward" : response.status >= 300 && response.status < 400 ? "redirect" : "reject",
      reason: forwarded ? "ok" : "refused",
      status: response.status,
      edge_ms: Math.max(Date.now() - ctx.start - (ctx.originMs ?? 0), 0),
      origin: forwarded ? "blue" : undefined,
      lane: forwarded ? "active" : undefined,
      origin_ms: ctx.originMs ?? undefined,
      limit: ctx.rl?.limit.name,
      remaining: ctx.rl?.remaining,
      client_ip: ip.includes(".") ? ip.replace(/\.\d+$/, ".0") : undefined,
    }),
  );
}

export default {
  async fetch(request, env) {
    const ctx = { start: Date.now(), requestId: "", https: false, route: null, rl: null, originMs: null };
    if (env.LOG !== "1") return handle(request, env, ctx);
    const response = await handle(request, env, ctx);
    logLine(request, ctx, response);
    return response;
  },
};

async function handle(request, env, ctx) {
  const start = ctx.start;
  const cfRay = request.headers.get("cf-ray");
  ctx.requestId = cfRay && cfRay.length <= 128 ? cfRay : crypto.randomUUID().replaceAll("-", "");

  // sanitize
  if (request.url.length > MAX_URL) return refuse(ctx, 414, "the request target is too long");
  let count = 0;
  let bytes = 0;
  for (const [name, value] of request.headers) {
    count += 1;
    bytes += name.length + value.length + 4;
  }
  if (count > MAX_HEADERS || bytes > MAX_HEADER_BYTES) return refuse(ctx, 431, "the request headers are too large or too many");
  const rawPath = request.url.replace(/^[a-z]+:\/\/[^/?#]*/i, "").split("?")[0];
  if (/%2f|%5c|%00|\\/i.test(rawPath)) return refuse(ctx, 400, "the path contains an encoded separator or NUL");
  const url = new URL(request.url);
  ctx.https = url.protocol === "https:";

  // host, health, https, canonical host
  const host = url.hostname.toLowerCase();
  if (!HOSTS.has(host)) return refuse(ctx, 421, `\`${host}\` is not a host this edge serves`);
  if (url.pathname === HEALTH_PATH) return answerHealth(ctx, env.ORIGIN);
  const redirectStatus = request.method === "GET" || request.method === "HEAD" ? 301 : 308;
  if (!ctx.https) return redirect(ctx, redirectStatus, `https://${host}${url.pathname}${url.search}`);
  if (host !== CANONICAL_HOST) return redirect(ctx, redirectStatus, `https://${CANONICAL_HOST}${url.pathname}${url.search}`);

  // route
  let match = null;
  const route = ROUTES.find((r) => (match = r.re.exec(url.pathname)) !== null);
  ctx.route = route;
  if (route.params && !route.params.every((re, i) => re.test(match[i + 1]))) return refuse(ctx, 404, "a path parameter does not have this route's type");
  if (route.block) return refuse(ctx, route.block, "this route is blocked at the edge in this environment");
  if (!route.methods.includes(request.method)) return refuse(ctx, 405, `${request.method} is not allowed here`, { allow: route.methods.join(", ") });

  // access
  for (const name of route.requireHeaders ?? []) {
    if (!request.headers.get(name)?.trim()) return refuse(ctx, 400, `the request must carry the \`${name}\` header`);
  }
  if (route.requireCookie && !cookieNames(request).some((name) => route.requireCookie.test(name))) {
    return refuse(ctx, 401, "a session cookie is required");
  }
  if (route.apiKey) {
    const presented = request.headers.get("x-api-key")?.trim();
    if (!presented || !route.apiKey.includes(await sha256Hex(presented))) return refuse(ctx, 401, "a valid API key is required in `x-api-key`");
  }
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > route.maxBody) return refuse(ctx, 413, `the body is ${length} bytes; this route accepts at most ${route.maxBody}`);

  // limit
  const ip = request.headers.get("cf-connecting-ip")?.split(",").pop().trim() ?? "unknown";
  if (route.limit) {
    const limit = LIMITS[route.limit];
    const key = limit.header ? `${limit.name}|h:${request.headers.get(limit.header) ?? ip}` : `${limit.name}|${ip}`;
    ctx.rl = { limit, ...rateLimit(limit, key, start) };
    if (!ctx.rl.allowed) return refuse(ctx, 429, `limit \`${limit.name}\` allows ${limit.count} requests per ${limit.windowSecs} s`);
  }

  // forward
  const headers = forwardHeaders(request, ip, host, ctx.requestId);
  const sent = Date.now();
  let response;
  try {
    response = await fetch(env.ORIGIN + url.pathname + url.search, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? null : request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(ORIGIN_TIMEOUT_MS),
    });
  } catch (err) {
    const timeout = err?.name === "TimeoutError";
    return refuse(ctx, timeout ? 504 : 502, timeout ? "the origin did not answer in time" : "the origin is unreachable");
  }

  // respond
  const originMs = Date.now() - sent;
  ctx.originMs = originMs;
  const out = secure(new Headers(response.headers), ctx);
  if (route.cache && ((response.status >= 200 && response.status < 300) || response.status === 304)) out.set("cache-control", route.cache);
  out.set("server-timing", `edge;dur=${Math.max(Date.now() - start - originMs, 0)}, origin;dur=${originMs}`);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: out });
}
