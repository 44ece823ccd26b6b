// edgeguard's worker shell: a thin layer that performs what the Rust engine decides.
//
// The engine (engine_bg.wasm) is the same bytes for every policy. The policy arrives as a
// bundle: the entry module `edgeguard build` writes imports `policy.egb` (a Data module
// wrangler uploads with the worker) and calls `edgeguard({ policy })`, which the engine reads
// once per isolate. A bundle the engine cannot read — another format version, damaged, cut
// short, missing — never means "forward unprotected": every request is answered 503
// problem+json `edge-misconfigured`, and one error line per isolate says why.
// `edgeguard({ policy, shadow })` adds a candidate policy that decides every request too and
// enforces nothing; where it disagrees, one log line says what it would have done
// (docs/deploy.md, "Shadow policies").
//
// Per request: one call into wasm with the request facts, one compact decision back. The
// Request and the origin's Response stay JS objects, so bodies stream through untouched
// (the Stripe webhook signs the exact bytes) and multi-value headers such as Set-Cookie
// survive. There is no policy logic here — only I/O: fetching the origin, probing health,
// applying the header changes the engine computed, and writing what the engine's observer
// hands back for each request (`finish`): the log line (console.log), PostHog events (one
// batch per request, sent inside waitUntil) and an Analytics Engine data point.
//
// Worker vars (all optional; see docs/deploy.md):
//   EDGE_ACTIVE_ORIGIN     origin name that takes traffic instead of [deploy] active
//   EDGE_CANARY_PERCENT    canary share 0–100 instead of [deploy] canary.percent
//   EDGE_SHADOW            "1"/"true": log what would be refused, refuse nothing
//   EDGE_MAINTENANCE       "1"/"true": maintenance mode — 503 (the fallback page for page
//                          requests) for everyone outside [maintenance]'s allow-list
//   EDGE_MAINTENANCE_SECRET secret: the value of [maintenance] bypass_header that still passes
//   EDGE_ORIGINS           "name=url,name=url" ("*=url" for all): point origins elsewhere
//   EDGE_ORIGIN_AUTH       secret sent to the origin in EDGE_ORIGIN_AUTH_HEADER
//   EDGE_ORIGIN_AUTH_HEADER header name for it (default x-edgeguard-auth)
//   POSTHOG_KEY            secret: the PostHog project key; without it no event is built or sent
//   EDGE_POSTHOG_HOST      PostHog host instead of [observe.posthog] host (a proxy, or tests)
//
// Bindings: EDGEGUARD_LIMITER (Durable Object namespace of class EdgeguardLimiter) for
// `scope = "global"` limits; EDGEGUARD_STATS (class EdgeguardStats) for the fleet statistics,
// SLO alerts and the dashboard (`[stats]`, `[slo.*]`, docs/operate.md); EDGEGUARD_RL_<LIMIT NAME> (Workers Rate Limiting) for
// `scope = "cloudflare"` limits; EDGEGUARD_ANALYTICS (Workers Analytics Engine dataset) for
// one data point per request when [observe] analytics is on (the default).

/** How long a global limiter may take before the limit's on_error decides. */
const LIMITER_TIMEOUT_MS = 500;
/** How long a PostHog batch may take; it runs after the response, in waitUntil. */
const POSTHOG_TIMEOUT_MS = 2000;
/** How long a flush to the fleet statistics object, or a read of it, may take. */
const STATS_TIMEOUT_MS = 3000;
/** How long one alert notification may take. */
const NOTIFY_TIMEOUT_MS = 5000;
/** Retries of a failed notification: 2 s, 4 s, … doubling up to 5 min, for about a day. */
const NOTIFY_MAX_ATTEMPTS = 300;
const NOTIFY_MAX_BACKOFF_MS = 5 * 60 * 1000;
/** How much of an oversized body is read (and dropped) before its 413. */
const DRAIN_CAP_BYTES = 1024 * 1024;
/** Most of a request body held before the first attempt at the origin: what failover can send
 * twice (above it, that request does not fail over), and how much of a body without a length is
 * checked against the route's max_body before anything is sent. */
const BUFFER_BYTES = 1024 * 1024;

import { DurableObject } from "cloudflare:workers";
import { initSync, Edge, Fleet, misconfigured } from "./engine.js";
import wasmModule from "./engine_bg.wasm";

initSync({ module: wasmModule });

/** Every policy bundle an `edgeguard()` call was given, for the global limiter's Durable
 * Object, which runs the same module and counts for whichever policy asks (by revision). */
const policies = new Set();
/** Handlers by the policy's bytes object: calling `edgeguard()` again with the same imported
 * bundle (per request, by mistake) keeps one isolate state, and so its rate limits. */
const handlers = new WeakMap();

/**
 * The worker for a policy bundle: `export default edgeguard({ policy })`, where `policy` is the
 * bundle's bytes (the ArrayBuffer a Data module import gives). `shadow`, optional, is a
 * candidate policy's bundle. Export `EdgeguardLimiter` from the entry too when the policy has
 * global limits. Each call with another bundle is an edge of its own (its own limits, logs and
 * metrics): an entry may serve one policy per host.
 */
export function edgeguard({ policy = null, shadow = null } = {}) {
  const key = typeof policy === "object" && policy !== null ? policy : null;
  const known = key && handlers.get(key);
  if (known && known.shadow === shadow) return known.handler;
  const bundles = { policy: asBytes(policy), shadow: asBytes(shadow) };
  if (bundles.policy !== null) policies.add(bundles.policy);
  let state = null; // created on the first request: Workers forbid randomness at global scope
  const handler = {
    fetch(request, env, ctx) {
      if (state === null) state = setup(env, bundles);
      return handle(state, request, env, ctx);
    },
  };
  if (key) handlers.set(key, { shadow, handler });
  return handler;
}

