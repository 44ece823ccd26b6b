// The edge cache in workerd (docs/benchmarks.md, "The edge cache"): a cache hit against a
// forwarded request through the same edge, and a stale-if-error answer against a hit.
//
//   make edges && node bench/worker/cache.mjs [REQUESTS_PER_ROUND=400] [ROUNDS=5] [CLIENTS=4]
//
// One demo origin and the edge of tests/e2e/cache.toml under `wrangler dev --local` (workerd with
// the Cache API). Interleaved rounds, CLIENTS keep-alive connections each:
//   hit        GET /_next/static/chunks/bench.js — stored on the first request, then answered
//              from the cache;
//   forwarded  the same request with a Supabase session cookie: personal, so it bypasses the
//              cache and goes to the origin (the same origin work as the hit's first request).
// Then stale-if-error: GET / (edge = 0, stale_if_error = 1h) is stored, the origin is stopped
// (connection refused: it fails fast), and sequential requests are answered from the copy; the
// hit's sequential p50 is measured in the same phase. Prints one JSON line.
import https from "node:https";
import { startEdge, startOrigin } from "../../tests/e2e/harness.mjs";

const PER_ROUND = Number(process.argv[2] ?? 400);
const ROUNDS = Number(process.argv[3] ?? 5);
const CLIENTS = Number(process.argv[4] ?? 4);
const ASSET = "/_next/static/chunks/bench.js";
const HOST = "app.test";

// wrangler's local certificate is self-signed; the edge redirects plain http.
const agent = new https.Agent({ keepAlive: true, maxSockets: CLIENTS, rejectUnauthorized: false });

function get(port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const began = process.hrtime.bigint();
    const req = https.request({ host: "127.0.0.1", port, path, agent, headers: { host: HOST, ...headers } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, cache: res.headers["cache-status"] ?? "", us: Number(process.hrtime.bigint() - began) / 1000 }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** `count` requests over CLIENTS connections: req/s and the latencies. */
async function round(port, path, headers, count, expect) {
  const latencies = [];
  let next = 0;
  const began = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < count) {
        next++;
        const r = await get(port, path, headers);
        if (r.status !== 200 || !expect(r.cache)) throw new Error(`${path}: ${r.status} ${r.cache}`);
        latencies.push(r.us);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - began) / 1e9;
  return { rps: count / secs, latencies };
}

const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
};
const ms = (us) => Math.round(us) / 1000;
const median = (xs) => pct(xs, 50);

const origin = await startOrigin("blue");
const edge = await startEdge({ main: "build/edge-cache/index.mjs", vars: { EDGE_ORIGINS: `*=${origin.url}` } });
const port = Number(new URL(edge.url).port);
try {
  await get(port, ASSET);
  const hit = (c) => c.startsWith("edgeguard; hit");
  const bypass = (c) => c === "";
  const session = { cookie: "sb-demo-auth-token=bench" };
  // Warm-up of both paths.
  await round(port, ASSET, {}, 100, hit);
  await round(port, ASSET, session, 100, bypass);
  const hits = { rps: [], lat: [] };
  const forwards = { rps: [], lat: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const h = await round(port, ASSET, {}, PER_ROUND, hit);
    const f = await round(port, ASSET, session, PER_ROUND, bypass);
    hits.rps.push(h.rps);
    hits.lat.push(...h.latencies);
    forwards.rps.push(f.rps);
    forwards.lat.push(...f.latencies);
  }
  // The runtime's own floor: a bare worker doing only the Cache API match, or only the fetch.
  const floor = await startEdge({ main: "bench/worker/cache-floor.mjs", vars: { ORIGIN: origin.url } });
  const floorPort = Number(new URL(floor.url).port);
  const floorHits = [];
  const floorForwards = [];
  try {
    await get(floorPort, "/hit");
    await round(floorPort, "/hit", {}, 100, () => true);
    await round(floorPort, "/fwd", {}, 100, () => true);
    for (let i = 0; i < ROUNDS; i++) {
      floorHits.push((await round(floorPort, "/hit", {}, PER_ROUND, () => true)).rps);
      floorForwards.push((await round(floorPort, "/fwd", {}, PER_ROUND, () => true)).rps);
    }
  } finally {
    await floor.stop();
  }
  // stale-if-error against a hit, one request at a time.
  const page = { accept: "text/html" };
  await get(port, "/", page);
  await origin.stop();
  const stale = [];
  const sequentialHits = [];
  for (let i = 0; i < 200; i++) {
    const s = await get(port, "/", page);
    if (s.status !== 200 || !s.cache.includes("stale-if-error")) throw new Error(`stale-if-error: ${s.status} ${s.cache}`);
    stale.push(s.us);
    const h = await get(port, ASSET);
    if (!hit(h.cache)) throw new Error(`hit: ${h.cache}`);
    sequentialHits.push(h.us);
  }
  console.log(
    JSON.stringify({
      clients: CLIENTS,
      rounds: ROUNDS,
      per_round: PER_ROUND,
      hit_rps: Math.round(median(hits.rps)),
      forwarded_rps: Math.round(median(forwards.rps)),
      hit_vs_forwarded: Math.round((median(hits.rps) / median(forwards.rps)) * 100) / 100,
      floor_match_rps: Math.round(median(floorHits)),
      floor_fetch_rps: Math.round(median(floorForwards)),
      floor_match_vs_fetch: Math.round((median(floorHits) / median(floorForwards)) * 100) / 100,
      hit_p50_ms: ms(pct(hits.lat, 50)),
      hit_p99_ms: ms(pct(hits.lat, 99)),
      forwarded_p50_ms: ms(pct(forwards.lat, 50)),
      forwarded_p99_ms: ms(pct(forwards.lat, 99)),
      sequential_hit_p50_ms: ms(pct(sequentialHits, 50)),
      stale_if_error_p50_ms: ms(pct(stale, 50)),
      stale_if_error_minus_hit_p50_ms: ms(pct(stale, 50) - pct(sequentialHits, 50)),
    }),
  );
} finally {
  agent.destroy();
  await edge.stop();
  await origin.stop().catch(() => {});
}
