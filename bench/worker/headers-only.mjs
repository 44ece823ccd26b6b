// Diagnostic variant, not a target: the pass-through plus only the header work that both
// policy workers (edgeguard and baseline-policy.mjs) do on a forwarded page — copy the
// request headers, drop the client's X-Forwarded-* and friends, set the six forwarding
// headers, fetch with a timeout, copy the response headers, remove Server / X-Powered-By, set
// the security headers, HSTS, RateLimit fields, X-Request-Id and Server-Timing. No routing,
// no limiter, no policy. Its distance to the pass-through is what the Headers/Response API
// costs in workerd; the policy workers' distance to it is what their policy costs.
// The header values are baseline-policy.mjs's (scripts/bench-worker.sh checks that the three
// workers answer with the same headers).

import { HSTS, REMOVE, SECURITY_HEADERS, forwardHeaders } from "./quotekit-headers.mjs";

export default {
  fetch(request, env) {
    return handle(request, env, {});
  },
};

/**
 * The worker's request path, with optional hooks for bench/worker/steps.mjs (each adds one step
 * of edgeguard's path to measure what it costs): `before(request, start)` before anything is
 * forwarded (what it returns is handed to `after`), `forward(url, request, ip, host, requestId)` returning the origin's response
 * promise in place of the default forward, `respond(response)` returning `[response, headers]`
 * to edit in place of a copy, and `after(requestId, state)` once the answer is built.
 */
export async function handle(request, env, hooks) {
  const start = Date.now();
  const state = hooks.before?.(request, start);
  const url = new URL(request.url);
  const ip = request.headers.get("cf-connecting-ip") ?? "unknown";
  const requestId = request.headers.get("cf-ray") ?? crypto.randomUUID().replaceAll("-", "");
  const sent = Date.now();
  const response = await (hooks.forward?.(env.ORIGIN + url.pathname + url.search, request, ip, url.hostname, requestId) ??
    fetch(env.ORIGIN + url.pathname + url.search, {
      method: request.method,
      headers: forwardHeaders(request, ip, url.hostname, requestId),
      body: null,
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    }));
  const originMs = Date.now() - sent;
  const [answer, out] = hooks.respond?.(response) ?? [null, new Headers(response.headers)];
  for (const name of REMOVE) out.delete(name);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) out.set(name, value);
  out.set("strict-transport-security", HSTS);
  out.set("ratelimit-policy", '"pages";q=600;w=300');
  out.set("ratelimit", '"pages";r=149;t=1');
  out.set("x-request-id", requestId);
  out.set("server-timing", `edge;dur=${Math.max(Date.now() - start - originMs, 0)}, origin;dur=${originMs}`);
  hooks.after?.(requestId, state);
  return answer ?? new Response(response.body, { status: response.status, statusText: response.statusText, headers: out });
}