function asBytes(data) {
  if (data === null || data === undefined) return null;
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

function truthy(v) {
  return v === "1" || v === "true" || v === "yes" || v === "on";
}

/** The engine with a policy loaded; throws (with the engine's reason) when it cannot be read. */
function newEdge(policy) {
  if (policy === null) throw new Error("no policy bundle: the entry module must call edgeguard({ policy }) with the bundle's bytes");
  const seed = crypto.getRandomValues(new Uint32Array(2));
  return new Edge(seed[0] * 4294967296 + seed[1], policy);
}

function setup(env, bundles) {
  let edge;
  try {
    edge = newEdge(bundles.policy);
  } catch (err) {
    // Fail closed: no policy, no forwarding. One line per isolate, not one per request.
    const error = String(err?.message ?? err);
    console.error(JSON.stringify({ ts: new Date().toISOString(), level: "error", msg: "edge misconfigured: the policy bundle cannot be loaded; every request is refused with 503", error }));
    return { broken: error };
  }
  const maintenance = truthy(String(env.EDGE_MAINTENANCE ?? ""));
  const secret = String(env.EDGE_MAINTENANCE_SECRET ?? "");
  try {
    edge.configure(env.EDGE_ACTIVE_ORIGIN ?? "", String(env.EDGE_CANARY_PERCENT ?? ""), truthy(String(env.EDGE_SHADOW ?? "")), maintenance, secret);
  } catch (err) {
    // A typo in a rollback lever must not take the site down: keep the policy's own
    // deploy settings (the shadow switch still applies) and say so loudly.
    console.error(JSON.stringify({ level: "error", msg: "ignoring invalid deploy override", error: String(err?.message ?? err) }));
    edge.configure("", "", truthy(String(env.EDGE_SHADOW ?? "")), maintenance, secret);
  }
  const info = JSON.parse(edge.info());
  const revision = info.revision.slice(0, 12);
  // EDGE_JWKS_URLS ("name=url,…"): a session source's key set from elsewhere than the policy
  // says (a local Supabase, a staging project), as EDGE_ORIGINS does for origins.
  const jwksUrls = new Map();
  for (const pair of String(env.EDGE_JWKS_URLS ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) jwksUrls.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
  }
  const jwks = info.sessions.map((source) => jwksUrls.get(source.name) ?? null);
  for (const source of info.sessions) {
    if (source.secret === null) continue;
    const value = String(env[source.secret] ?? "");
    if (value === "") console.error(JSON.stringify({ level: "error", msg: "session secret not set: HS256 tokens of this source cannot be verified (503)", source: source.name, secret: source.secret }));
    else edge.set_session_secret(source.name, value);
  }
  if (bundles.shadow !== null) {
    try {
      const shadowRevision = edge.load_shadow(bundles.shadow);
      if (info.observe.log !== "off") console.log(JSON.stringify({ level: "info", msg: "shadow policy loaded", revision, shadow_revision: shadowRevision }));
    } catch (err) {
      // The candidate only observes: the active policy keeps answering without it.
      console.error(JSON.stringify({ level: "error", msg: "shadow policy not loaded", revision, error: String(err?.message ?? err) }));
    }
  }
  const urls = new Map();
  for (const pair of String(env.EDGE_ORIGINS ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) urls.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim().replace(/\/+$/, ""));
  }
  const all = urls.get("*");
  const origins = info.origins.map((o) => ({ ...o, url: urls.get(o.name) ?? all ?? o.url }));
  // The PostHog key is a secret: it goes into the batch body PostHog reads, nowhere else.
  const posthogHost = String(env.EDGE_POSTHOG_HOST || info.observe.posthog_host || "").replace(/\/+$/, "");
  const posthogKey = env.POSTHOG_KEY ? String(env.POSTHOG_KEY) : null;
  const analytics = env.EDGEGUARD_ANALYTICS && typeof env.EDGEGUARD_ANALYTICS.writeDataPoint === "function" ? env.EDGEGUARD_ANALYTICS : null;
  edge.observe_setup(Boolean(posthogKey && posthogHost), analytics !== null, Date.now());
  const statsInfo = JSON.parse(edge.stats_info());
  if (statsInfo.stats && !env.EDGEGUARD_STATS) edge.stats_unbound();
  return {
    // The fleet statistics object's namespace when the policy keeps statistics, and whether a
    // flush is already due (one timer per isolate: at most one flush per `[stats] flush`).
    stats: statsInfo.stats && env.EDGEGUARD_STATS ? env.EDGEGUARD_STATS : null,
    statsFlushMs: statsInfo.flush_ms,
    statsArmed: false,
    // This isolate's flushes: its name for the object, their sequence, those not yet taken.
    statsIsolate: crypto.randomUUID(),
    statsSeq: 0,
    statsUnsent: [],
    statsSending: false,
    broken: null,
    edge,
    info,
    revision,
    origins,
    // Each header set's operations (`header_ops`), parsed once: by index.
    programs: [],
    probes: null,
    authHeader: env.EDGE_ORIGIN_AUTH ? String(env.EDGE_ORIGIN_AUTH_HEADER || "x-edgeguard-auth").toLowerCase() : null,
    authValue: env.EDGE_ORIGIN_AUTH ? String(env.EDGE_ORIGIN_AUTH) : null,
    posthogUrl: posthogKey && posthogHost ? `${posthogHost}/batch/` : null,
    posthogKey,
    analytics,
    quiet: info.observe.log === "off",
    // The fallback page (`[fallback]`), for origin failures and maintenance.
    fallback: info.fallback ? { html: edge.fallback_page() } : null,
    // Cache keys with a miss at the origin (its promise settles once the copy is stored) and
    // with a stale-while-revalidate refresh running, in this isolate.
    inflight: new Map(),
    refreshing: new Set(),
    // Hot copies held in memory (MEMORY_TTL_S), by key, oldest first, and their bytes in all.
    memory: new Map(),
    memoryBytes: 0,
    // Session sources' JWKS URLs from EDGE_JWKS_URLS (by source index; null: the policy's).
    jwksUrls: jwks,
  };
}

/** The operations of header set `index`, flat `[code, name, value, …]` (wire.rs). */
function headerOps(st, index) {
  let ops = st.programs[index];
  if (ops === undefined) {
    ops = JSON.parse(st.edge.header_ops(index));
    st.programs[index] = ops;
  }
  return ops;
}

/**
 * Header operations, flat `[code, name, value, …]`, as edgeguard_core::response::Op codes:
 * `-` remove, `?` set when absent, `=` set, `+` append, `n` set with this response's nonce,
 * `r` the body gets the nonce on its scripts and styles. Applied to `h` in order; returns the
 * body (rewritten for `r`).
 * @param {Headers} h @param {string[]} ops @param {any} body
 */
function execute(st, h, ops, body, nonce) {
  for (let i = 0; i < ops.length; i += 3) {
    const name = ops[i + 1];
    switch (ops[i]) {
      case "=":
        h.set(name, ops[i + 2]);
        break;
      case "-":
        h.delete(name);
        break;
      case "?":
        if (!h.has(name)) h.set(name, ops[i + 2]);
        break;
      case "+":
        h.append(name, ops[i + 2]);
        break;
      case "n":
        nonce.value ??= newNonce();
        h.set(name, ops[i + 2].replaceAll(st.info.nonce.placeholder, nonce.value));
        break;
      case "r":
        nonce.value ??= newNonce();
        body = rewrite(st, h, body, nonce.value);
        break;
    }
  }
  return body;
}

/**
 * @typedef {object} Step  `decide`'s and `settle`'s answer (crates/worker/src/wire.rs, `Step`)
 * @property {"forward"|"reject"|"redirect"|"respond"|"limit"|"ask"} a
 * @property {number} k flight token   @property {number} h header set   @property {string} r request id
 * @property {number} [s] status of an edge answer   @property {string} [b] its problem+json
 * @property {number} [o] origin   @property {string} p path and query   @property {string[]} f request header operations
 * @property {number} [fo] failover origin   @property {number} [mb] max body   @property {object} [g] global limit to ask
 * @property {string} why   @property {string} [ck] cache key   @property {number[]} [cl] cache lifetimes
 * @property {boolean} [cb] cache bypassed   @property {boolean} [fb] page request   @property {boolean} [ct] finish reads the content type
 */

/**
 * Send a response through the response phase: `finish` (the engine) says what it is — the
 * header set's operations, then this response's; for an origin that failed, the edge's own
 * status and body — and hands back what to write for the request (log line, events, data
 * point). `base`: the origin's Response, or a stored copy's headers; undefined for the edge's
 * own answer; `own`: `base` (headers) belongs to this response alone and is edited in place.
 * An origin Response is answered as `new Response(body, response)` edited in place: its
 * headers are copied once.
 * @param {Step} d
 */
function respond(st, d, body, status, statusText, base, obs, note, head = false, own = false) {
  let response = null;
  let h;
  if (base instanceof Response) {
    response = new Response(body, base);
    h = response.headers;
  } else h = own ? base : new Headers(base);
  const fromOrigin = base !== undefined;
  const serverTiming = timing(obs, note);
  const nonce = {};
  // The header set first (it holds no nonce or body operation): what the engine reads of the
  // response — its type, for the strict CSP choice and pageviews — is read as the set left it.
  execute(st, h, headerOps(st, d.h), null, nonce);
  let sent = `${status}\n${obs.edgeMs}\n${obs.originMs ?? ""}\n${obs.originError}\n${obs.failover}\n${obs.cache}\n${fromOrigin ? "1" : ""}\n${head ? "1" : ""}`;
  if (d.ct && fromOrigin) sent += `\n${h.get("content-type") ?? ""}\n${h.get("content-encoding") ?? ""}`;
  const raw = st.edge.finish(d.k, sent, obs.end);
  const nl = raw.indexOf("\n");
  // No head: the engine no longer follows this request (MAX_FLIGHTS in crates/worker/src/lib.rs).
  // The header set still applies; an origin failure still gets its 502/504, never a status 0.
  const phase = nl > 0 ? JSON.parse(raw.slice(0, nl)) : { o: [], s: status === 0 ? (obs.originError === "timeout" ? 504 : 502) : undefined, b: null };
  if (phase.s !== undefined) {
    status = phase.s;
    body = head ? null : phase.fb ? st.fallback?.html ?? "" : phase.b;
  }
  const sending = execute(st, h, phase.o, body, nonce);
  h.set("server-timing", serverTiming);
  if (response === null || sending !== body) response = new Response(sending, { status, statusText, headers: h });
  if (st.stats !== null && !st.statsArmed && obs.ctx) {
    st.statsArmed = true;
    obs.ctx.waitUntil(flushLater(st));
  }
  if (nl >= 0) write(st, obs.ctx, raw.slice(nl + 1));
  return response;
}

