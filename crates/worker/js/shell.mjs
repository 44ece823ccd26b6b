// edgeguard's worker entry: a thin shell that performs what the Rust engine decides.
//
// Per request: one call into wasm with the request facts, one compact decision back. The
// Request and the origin's Response stay JS objects, so bodies stream through untouched
// (the Stripe webhook signs the exact bytes) and multi-value headers such as Set-Cookie
// survive. There is no policy logic here — only I/O: fetching the origin, probing health,
// applying the header changes the engine computed.
//
// Worker vars (all optional; see docs/deploy.md):
//   EDGE_ACTIVE_ORIGIN     origin name that takes traffic instead of [deploy] active
//   EDGE_CANARY_PERCENT    canary share 0–100 instead of [deploy] canary.percent
//   EDGE_SHADOW            "1"/"true": log what would be refused, refuse nothing
//   EDGE_ORIGINS           "name=url,name=url" ("*=url" for all): point origins elsewhere
//   EDGE_ORIGIN_AUTH       secret sent to the origin in EDGE_ORIGIN_AUTH_HEADER
//   EDGE_ORIGIN_AUTH_HEADER header name for it (default x-edgeguard-auth)

import { initSync, Edge } from "./edgeguard_worker.js";
import wasmModule from "./edgeguard_worker_bg.wasm";

initSync({ module: wasmModule });

let state = null; // created on the first request: Workers forbid randomness at global scope

function truthy(v) {
  return v === "1" || v === "true" || v === "yes" || v === "on";
}

function setup(env) {
  const seed = crypto.getRandomValues(new Uint32Array(2));
  const edge = new Edge(seed[0] * 4294967296 + seed[1]);
  edge.configure(env.EDGE_ACTIVE_ORIGIN ?? "", String(env.EDGE_CANARY_PERCENT ?? ""), truthy(String(env.EDGE_SHADOW ?? "")));
  const info = JSON.parse(edge.info());
  const urls = new Map();
  for (const pair of String(env.EDGE_ORIGINS ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) urls.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim().replace(/\/+$/, ""));
  }
  const all = urls.get("*");
  const origins = info.origins.map((o) => ({ ...o, url: urls.get(o.name) ?? all ?? o.url }));
  return {
    edge,
    info,
    origins,
    strip: new Set(info.strip),
    sets: [],
    probes: null,
    authHeader: env.EDGE_ORIGIN_AUTH ? String(env.EDGE_ORIGIN_AUTH_HEADER || "x-edgeguard-auth").toLowerCase() : null,
    authValue: env.EDGE_ORIGIN_AUTH ? String(env.EDGE_ORIGIN_AUTH) : null,
  };
}

function headerSet(st, index) {
  let set = st.sets[index];
  if (set === undefined) {
    set = JSON.parse(st.edge.header_set(index));
    st.sets[index] = set;
  }
  return set;
}

// The response phase: header set (replace, never duplicate), defaults, removals, HSTS on
// https only, cache on success, then the per-request headers the engine computed.
function respond(st, d, body, status, statusText, base, timing) {
  const set = headerSet(st, d.h);
  const h = new Headers(base);
  for (const name of set.remove) h.delete(name);
  for (const [name, value] of set.default) if (!h.has(name)) h.set(name, value);
  for (const [name, value] of set.set) h.set(name, value);
  if (d.t && set.hsts) h.set("strict-transport-security", set.hsts);
  else h.delete("strict-transport-security");
  if (set.cache && d.a === "forward" && ((status >= 200 && status < 300) || status === 304)) h.set("cache-control", set.cache);
  for (const [name, value] of d.d) h.set(name, value);
  for (const [name, value] of d.c) h.append(name, value);
  h.set("server-timing", timing);
  return new Response(body, { status, statusText, headers: h });
}

