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
//
// Bindings: EDGEGUARD_LIMITER (Durable Object namespace of class EdgeguardLimiter) for
// `scope = "global"` limits; EDGEGUARD_RL_<LIMIT NAME> (Workers Rate Limiting) for
// `scope = "cloudflare"` limits.

/** How long a global limiter may take before the limit's on_error decides. */
const LIMITER_TIMEOUT_MS = 500;

import { DurableObject } from "cloudflare:workers";
import { initSync, Edge } from "./edgeguard_worker.js";
import wasmModule from "./edgeguard_worker_bg.wasm";

initSync({ module: wasmModule });

let state = null; // created on the first request: Workers forbid randomness at global scope

function truthy(v) {
  return v === "1" || v === "true" || v === "yes" || v === "on";
}

function newEdge() {
  const seed = crypto.getRandomValues(new Uint32Array(2));
  return new Edge(seed[0] * 4294967296 + seed[1]);
}

function setup(env) {
  const edge = newEdge();
  try {
    edge.configure(env.EDGE_ACTIVE_ORIGIN ?? "", String(env.EDGE_CANARY_PERCENT ?? ""), truthy(String(env.EDGE_SHADOW ?? "")));
  } catch (err) {
    // A typo in a rollback lever must not take the site down: keep the policy's own
    // deploy settings (the shadow switch still applies) and say so loudly.
    console.error(JSON.stringify({ level: "error", msg: "ignoring invalid deploy override", error: String(err?.message ?? err) }));
    edge.configure("", "", truthy(String(env.EDGE_SHADOW ?? "")));
  }
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

/** One attempt at an origin: the Response, or "timeout" / "unreachable". */
async function attempt(st, origin, request, d, body) {
  const headers = new Headers(request.headers);
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-forwarded-") || st.strip.has(name)) headers.delete(name);
  }
  for (const [name, value] of d.f) headers.set(name, value);
  if (st.authHeader) headers.set(st.authHeader, st.authValue);
  try {
    return await fetch(origin.url + d.p, {
      method: request.method,
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(origin.timeout_ms),
    });
  } catch (err) {
    return err && (err.name === "TimeoutError" || err.name === "AbortError") ? "timeout" : "unreachable";
  }
}

async function forward(st, request, d, start) {
  let origin = st.origins[d.o];
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  // A request that may be retried needs its body twice; only idempotent methods the policy
  // lists ever fail over, and max_body bounds what is buffered.
  let body = hasBody ? request.body : null;
  if (hasBody && d.fo !== null && d.fo !== undefined) body = await request.arrayBuffer();
  const sent = Date.now();
  let response = await attempt(st, origin, request, d, body);
  let note = "";
  const failed = typeof response === "string" ? response : response.status >= 500 ? `${response.status}` : null;
  // Failover: once, on a connect error or a 5xx (a timeout may still be processing).
  if (failed !== null && failed !== "timeout" && d.fo !== null && d.fo !== undefined) {
    const other = st.origins[d.fo];
    if (typeof response !== "string") await response.body?.cancel();
    note = `failover;desc="${origin.name} ${failed} -> ${other.name}"`;
    log({ level: "warn", msg: "failover", request_id: d.r, from: origin.name, to: other.name, cause: failed });
    origin = other;
    response = await attempt(st, origin, request, d, body);
  }
  const originMs = Date.now() - sent;
  if (typeof response === "string") {
    const kind = response;
    const problem = st.edge.origin_failure(kind, origin.name, d.r, d.p);
    const refused = { ...d, a: "reject", d: [["content-type", "application/problem+json"], ["cache-control", "no-store"], ["x-request-id", d.r]], c: [] };
    const extra = [note, `origin-error;desc="${kind}"`].filter(Boolean).join(", ");
    log({ level: "error", msg: "origin failed", request_id: d.r, origin: origin.name, cause: kind });
    return respond(st, refused, problem, kind === "timeout" ? 504 : 502, "", undefined, timing(start, originMs, extra));
  }
  return respond(st, d, response.body, response.status, response.statusText, response.headers, timing(start, originMs, note));
}

function log(fields) {
  console.log(JSON.stringify(fields));
}

/** Ask the global limiter (Durable Object shard or Cloudflare binding); "" when it failed. */
async function askLimiter(env, g) {
  const timeout = new Promise((resolve) => setTimeout(() => resolve(""), LIMITER_TIMEOUT_MS));
  const ask = (async () => {
    if (g.cloudflare) {
      const binding = env[`EDGEGUARD_RL_${g.name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`];
      if (!binding) return "";
      const { success } = await binding.limit({ key: g.key });
      return JSON.stringify({ allowed: success, remaining: 0, reset: g.window_secs, retry_after: success ? 0 : g.window_secs });
    }
    const ns = env.EDGEGUARD_LIMITER;
    if (!ns) return "";
    const stub = ns.get(ns.idFromName(`shard-${g.shard}`));
    return await stub.check(g.limit, g.key);
  })().catch(() => "");
  return Promise.race([ask, timeout]);
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
  st.edge.set_health(JSON.stringify(results));
  return results;
}

/** Keep probe results fresh in the background so routing can skip a failing origin. */
function refreshHealth(st, ctx) {
  if (!st.info.probe_path || !ctx) return;
  const fresh = st.probes && Date.now() - st.probes.at < st.info.health_cache_ms;
  if (fresh || st.probes?.pending) return;
  ctx.waitUntil(probeOrigins(st).catch(() => {}));
}

async function health(st, request, d, start) {
  const probes = await probeOrigins(st);
  const answer = JSON.parse(st.edge.health(JSON.stringify(probes)));
  const body = request.method === "HEAD" ? null : answer.body;
  return respond(st, d, body, answer.status, "", undefined, timing(start, null));
}

export default {
  async fetch(request, env, ctx) {
    const start = Date.now();
    if (state === null) state = setup(env);
    const st = state;
    refreshHealth(st, ctx);
    const r = crypto.getRandomValues(new Uint32Array(5));
    const flat = flatten(request.headers);
    let d = JSON.parse(st.edge.decide(request.method, request.url, flat, start, r[0], r[1], r[2], r[3], r[4]));
    if (d.g) {
      const answer = await askLimiter(env, d.g);
      if (answer === "") log({ level: "warn", msg: "limiter unavailable", request_id: d.r, limit: d.g.name });
      d = JSON.parse(st.edge.settle(d.g.token, answer, Date.now(), request.method, request.url, flat));
    }
    if (d.shadowed) log({ level: "info", msg: "shadow: would have refused", request_id: d.r, reason: d.shadowed, route: d.route, detail: d.detail });
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

/**
 * One shard of the global limiter: GCRA state for the keys that hash to it, in memory.
 * Nothing is written to storage: a restart forgets recent requests, which can only admit a
 * client early (never refuse one wrongly), and keeps every check a memory operation.
 */
export class EdgeguardLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.edge = null;
  }

  check(limit, key) {
    this.edge ??= newEdge();
    return this.edge.global_check(limit, key, Date.now());
  }
}