/** 128 bits from the runtime's CSPRNG, base64 (the engine's `csp::nonce_from`). */
function newNonce() {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

// `[csp] strict = "nonce"` on an HTML page (the engine's `r` operation): the body streams
// through workerd's HTMLRewriter — lol_html, the rewriter `edgeguard nonce` runs — which puts
// this response's nonce on every start tag the engine lists, replacing any nonce the origin
// sent.
function rewrite(st, h, body, nonce) {
  if (body === null) return body;
  // The bytes change, so the length does and a strong validator no longer holds.
  h.delete("content-length");
  const etag = h.get("etag");
  if (etag && !etag.startsWith("W/")) h.set("etag", `W/${etag}`);
  // A tag with an attribute named `=…` (`<script a/=b>`, malformed markup) is left unmarked:
  // written out again it would read differently (csp::rewrite_keeps_meaning, the same rule).
  const mark = {
    element(el) {
      for (const [name] of el.attributes) if (name.startsWith("=")) return;
      el.setAttribute(st.info.nonce.attribute, nonce);
    },
  };
  let rewriter = new HTMLRewriter();
  for (const selector of st.info.nonce.selectors) rewriter = rewriter.on(selector, mark);
  return rewriter.transform(new Response(body)).body;
}

/** What the shell sees of one request for its log line and `Server-Timing`, from `start`;
 * `ctx` (the ExecutionContext, when there is one) keeps what is sent after the response. */
function observation(start, ctx) {
  return { start, end: start, originMs: null, originError: "", failover: "", edgeMs: 0, cache: "", ctx };
}

/** `Server-Timing`; the same durations go into the request's log line (obs.edgeMs, obs.originMs). */
function timing(obs, extra) {
  obs.end = Date.now();
  obs.edgeMs = Math.max(obs.end - obs.start - (obs.originMs ?? 0), 0);
  let t = `edge;dur=${obs.edgeMs}`;
  if (obs.originMs !== null) t += `, origin;dur=${obs.originMs}`;
  if (extra) t += `, ${extra}`;
  return t;
}

/** The request as the engine reads it, `method\nurl\nname\nvalue\n…` (one string: one copy
 * into wasm; wire.rs): one pass over workerd's Headers. */
function flatten(request) {
  let flat = request.method + "\n" + request.url + "\n";
  for (const [name, value] of request.headers) flat += name + "\n" + value + "\n";
  return flat;
}

/** The facts of `request.cf` the engine reads, `country\ncontinent\nasn\nverifiedBotCategory\nverified`:
 * set by Cloudflare's edge, never by the client. "" when the runtime gives none. */
function cfFacts(cf) {
  if (!cf) return "";
  const verified = cf.botManagement && cf.botManagement.verifiedBot ? "1" : "";
  return (cf.country ?? "") + "\n" + (cf.continent ?? "") + "\n" + (cf.asn ?? "") + "\n" + (cf.verifiedBotCategory ?? "") + "\n" + verified;
}

/** One attempt at an origin: a promise of the Response, or "timeout" / "unreachable". A plain
 * function returning fetch's promise, not an async one: one fewer promise and turn per request. */
function attempt(st, origin, request, d, body) {
  try {
    // The request's headers copied once (into the new Request), then edited in place.
    const sent = new Request(origin.url + d.p, {
      method: request.method,
      headers: request.headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(origin.timeout_ms),
    });
    execute(st, sent.headers, d.f, null, null);
    if (st.authHeader) sent.headers.set(st.authHeader, st.authValue);
    return fetch(sent).catch(fetchFailure);
  } catch (err) {
    return Promise.resolve(fetchFailure(err));
  }
}

function fetchFailure(err) {
  return err && (err.name === "TimeoutError" || err.name === "AbortError") ? "timeout" : "unreachable";
}

/** Forward to the origin and answer with what it sent, or with the edge's answer for an origin
 * that could not: the fallback page for a page request, else problem+json 502/504. */
async function forward(st, request, d, obs) {
  const reached = await reach(st, request, d, obs);
  if (reached.answer) return reached.answer;
  if (typeof reached.response === "string") return originDown(st, request, d, obs, reached);
  return respond(st, d, reached.response.body, reached.response.status, reached.response.statusText, reached.response, obs, reached.note, request.method === "HEAD");
}

/** One request at the origin, failover included: `{ answer }` when the edge already answered
 * (a body past max_body), else `{ response, note, origin }` where `response` is the origin's
 * Response or "timeout" / "unreachable". */
async function reach(st, request, d, obs) {
  let origin = st.origins[d.o];
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  let body = hasBody ? request.body : null;
  let failover = d.fo;
  // A body without a length (HTTP/2 and HTTP/3 need none) is counted against the route's
  // max_body: what it has read up to the buffer before anything is sent, the rest as it streams.
  const length = request.headers.get("content-length");
  const max = d.mb !== undefined && length === null ? d.mb : undefined;
  const over = { sent: false };
  if (hasBody && (failover !== undefined || max !== undefined)) {
    if (length !== null && Number(length) > BUFFER_BYTES) {
      failover = undefined; // too large to hold for a second attempt: sent once, streamed
    } else {
      const prefix = await readPrefix(body, max === undefined ? BUFFER_BYTES : Math.min(max + 1, BUFFER_BYTES));
      if (max !== undefined && prefix.total > max) {
        await drain(prefix.reader, prefix.total);
        return { answer: bodyTooLarge(st, request, d, obs, false) };
      }
      if (prefix.done) {
        body = joined(prefix.chunks, prefix.total); // all of it: it can be sent twice
      } else {
        failover = undefined;
        body = resumed(prefix, max, over);
      }
    }
  }
  const sent = Date.now();
  let response = await attempt(st, origin, request, d, body);
  if (over.sent) {
    if (typeof response !== "string") await response.body?.cancel();
    return { answer: bodyTooLarge(st, request, d, obs, true) };
  }
  let note = "";
  const failed = typeof response === "string" ? response : response.status >= 500 ? `${response.status}` : null;
  // Failover: once, on a connect error or a 5xx (a timeout may still be processing).
  if (failed !== null && failed !== "timeout" && failover !== undefined) {
    const other = st.origins[failover];
    if (typeof response !== "string") await response.body?.cancel();
    note = `failover;desc="${origin.name} ${failed} -> ${other.name}"`;
    obs.failover = failed;
    log(st, { level: "warn", msg: "failover", request_id: d.r, from: origin.name, to: other.name, cause: failed });
    origin = other;
    response = await attempt(st, origin, request, d, body);
  }
  obs.originMs = Date.now() - sent;
  return { response, note, origin };
}

/** No origin answered (`reached.response` is "timeout" or "unreachable"): the engine's
 * answer for it (`finish` with the origin error) — the fallback page (503) for a page request
 * when the policy has one, else problem+json 504/502. */
function originDown(st, request, d, obs, reached) {
  const kind = reached.response;
  obs.originError = kind; // the request's log line says so (level error)
  if (d.fb && st.fallback) obs.cache = "fallback";
  const extra = [reached.note, `origin-error;desc="${kind}"`].filter(Boolean).join(", ");
  return respond(st, d, null, 0, "", undefined, obs, extra, request.method === "HEAD");
}

// ── The edge cache (docs/caching.md) ────────────────────────────────────────────────────────
// The engine says which requests are looked up and under which key (`ck`, with the route's
// lifetimes `cl`), and which origin answers may be stored (`storable`); here is only the I/O
// on the Workers Cache API. A stored copy is the origin's answer as it came (the response
// phase runs again on every serve: fresh nonces, the policy's current headers) with its age,
// its own Cache-Control and Vary kept aside in headers of ours.

/** When a copy was stored (ms since the epoch), and the origin's own Cache-Control and Vary. */
const STORED_AT = "x-edgeguard-stored";
const STORED_CACHE_CONTROL = "x-edgeguard-cache-control";
const STORED_VARY = "x-edgeguard-vary";
/** At a base key, in place of a copy: the request headers the answers vary on. */
const VARIES_ON = "x-edgeguard-varies-on";

/** Hot copies each isolate also holds in memory, so a hit on them needs no Cache API call: only
 * answers that do not vary, of at most MEMORY_ENTRY_BYTES, while fresh and for at most
 * MEMORY_TTL_S (a purge through Cloudflare's API reaches them within that), MEMORY_TOTAL_BYTES
 * in all (the oldest go first). */
const MEMORY_ENTRY_BYTES = 64 * 1024;
const MEMORY_TOTAL_BYTES = 8 * 1024 * 1024;
const MEMORY_TTL_S = 60;

function edgeCache() {
  return typeof caches !== "undefined" && caches.default ? caches.default : null;
}

/** The key of the variant for this request's values of `names` (comma-separated). */
async function variantKey(base, names, request) {
  const values = names.split(",").map((n) => `${n}:${request.headers.get(n) ?? ""}`).join("\n");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(values)));
  let hex = "";
  for (let i = 0; i < 16; i++) hex += digest[i].toString(16).padStart(2, "0");
  return `${base}&edgeguard-vary=${hex}`;
}