function timing(start, originMs, extra) {
  const edge = Date.now() - start - (originMs ?? 0);
  let t = `edge;dur=${Math.max(edge, 0)}`;
  if (originMs !== null) t += `, origin;dur=${originMs}`;
  if (extra) t += `, ${extra}`;
  return t;
}

function flatten(headers) {
  let out = "";
  for (const [name, value] of headers) out += name + "\n" + value + "\n";
  return out;
}

async function forward(st, request, d, start) {
  const origin = st.origins[d.o];
  const headers = new Headers(request.headers);
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-forwarded-") || st.strip.has(name)) headers.delete(name);
  }
  for (const [name, value] of d.f) headers.set(name, value);
  if (st.authHeader) headers.set(st.authHeader, st.authValue);
  const init = {
    method: request.method,
    headers,
    body: request.method === "GET" || request.method === "HEAD" ? null : request.body,
    redirect: "manual",
    signal: AbortSignal.timeout(origin.timeout_ms),
  };
  const sent = Date.now();
  let response;
  try {
    response = await fetch(origin.url + d.p, init);
  } catch (err) {
    const kind = err && (err.name === "TimeoutError" || err.name === "AbortError") ? "timeout" : "unreachable";
    const body = st.edge.origin_failure(kind, origin.name, d.r, d.p);
    const failed = { ...d, a: "reject", d: [["content-type", "application/problem+json"], ["cache-control", "no-store"], ["x-request-id", d.r]], c: [] };
    const originMs = Date.now() - sent;
    return respond(st, failed, body, kind === "timeout" ? 504 : 502, "", undefined, timing(start, originMs, `origin-error;desc="${kind}"`));
  }
  const originMs = Date.now() - sent;
  return respond(st, d, response.body, response.status, response.statusText, response.headers, timing(start, originMs));
}

async function probeOrigins(st) {
  const now = Date.now();
  if (st.probes && now - st.probes.at < st.info.health_cache_ms) return st.probes.results;
  if (st.probes?.pending) return st.probes.pending;
  const pending = Promise.all(
    st.origins.map(async (origin, index) => {
      const began = Date.now();
      const time = new Date(began).toISOString();
      try {
        const r = await fetch(origin.url + (st.info.probe_path ?? "/"), {
          method: "GET",
          redirect: "manual",
          signal: AbortSignal.timeout(st.info.probe_timeout_ms),
        });
        await r.body?.cancel();
        return { origin: index, status: r.status, ms: Date.now() - began, time, error: null };
      } catch (err) {
        const error = err && err.name === "TimeoutError" ? `no answer within ${st.info.probe_timeout_ms} ms` : `unreachable: ${err?.message ?? err}`;
        return { origin: index, status: null, ms: Date.now() - began, time, error };
      }
    }),
  );
  st.probes = { at: st.probes?.at ?? 0, results: st.probes?.results ?? null, pending };
  const results = await pending;
  st.probes = { at: Date.now(), results, pending: null };
  return results;
}

async function health(st, request, d, start) {
  const probes = await probeOrigins(st);
  const answer = JSON.parse(st.edge.health(JSON.stringify(probes)));
  const body = request.method === "HEAD" ? null : answer.body;
  return respond(st, d, body, answer.status, "", undefined, timing(start, null));
}

export default {
  async fetch(request, env) {
    const start = Date.now();
    if (state === null) state = setup(env);
    const st = state;
    const r = crypto.getRandomValues(new Uint32Array(5));
    const d = JSON.parse(st.edge.decide(request.method, request.url, flatten(request.headers), start, r[0], r[1], r[2], r[3], r[4]));
    switch (d.a) {
      case "forward":
        return forward(st, request, d, start);
      case "respond":
        return health(st, request, d, start);
      case "redirect":
        return respond(st, d, null, d.s, "", undefined, timing(start, null));
      default:
        return respond(st, d, request.method === "HEAD" ? null : d.b, d.s, "", undefined, timing(start, null));
    }
  },
};
