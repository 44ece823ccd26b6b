// The benchmark's lean worker: QuoteKit's core policy the way a good team hand-writes it when
// it wants speed, and the floor edgeguard is held to (issue "One typed boundary…"): a host set,
// a regex route table scanned in order, cookie presence, a Content-Length check, a Map-based
// GCRA keyed on CF-Connecting-IP, `new Headers(request.headers)` with the forwarding headers
// replaced, `fetch`, then `new Response(resp.body, resp)` with the security headers set and
// Server / X-Powered-By deleted. No request id, no log line, no RateLimit headers, no
// Server-Timing, no header-size sanitizing: what it leaves out is what edgeguard does on top.
// ORIGIN is a text binding (lean.capnp). Responses carry the same security headers as
// edgeguard's (scripts/bench-worker.sh checks them).

import { HSTS, SECURITY_HEADERS } from "./quotekit-headers.mjs";

const HOSTS = new Set(["lawnquote.online", "www.lawnquote.online"]);
const SECURITY = Object.entries(SECURITY_HEADERS);

// [pattern, limit (per window in ms, burst) or null, session cookie required, max body]
const PAGES = { interval: 300_000 / 600, tolerance: (300_000 / 600) * 149 };
const API = { interval: 900_000 / 100, tolerance: (900_000 / 100) * 19 };
const ADMIN = { interval: 60_000 / 60, tolerance: (60_000 / 60) * 19 };
const ROUTES = [
  [/^\/api\/admin(?:\/|$)/, ADMIN, true, 10 << 20],
  [/^\/api\/webhooks(?:\/|$)/, API, false, 1 << 20],
  [/^\/api\/health$/, null, false, 10 << 20],
  [/^\/api\/(?:debug-|test-supabase-connection$|formbricks\/test$|supabase\/functions)/, "block", false, 0],
  [/^\/api(?:\/|$)/, API, false, 10 << 20],
  [/^\/(?:_next\/static\/|favicon\.ico$)/, null, false, 10 << 20],
  [/^\/(?:debug|test-edge-functions)(?:\/|$)/, "block", false, 0],
  [/^\//, PAGES, false, 10 << 20],
];

const tats = new Map();

function deny(status) {
  return new Response(null, { status });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (!HOSTS.has(url.hostname)) return deny(421);
    let route = ROUTES[ROUTES.length - 1];
    for (const r of ROUTES) {
      if (r[0].test(url.pathname)) {
        route = r;
        break;
      }
    }
    const [, limit, needsCookie, maxBody] = route;
    if (limit === "block") return deny(404);
    if (needsCookie && !/(?:^|;\s*)sb-[^=]*-auth-token[^=]*=/.test(request.headers.get("cookie") ?? "")) return deny(401);
    if (Number(request.headers.get("content-length") ?? 0) > maxBody) return deny(413);
    const ip = request.headers.get("cf-connecting-ip") ?? "";
    if (limit !== null) {
      const now = Date.now();
      const tat = Math.max(tats.get(ip) ?? now, now);
      if (tat - limit.tolerance > now) return deny(429);
      tats.set(ip, tat + limit.interval);
    }
    const headers = new Headers(request.headers);
    headers.delete("forwarded");
    headers.set("x-forwarded-for", ip);
    headers.set("x-real-ip", ip);
    headers.set("x-forwarded-proto", "https");
    headers.set("x-forwarded-host", url.hostname);
    const resp = await fetch(env.ORIGIN + url.pathname + url.search, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
    const out = new Response(resp.body, resp);
    for (const [name, value] of SECURITY) out.headers.set(name, value);
    out.headers.set("strict-transport-security", HSTS);
    out.headers.delete("server");
    out.headers.delete("x-powered-by");
    return out;
  },
};