/** A fresh copy this isolate holds in memory for `key`, or null. */
function recall(st, key, fresh) {
  const m = st.memory.get(key);
  if (m === undefined) return null;
  const age = (Date.now() - m.at) / 1000;
  if (age >= fresh || Date.now() >= m.until) {
    forget(st, key, m);
    return null;
  }
  return { status: m.status, statusText: m.statusText, headers: new Headers(m.headers), body: m.body, age };
}

function forget(st, key, m) {
  st.memory.delete(key);
  st.memoryBytes -= m.body.byteLength;
}

/** Keep a fresh, small, non-varying copy in memory too (see MEMORY_TTL_S). */
function remember(st, key, copy, body, fresh) {
  const old = st.memory.get(key);
  if (old !== undefined) forget(st, key, old);
  while (st.memoryBytes + body.byteLength > MEMORY_TOTAL_BYTES && st.memory.size > 0) {
    const [oldest, m] = st.memory.entries().next().value;
    forget(st, oldest, m);
  }
  const at = Date.now() - copy.age * 1000;
  const until = Math.min(at + fresh * 1000, Date.now() + MEMORY_TTL_S * 1000);
  st.memory.set(key, { status: copy.status, statusText: copy.statusText, headers: [...copy.headers], body, at, until });
  st.memoryBytes += body.byteLength;
}

/** The Cache API entry for this request under `base`: the copy itself, or — for an answer that
 * varies — the variant the request's header values pick. `{ key, found, varies }`. */
async function match(cache, base, request) {
  const found = await cache.match(base);
  if (!found || !found.headers.has(VARIES_ON)) return { key: base, found, varies: false };
  const key = await variantKey(base, found.headers.get(VARIES_ON), request);
  return { key, found: await cache.match(key), varies: true };
}

/** The stored copy for this request, `{ status, statusText, headers, body, age }` (the origin's
 * own headers restored, age in seconds), or null. A fresh, small copy that does not vary is
 * read whole and kept in memory as well. */
async function lookup(st, cache, base, request, fresh) {
  const held = fresh > 0 ? recall(st, base, fresh) : null;
  if (held !== null) return held;
  try {
    const { found, varies } = await match(cache, base, request);
    if (!found) return null;
    const h = new Headers(found.headers);
    const at = Number(h.get(STORED_AT));
    if (!Number.isFinite(at)) return null;
    const cc = h.get(STORED_CACHE_CONTROL);
    if (cc === null) h.delete("cache-control");
    else h.set("cache-control", cc);
    const vary = h.get(STORED_VARY);
    if (vary !== null) h.set("vary", vary);
    for (const name of [STORED_AT, STORED_CACHE_CONTROL, STORED_VARY]) h.delete(name);
    const copy = { status: found.status, statusText: found.statusText, headers: h, body: found.body, age: Math.max(0, (Date.now() - at) / 1000) };
    const length = Number(h.get("content-length") ?? NaN);
    if (!varies && copy.age < fresh && length <= MEMORY_ENTRY_BYTES && request.method === "GET") {
      copy.body = new Uint8Array(await found.arrayBuffer());
      if (copy.body.byteLength <= MEMORY_ENTRY_BYTES) remember(st, base, copy, copy.body, fresh);
    }
    return copy;
  } catch {
    return null; // a cache that fails is a miss, never an error
  }
}

/** Serve a stored copy through the response phase, saying so (`Age`, `Cache-Status`). */
function serveCopy(st, request, d, obs, copy, outcome) {
  obs.cache = outcome;
  const h = copy.headers;
  const age = Math.floor(copy.age);
  const ttl = Math.floor(d.cl[0] - copy.age); // negative once stale
  h.set("age", String(age));
  const detail = outcome === "hit" || outcome === "collapsed" ? "" : `; detail=${outcome}`;
  h.set("cache-status", `edgeguard; hit; ttl=${ttl}${outcome === "collapsed" ? "; collapsed" : ""}${detail}`);
  const head = request.method === "HEAD";
  // A client that holds this copy already (If-None-Match, weak comparison): 304, no body.
  const unchanged = copy.status === 200 && notModified(request.headers.get("if-none-match"), h.get("etag"));
  if ((head || unchanged) && copy.body instanceof ReadableStream) copy.body.cancel();
  if (unchanged) {
    for (const name of ["content-length", "content-type", "content-encoding"]) h.delete(name);
    return respond(st, d, null, 304, "", h, obs, `cache;desc="${outcome}"`, head, true);
  }
  return respond(st, d, head ? null : copy.body, copy.status, copy.statusText, h, obs, `cache;desc="${outcome}"`, head, true);
}

/** RFC 9110 13.1.2: `If-None-Match` matches the copy's ETag by weak comparison, or is `*`. */
function notModified(ifNoneMatch, etag) {
  if (!ifNoneMatch || !etag) return false;
  const opaque = (tag) => tag.trim().replace(/^W\//, "");
  const mine = opaque(etag);
  return ifNoneMatch.split(",").some((tag) => tag.trim() === "*" || opaque(tag) === mine);
}

/** Store an origin answer under the request's key when the engine says it may be: returns the
 * body for the client (the other branch of a tee goes to the cache) and the put, or null when
 * the answer is not storable (`why` says why). */
async function store(st, cache, request, d, response, ctx) {
  const headers = response.headers;
  const verdict = st.edge.storable(d.h, response.status, headers.get("cache-control") ?? "", headers.has("set-cookie"), headers.get("vary") ?? "");
  if (verdict.startsWith("!")) return { why: verdict.slice(1) };
  const keep = d.cl[0] + Math.max(d.cl[1], d.cl[2]);
  const h = new Headers(headers);
  const cc = h.get("cache-control");
  if (cc !== null) h.set(STORED_CACHE_CONTROL, cc);
  const vary = h.get("vary");
  if (vary !== null) h.set(STORED_VARY, vary);
  h.delete("vary");
  h.delete("set-cookie"); // only ever one the route's headers remove (storable said so)
  h.set("cache-control", `public, max-age=${keep}`);
  h.set(STORED_AT, String(Date.now()));
  let key = d.ck;
  const puts = [];
  if (verdict !== "") {
    key = await variantKey(d.ck, verdict, request);
    const pointer = new Response(null, { headers: { [VARIES_ON]: verdict, "cache-control": `public, max-age=${keep}`, [STORED_AT]: String(Date.now()) } });
    puts.push(cache.put(d.ck, pointer));
  }
  let client = response.body;
  let stored = null;
  if (response.body) [client, stored] = response.body.tee();
  puts.push(cache.put(key, new Response(stored, { status: response.status, statusText: response.statusText, headers: h })));
  const put = Promise.all(puts).then(
    () => {},
    (err) => log(st, { level: "warn", msg: "cache put failed", request_id: d.r, error: String(err?.message ?? err) }),
  );
  if (ctx) ctx.waitUntil(put);
  return { body: client, put };
}

/** A route with an edge cache: a fresh copy answers; a stale one answers while one refresh
 * per key runs behind it (stale-while-revalidate); otherwise the origin, once per key for
 * concurrent misses (the others wait and take the stored copy), and a stale copy stands in
 * when the origin fails (stale-if-error). */
async function cached(st, request, d, obs, ctx) {
  const cache = edgeCache();
  if (cache === null) return forward(st, request, d, obs);
  const [fresh, swr, sie] = d.cl;
  let copy = await lookup(st, cache, d.ck, request, fresh);
  if (copy && copy.age < fresh) return serveCopy(st, request, d, obs, copy, "hit");
  if (copy && copy.age < fresh + swr) {
    if (ctx && !st.refreshing.has(d.ck)) {
      st.refreshing.add(d.ck);
      ctx.waitUntil(refresh(st, cache, request, d, ctx, copy.headers.get("etag")).finally(() => st.refreshing.delete(d.ck)));
    }
    return serveCopy(st, request, d, obs, copy, "stale");
  }
  const get = request.method === "GET";
  const pending = get ? st.inflight.get(d.ck) : undefined;
  if (pending) {
    await pending;
    const stored = await lookup(st, cache, d.ck, request, fresh);
    if (stored && stored.age < fresh) return serveCopy(st, request, d, obs, stored, "collapsed");
    copy = stored ?? copy;
  }
  let settled = () => {};
  const leads = get && !pending;
  if (leads) st.inflight.set(d.ck, new Promise((resolve) => (settled = resolve)));
  let storing = null;
  try {
    const reached = await reach(st, request, d, obs);
    if (reached.answer) return reached.answer;
    const response = reached.response;
    const failed = typeof response === "string" || response.status >= 500;
    if (failed && copy && copy.age < fresh + sie) {
      if (typeof response === "string") obs.originError = response;
      else await response.body?.cancel();
      const why = typeof response === "string" ? response : String(response.status);
      log(st, { level: "warn", msg: "stale-if-error", request_id: d.r, cause: why, age: Math.floor(copy.age) });
      return serveCopy(st, request, d, obs, copy, "stale-if-error");
    }
    if (typeof response === "string") return originDown(st, request, d, obs, reached);
    let body = response.body;
    let status = `edgeguard; fwd=${copy ? "stale" : "miss"}`;
    // A copy stored moments ago stays: an `edge = 0` route must not write on every request.
    const recent = copy && copy.age < Math.min(60, (fresh + Math.max(swr, sie)) / 10);
    obs.cache = "miss";
    if (get && !recent) {
      const stored = await store(st, cache, request, d, response, ctx);
      if (stored.why) {
        obs.cache = "no-store";
        status += `; detail=${stored.why}`;
      } else {
        body = stored.body;
        status += "; stored";
        storing = stored.put;
      }
    }
    const h = new Headers(response.headers);
    h.set("cache-status", `${status}; fwd-status=${response.status}`);
    return respond(st, d, body, response.status, response.statusText, h, obs, reached.note, request.method === "HEAD", true);
  } finally {
    // Waiting requests look again once the copy is stored, or at once when nothing will be.
    if (leads) {
      Promise.resolve(storing).then(() => {
        settled();
        st.inflight.delete(d.ck);
      });
    }
  }
}

/** stale-while-revalidate: ask the origin again behind a stale copy — conditionally, with the
 * copy's ETag, so an unchanged answer costs a 304 and the copy is kept with a new age — and
 * store what it answers. The client's own conditional headers are not sent: they are about the
 * client's copy, not the edge's. */
async function refresh(st, cache, request, d, ctx, etag) {
  const headers = new Headers(request.headers);
  for (const name of ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"]) headers.delete(name);
  if (etag) headers.set("if-none-match", etag);
  const get = new Request(request.url, { method: "GET", headers });
  const obs = observation(Date.now());
  const reached = await reach(st, get, { ...d, fo: undefined }, obs);
  if (reached.answer || typeof reached.response === "string") return;
  if (reached.response.status === 304 && etag) {
    await reached.response.body?.cancel();
    await renew(cache, d.ck, get);
    return;
  }
  const stored = await store(st, cache, get, d, reached.response, ctx);
  if (stored.why) await reached.response.body?.cancel();
  else {
    // Read the client's branch too: the tee holds the stored branch until both are read.
    const reader = stored.body?.getReader();
    if (reader) while (!(await reader.read()).done);
    await stored.put;
  }
}

/** The origin says the stored copy is still current (304): store it again, fresh from now. */
async function renew(cache, base, request) {
  try {
    const { key, found } = await match(cache, base, request);
    if (!found) return;
    const h = new Headers(found.headers);
    h.set(STORED_AT, String(Date.now()));
    await cache.put(key, new Response(found.body, { status: found.status, statusText: found.statusText, headers: h }));
  } catch {
    // the copy stays stale; the next request past it asks again
  }
}

/** A body past its route's max_body: 413 problem+json, and the request's log line says so. */
function bodyTooLarge(st, request, d, obs, sent) {
  const raw = st.edge.body_too_large(d.k, sent);
  const answer = raw ? JSON.parse(raw) : d;
  return respond(st, answer, request.method === "HEAD" ? null : answer.b, answer.s, "", undefined, obs, "");
}

/** The body's first chunks, until `limit` bytes or its end: { chunks, total, done, reader }. */
async function readPrefix(body, limit) {
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { chunks, total, done: true, reader };
    chunks.push(value);
    total += value.byteLength;
    if (total >= limit) return { chunks, total, done: false, reader };
  }
}

/** Read what is left of a body, keeping nothing, up to a cap: a body the worker stopped reading
 * halfway can break the connection it came on (wrangler's local proxy fails the next request
 * on it). Past the cap the rest is left unread. */
async function drain(reader, total) {
  try {
    while (total <= DRAIN_CAP_BYTES) {
      const next = await reader.read();
      if (next.done) break;
      total += next.value.byteLength;
    }
  } catch {
    // the client went away: nothing left to keep its connection for
  }
  reader.releaseLock();
}

function joined(chunks, total) {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** The body again from its start: the chunks read, then the rest from the reader, counted
 * against `max` when there is one. Past it the stream fails (the origin sees the upload
 * aborted) and `over.sent` says so. */
function resumed(prefix, max, over) {
  let total = prefix.total;
  let queued = prefix.chunks;
  return new ReadableStream({
    async pull(controller) {
      if (queued.length > 0) {
        controller.enqueue(queued.shift());
        return;
      }
      const { done, value } = await prefix.reader.read();
      if (done) {
        controller.close();
        return;
      }
      total += value.byteLength;
      if (max !== undefined && total > max) {
        over.sent = true;
        controller.error(new RangeError("the body passed the route's max_body"));
        prefix.reader.cancel().catch(() => {});
        return;
      }
      controller.enqueue(value);
    },
    cancel(reason) {
      queued = [];
      return prefix.reader.cancel(reason);
    },
  });
}

/** The shell's own event lines (failover, limiter unavailable, shadow), with the revision that
 * decided; `log = "off"` silences them. */
function log(st, fields) {
  if (!st.quiet) console.log(JSON.stringify({ ...fields, revision: st.revision }));
}

/** Every request while the policy cannot be loaded: 503 problem+json, nothing forwarded. */
function refuseAll(request) {
  const id = crypto.randomUUID().replaceAll("-", "");
  let path = "/";
  try {
    path = new URL(request.url).pathname;
  } catch {}
  const body = request.method === "HEAD" ? null : misconfigured(id, path);
  const headers = { "content-type": "application/problem+json", "cache-control": "no-store", "x-request-id": id, "retry-after": "60" };
  return new Response(body, { status: 503, headers });
}

/** A CSP report's body, read up to `max` bytes: a longer one is cut off and reported as such. */
async function readAtMost(request, max) {
  if (!request.body) return { bytes: new Uint8Array(0), tooLarge: false };
  try {
    const prefix = await readPrefix(request.body, max + 1);
    if (prefix.total > max) {
      await drain(prefix.reader, prefix.total);
      return { bytes: new Uint8Array(0), tooLarge: true };
    }
    return { bytes: joined(prefix.chunks, prefix.total), tooLarge: false };
  } catch {
    return { bytes: new Uint8Array(0), tooLarge: false }; // a broken body is malformed: 400
  }
}

/** The CSP report intake: the engine validated method, type, length and rate; now the body. */
async function cspReport(st, request, d, obs) {
  const { bytes, tooLarge } = await readAtMost(request, st.info.observe.csp_max_bytes);
  const raw = st.edge.csp_report(d.k, bytes, tooLarge, Date.now());
  const answer = raw ? JSON.parse(raw) : d;
  const body = answer.a === "reject" && request.method !== "HEAD" ? answer.b : null;
  return respond(st, answer, body, answer.s, "", undefined, obs, "");
}

/** Write what `finish` handed back for a request: usually just its log line; `+{l, e, p}`
 * when there are PostHog events or an Analytics Engine data point too. */
function write(st, ctx, raw) {
  if (!raw) return;
  if (raw.charCodeAt(0) !== 43) {
    console.log(raw);
    return;
  }
  const out = JSON.parse(raw.slice(1));
  if (out.l) console.log(out.l);
  if (out.p && st.analytics) {
    try {
      st.analytics.writeDataPoint(out.p);
      st.edge.analytics_result(true);
    } catch {
      st.edge.analytics_result(false);
    }
  }
  if (out.e && st.posthogUrl && ctx) ctx.waitUntil(sendEvents(st, out.e));
}

/** The fleet statistics object (one for the whole fleet). */
function statsStub(st) {
  return st.stats.get(st.stats.idFromName("fleet"));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve with `promise`, or reject after `ms`. */
function within(promise, ms) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** `[stats] flush` after the first request it has not sent: hand the isolate's aggregate to
 * the fleet object in one RPC. */
async function flushLater(st) {
  await sleep(st.statsFlushMs);
  st.statsArmed = false;
  await flushStats(st, false);
}

/** Unsent flushes an isolate keeps (each is `[stats] flush` of its requests); past them the
 * oldest goes back into the aggregate and out again with a new sequence number. */
const MAX_UNSENT = 16;

/**
 * Send what the isolate counted. Each flush gets a sequence number and stays in `statsUnsent`
 * until the object acknowledges it; one that fails or times out is sent again with the same
 * number, and the object skips numbers it has merged: a merge that landed after its timeout is
 * never counted twice, and a failed one is never lost.
 */
async function flushStats(st, now) {
  const bytes = st.edge.stats_take(now ? Date.now() + st.statsFlushMs : Date.now());
  if (bytes.length > 0) {
    st.statsSeq += 1;
    st.statsUnsent.push({ seq: st.statsSeq, bytes });
    if (st.statsUnsent.length > MAX_UNSENT) st.edge.stats_restore(st.statsUnsent.shift().bytes);
  }
  if (st.statsUnsent.length === 0 || st.statsSending) return;
  st.statsSending = true;
  const batch = st.statsUnsent.slice();
  try {
    await within(statsStub(st).merge(st.statsIsolate, batch.map((u) => u.seq), batch.map((u) => u.bytes)), STATS_TIMEOUT_MS);
    st.statsUnsent = st.statsUnsent.filter((u) => !batch.includes(u));
  } catch {
    // kept in statsUnsent: the next flush sends them again
  } finally {
    st.statsSending = false;
  }
}

/** The dashboard or `?scope=fleet`: this isolate's numbers first, then the fleet object's answer. */
async function fleetAnswer(st, request, d, obs, what) {
  let body;
  let status = d.s;
  if (st.stats === null) {
    status = 503;
    body = "the fleet statistics object is not bound (EDGEGUARD_STATS); see docs/operate.md\n";
  } else {
    try {
      await flushStats(st, true);
      body = await within(what === "dashboard" ? statsStub(st).dashboard() : statsStub(st).prometheus(), STATS_TIMEOUT_MS);
    } catch {
      status = 503;
      body = "the fleet statistics object did not answer\n";
    }
  }
  const response = respond(st, d, request.method === "HEAD" ? null : body, status, "", undefined, obs, "");
  if (status !== 200) response.headers.set("content-type", "text/plain; charset=utf-8");
  return response;
}

/** One PostHog batch, after the response: one attempt, bounded by a timeout, counted, never retried. */
async function sendEvents(st, events) {
  let result = "ok";
  try {
    const res = await fetch(st.posthogUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: st.posthogKey, batch: events }),
      signal: AbortSignal.timeout(POSTHOG_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (!res.ok) result = "status";
  } catch (err) {
    result = err && (err.name === "TimeoutError" || err.name === "AbortError") ? "timeout" : "error";
  }
  st.edge.posthog_result(events.length, result);
}

/** Ask the global limiter (Durable Object shard or Cloudflare binding); "" when it failed. */
async function askLimiter(st, env, g) {
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
    return await stub.check(g.limit, g.key, st.info.revision);
  })().catch(() => "");
  return Promise.race([ask, timeout]);
}

/**
 * Probe every origin's `probe_path` once per `health_cache_ms` (concurrent callers share a
 * round). Each result carries the status, the time until the body was read, and at most
 * `probe_max_bytes` of the body as text for the engine to judge; `probe_timeout_ms` bounds the
 * whole probe, body included.
 */
async function probeOrigins(st) {
  const now = Date.now();
  if (st.probes && now - st.probes.at < st.info.health_cache_ms) return st.probes.results;
  if (st.probes?.pending) return st.probes.pending;
  const pending = Promise.all(
    st.origins.map(async (origin, index) => {
      const began = Date.now();
      const time = new Date(began).toISOString();
      const limit = st.info.probe_timeout_ms;
      try {
        const r = await fetch(origin.url + (st.info.probe_path ?? "/"), {
          method: "GET",
          redirect: "manual",
          signal: AbortSignal.timeout(limit),
        });
        const { text, truncated } = await readBounded(r.body, st.info.probe_max_bytes, began + limit);
        return { origin: index, status: r.status, ms: Date.now() - began, time, error: null, body: text, truncated };
      } catch (err) {
        const error = err && (err.name === "TimeoutError" || err.name === "AbortError") ? `no answer within ${limit} ms` : `unreachable: ${err?.message ?? err}`;
        return { origin: index, status: null, ms: Date.now() - began, time, error };
      }
    }),
  );
  st.probes = { at: st.probes?.at ?? 0, results: st.probes?.results ?? null, pending };
  const results = await pending;
  st.probes = { at: Date.now(), results, pending: null, answer: null };
  st.edge.set_health(JSON.stringify(results));
  return results;
}

/**
 * At most `max` bytes of a body as text, and whether there was more; the rest is never read.
 * A body still arriving at `deadline` (epoch ms) is a TimeoutError: a probe never hangs.
 */
async function readBounded(body, max, deadline) {
  if (!body) return { text: "", truncated: false };
  const reader = body.getReader();
  const chunks = [];
  let size = 0;
  let truncated = false;
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), Math.max(0, deadline - Date.now()));
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), expired]);
      if (next === null) throw new DOMException("health answer still arriving at the timeout", "TimeoutError");
      if (next.done) break;
      const room = max - size;
      if (next.value.byteLength > room) {
        chunks.push(next.value.subarray(0, room));
        size = max;
        truncated = true;
        break;
      }
      chunks.push(next.value);
      size += next.value.byteLength;
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { text: new TextDecoder().decode(bytes), truncated };
}

/** Keep probe results fresh in the background so routing can skip a failing origin. */
function refreshHealth(st, ctx, now) {
  if (!st.info.probe_path || !ctx) return;
  const fresh = st.probes && now - st.probes.at < st.info.health_cache_ms;
  if (fresh || st.probes?.pending) return;
  ctx.waitUntil(probeOrigins(st).catch(() => {}));
}

/** The edge's health answer; rendered once per round of probes, then served from memory. */
async function health(st, request, d, obs) {
  const probes = await probeOrigins(st);
  let answer = st.probes?.results === probes ? st.probes.answer : null;
  if (!answer) {
    answer = JSON.parse(st.edge.health(JSON.stringify(probes)));
    if (st.probes?.results === probes) st.probes.answer = answer;
  }
  const body = request.method === "HEAD" ? null : answer.body;
  return respond(st, d, body, answer.status, "", undefined, obs, "");
}

/** What the edge answers itself: health, CSP reports, metrics. */
function edgeAnswer(st, request, d, obs) {
  switch (d.why) {
    case "csp_report":
      return cspReport(st, request, d, obs);
    case "metrics":
      if (new URL(request.url).searchParams.get("scope") === "fleet") return fleetAnswer(st, request, d, obs, "metrics");
      return respond(st, d, request.method === "HEAD" ? null : st.edge.metrics(), d.s, "", undefined, obs, "");
    case "dashboard":
      return fleetAnswer(st, request, d, obs, "dashboard");
    default:
      return health(st, request, d, obs);
  }
}

async function handle(st, request, env, ctx) {
  const start = Date.now();
  if (st.broken !== null) return refuseAll(request);
  refreshHealth(st, ctx, start);
  const flat = flatten(request);
  const cf = cfFacts(request.cf);
  let d = JSON.parse(st.edge.decide(flat, cf, start));
  // A session the engine cannot tell yet: fetch the key set, then check the signature; each
  // answer is remembered, so this happens once per key set and once per token per isolate.
  for (let asks = 0; d.a === "ask" && asks < 3; asks++) {
    if (d.j) await fetchJwks(st, d.j);
    else await checkSignature(st, d.v);
    d = JSON.parse(st.edge.decide(flat, cf, Date.now()));
  }
  if (d.a === "ask") return refuseAll(request);
  if (d.a === "limit") {
    const answer = await askLimiter(st, env, d.g);
    if (answer === "") log(st, { level: "warn", msg: "limiter unavailable", request_id: d.r, limit: d.g.name });
    d = JSON.parse(st.edge.settle(d.k, answer, Date.now()));
  }
  if (d.shadowed) log(st, { level: "info", msg: "shadow: would have refused", request_id: d.r, reason: d.shadowed, route: d.route, detail: d.detail });
  if (d.x && !st.quiet) console.log(d.x);
  const obs = observation(start, ctx);
  let response;
  switch (d.a) {
    case "forward":
      if (d.ck !== undefined) response = await cached(st, request, d, obs, ctx);
      else {
        if (d.cb) obs.cache = "bypass";
        response = await forward(st, request, d, obs);
      }
      break;
    case "respond":
      response = await edgeAnswer(st, request, d, obs);
      break;
    case "redirect":
      response = respond(st, d, null, d.s, "", undefined, obs, "");
      break;
    default:
      // A page request during maintenance gets the fallback page (`fb`), anything else problem+json.
      response = respond(st, d, request.method === "HEAD" ? null : d.fb ? st.fallback?.html ?? "" : d.b, d.s, "", undefined, obs, "");
  }
  return response;
}

/** How long a session source's key set may take to fetch. */
const JWKS_TIMEOUT_MS = 5000;
/** Largest key set read (Supabase's holds a few keys: ~1 KB). */
const JWKS_MAX_BYTES = 64 * 1024;

/**
 * Fetch a session source's JWKS for the engine (`decide`'s `j` ask). Concurrent asks for one
 * source share one fetch; a failure is handed over as `undefined` and the engine answers the
 * source's sessions 503 until it retries.
 */
function fetchJwks(st, ask) {
  const inflight = (st.jwks ??= new Map());
  let pending = inflight.get(ask.source);
  if (pending === undefined) {
    pending = (async () => {
      let text;
      let error = "";
      try {
        const r = await fetch(st.jwksUrls[ask.source] ?? ask.url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) });
        if (r.ok) text = await readBounded(r.body, JWKS_MAX_BYTES, Date.now() + JWKS_TIMEOUT_MS).then((b) => (b.truncated ? undefined : b.text));
        else error = `status ${r.status}`;
        if (r.ok && text === undefined) error = "larger than 64 KiB";
      } catch (err) {
        error = String(err?.name === "TimeoutError" ? "timeout" : err?.message ?? err);
      }
      const keys = st.edge.session_jwks(ask.source, text, Date.now());
      if (text === undefined || keys === 0) log(st, { level: "error", msg: "session key set unavailable", url: st.jwksUrls[ask.source] ?? ask.url, error: error || "no usable key" });
    })().finally(() => inflight.delete(ask.source));
    inflight.set(ask.source, pending);
  }
  return pending;
}

const encoder = new TextEncoder();

/** WebCrypto parameters per JOSE algorithm: [import, verify]. */
const ALGORITHMS = {
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
};

/** base64url (no padding) → bytes; `null` when it is not base64url. */
function base64url(text) {
  try {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/**
 * Check a session token's signature with the key the engine selected (`decide`'s `v` ask) and
 * hand the answer back. Imported keys are kept per key (the engine's JWK text names it).
 */
async function checkSignature(st, ask) {
  const [importAlg, verifyAlg] = ALGORITHMS[ask.alg] ?? [];
  let valid = false;
  try {
    const keys = (st.cryptoKeys ??= new Map());
    let key = keys.get(ask.jwk);
    if (key === undefined) {
      key = crypto.subtle.importKey("jwk", JSON.parse(ask.jwk), importAlg, false, ["verify"]);
      keys.set(ask.jwk, key);
    }
    const signature = base64url(ask.signature);
    valid = signature !== null && (await crypto.subtle.verify(verifyAlg, await key, signature, encoder.encode(ask.input)));
  } catch (err) {
    log(st, { level: "warn", msg: "session signature check failed", alg: ask.alg, kid: ask.kid, error: String(err?.message ?? err) });
  }
  st.edge.session_verified(ask.id, valid, Date.now());
}

/** How often a limiter shard drops the saved states of keys that have recovered. */
const LIMITER_SWEEP_MS = 15 * 60 * 1000;

/** Whether a saved state (decimal nanoseconds) is over at `nowMs`. */
function recovered(state, nowMs) {
  return BigInt(state) <= BigInt(nowMs) * 1000000n;
}

/**
 * One shard of the global limiter: GCRA state for the keys that hash to it. Each admitted
 * request's new state is written to the object's storage (without awaiting: the runtime
 * coalesces the writes of a turn, and the answer leaves only once they are durable), and an
 * object that starts — after eviction, a deploy, a crash — reads them back first, so a restart
 * hands no client a fresh burst. States are stored per policy revision (`<revision>:<key>`);
 * an alarm drops the ones that have recovered.
 */
export class EdgeguardLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    /** The engine of each policy revision that asked, with its saved states restored. */
    this.edges = new Map();
  }

  /** Count one request for `key` under limit `limit` of the policy with this `revision`. */
  async check(limit, key, revision) {
    let edge = this.edges.get(revision);
    if (edge === undefined) {
      edge = this.load(revision);
      this.edges.set(revision, edge);
    }
    const engine = await edge;
    const answer = engine.global_check(limit, key, Date.now());
    const state = engine.global_state(key);
    if (state !== "") {
      this.ctx.storage.put(`${revision}:${key}`, state);
      this.schedule();
    }
    return answer;
  }

  /** The engine for `revision` with the states this object saved for it. */
  async load(revision) {
    // The entry's `edgeguard()` calls ran in this isolate too: find the policy that asks. One it
    // cannot load, or none with that revision (another version mid-rollout), throws: the asking
    // edge treats the limiter as unavailable and the limit's on_error decides.
    let engine;
    for (const policy of policies) {
      try {
        const candidate = newEdge(policy);
        if (JSON.parse(candidate.info()).revision === revision) engine = candidate;
      } catch {
        // an unreadable bundle answers nobody; its own edge refuses every request anyway
      }
    }
    if (engine === undefined) {
      this.edges.delete(revision);
      throw new Error(`no policy with revision ${revision} in this worker`);
    }
    const saved = await this.ctx.storage.list({ prefix: `${revision}:` });
    let lines = "";
    for (const [name, state] of saved) lines += `${name.slice(revision.length + 1)}\t${state}\n`;
    engine.restore_global(lines, Date.now());
    return engine;
  }

  schedule() {
    if (this.sweeping) return;
    this.sweeping = true;
    this.ctx.storage.getAlarm().then((at) => at ?? this.ctx.storage.setAlarm(Date.now() + LIMITER_SWEEP_MS));
  }

  /** Drop the saved states of keys that have recovered (of every revision). */
  async alarm() {
    this.sweeping = false;
    const now = Date.now();
    const over = [];
    for (const [name, state] of await this.ctx.storage.list()) if (recovered(state, now)) over.push(name);
    for (let i = 0; i < over.length; i += 128) await this.ctx.storage.delete(over.slice(i, i + 128));
    if ((await this.ctx.storage.list({ limit: 1 })).size > 0) this.schedule();
  }
}

/** How often the statistics object evaluates alerts at most: once per bucket, at least once a minute. */
function evaluationMs(fleet) {
  return Math.max(100, Math.min(fleet.bucket_ms(), 60_000));
}

/**
 * The fleet statistics: every isolate's aggregate merged exactly (edgeguard_core::stats). Rows
 * and totals live in this object's storage (per bucket for 7 days, per hour for 90), so a
 * restart keeps the history. An alarm evaluates the SLO burn-rate alerts once per bucket; each
 * alert that fires or resolves becomes one notification per destination, written to an outbox
 * in storage in the same turn as the alert's new state, and sent until it is taken: a
 * destination that fails is retried with backoff and counted, never dropped silently.
 */
export class EdgeguardStats extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.fleet = null;
    this.loading = null;
    this.armed = false;
    /** Sequence numbers merged lately, by isolate (flushes are resent until acknowledged). */
    this.seen = new Map();
  }

  /** The fleet state, read back from storage on the object's first call. */
  ready() {
    if (this.fleet !== null) return Promise.resolve(this.fleet);
    this.loading ??= (async () => {
      const fleet = new Fleet();
      for (const [key, value] of await this.ctx.storage.list()) {
        if (!key.startsWith("outbox:")) fleet.restore(key, new Uint8Array(value));
      }
      this.fleet = fleet;
      return fleet;
    })();
    return this.loading;
  }

  /** Write what changed; the runtime coalesces the puts of a turn and holds the answer until they are durable. */
  save(fleet) {
    const keys = fleet.take_dirty();
    if (keys === "") return;
    const entries = keys.split("\n").map((key, i) => [key, fleet.value(i)]);
    for (let i = 0; i < entries.length; i += 128) this.ctx.storage.put(Object.fromEntries(entries.slice(i, i + 128)));
  }

  arm(fleet, at) {
    if (this.armed && at === undefined) return;
    this.armed = true;
    const when = at ?? Date.now() + evaluationMs(fleet);
    this.ctx.storage.getAlarm().then((current) => {
      if (current === null || current > when) return this.ctx.storage.setAlarm(when);
    });
  }

  /** Flushes of one isolate (edgeguard_core::stats::Flush, postcard bytes) by sequence number;
   * a number merged before (a flush sent again after its answer was lost) is skipped. */
  async merge(isolate, seqs, flushes) {
    const fleet = await this.ready();
    let seen = this.seen.get(isolate);
    if (seen === undefined) {
      seen = new Set();
      this.seen.set(isolate, seen);
      if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value);
    }
    let merged = 0;
    for (let i = 0; i < seqs.length; i += 1) {
      if (seen.has(seqs[i])) continue;
      if (fleet.merge(flushes[i])) merged += 1;
      seen.add(seqs[i]);
      if (seen.size > 4 * MAX_UNSENT) seen.delete(seen.values().next().value);
    }
    this.save(fleet);
    this.arm(fleet);
    return merged;
  }

  async prometheus() {
    return (await this.ready()).prometheus(Date.now());
  }

  async dashboard() {
    return (await this.ready()).dashboard(Date.now());
  }

  async alarm() {
    this.armed = false;
    const fleet = await this.ready();
    const now = Date.now();
    const alerts = JSON.parse(fleet.alerts());
    for (const notice of JSON.parse(fleet.evaluate(now))) {
      const out = {};
      if (alerts.slack_env) out[`outbox:${notice.id}:slack`] = { destination: "slack", body: notice.slack, attempts: 0, next: now };
      if (alerts.webhook_env) out[`outbox:${notice.id}:webhook`] = { destination: "webhook", body: notice.webhook, attempts: 0, next: now };
      if (alerts.posthog) out[`outbox:${notice.id}:posthog`] = { destination: "posthog", body: notice.posthog, attempts: 0, next: now };
      console.log(JSON.stringify({ level: notice.status === "firing" ? "error" : "info", msg: `slo alert ${notice.status}`, ...notice.webhook }));
      if (Object.keys(out).length > 0) this.ctx.storage.put(out);
    }
    this.save(fleet);
    const retryAt = await this.deliver(fleet, alerts, now);
    const gone = JSON.parse(fleet.prune(now));
    for (let i = 0; i < gone.length; i += 128) await this.ctx.storage.delete(gone.slice(i, i + 128));
    this.save(fleet);
    if (fleet.active(now)) this.arm(fleet);
    if (retryAt !== null) this.arm(fleet, Math.max(retryAt, now + 100));
  }

  /** Send every notification that is due; returns when the next retry is due, or null. */
  async deliver(fleet, alerts, now) {
    let next = null;
    for (const [key, item] of await this.ctx.storage.list({ prefix: "outbox:" })) {
      if (item.next > now) {
        next = next === null ? item.next : Math.min(next, item.next);
        continue;
      }
      const result = await this.send(alerts, item);
      if (result === "ok" || result === "unconfigured") {
        fleet.notified(item.destination, result);
        await this.ctx.storage.delete(key);
        if (result === "unconfigured") console.error(JSON.stringify({ level: "error", msg: "alert not sent: its destination's worker variable is not set", destination: item.destination }));
        continue;
      }
      fleet.notified(item.destination, "failed");
      item.attempts += 1;
      if (item.attempts >= NOTIFY_MAX_ATTEMPTS) {
        fleet.notified(item.destination, "dropped");
        await this.ctx.storage.delete(key);
        console.error(JSON.stringify({ level: "error", msg: "alert notification given up", destination: item.destination, attempts: item.attempts }));
        continue;
      }
      item.next = now + Math.min(1000 * 2 ** item.attempts, NOTIFY_MAX_BACKOFF_MS);
      await this.ctx.storage.put(key, item);
      console.error(JSON.stringify({ level: "warn", msg: "alert notification failed; retrying", destination: item.destination, attempts: item.attempts, result }));
      next = next === null ? item.next : Math.min(next, item.next);
    }
    return next;
  }

  /** One notification: "ok", "status" (not 2xx), "error", or "unconfigured" (no URL or key). */
  async send(alerts, item) {
    let url;
    const headers = { "content-type": "application/json" };
    let body = item.body;
    if (item.destination === "slack") url = this.env[alerts.slack_env];
    else if (item.destination === "webhook") {
      url = this.env[alerts.webhook_env];
      const token = alerts.webhook_token_env ? this.env[alerts.webhook_token_env] : null;
      if (token) headers.authorization = `Bearer ${token}`;
    } else {
      const host = String(this.env.EDGE_POSTHOG_HOST || alerts.posthog_host || "").replace(/\/+$/, "");
      const key = this.env.POSTHOG_KEY;
      if (!host || !key) return "unconfigured";
      url = `${host}/batch/`;
      body = { api_key: String(key), batch: [item.body] };
    }
    if (!url) return "unconfigured";
    try {
      const res = await fetch(String(url), { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS) });
      await res.body?.cancel();
      return res.ok ? "ok" : "status";
    } catch {
      return "error";
    }
  }
}
