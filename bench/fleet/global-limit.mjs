// Added latency of a global (Durable Object) limit check vs a local one, in workerd through
// `wrangler dev`, and requests/s through a global limit with 10 000 distinct keys.
// Run: make edges && node bench/fleet/global-limit.mjs
// Uses tests/e2e/policy.toml: /l/** has a local 10/1m limit, /g/** the same rate global.

import http from "node:http";
import https from "node:https";

import { request, startEdge, startOrigin } from "../../tests/e2e/harness.mjs";

const N = Number(process.env.N ?? 600);
const origin = await startOrigin("blue");
const edge = await startEdge({ main: "build/edge-test/index.mjs", vars: { EDGE_ORIGINS: `*=${origin.url}`, EDGE_CANARY_PERCENT: "0" } });

function ip(i) {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

async function latencies(path, offset) {
  const out = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    const res = await request(edge.url, "GET", path, { headers: { host: "app.test", "cf-connecting-ip": ip(offset + i) } });
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  }
  out.sort((a, b) => a - b);
  return { p50: out[Math.floor(N * 0.5)], p99: out[Math.floor(N * 0.99)] };
}

// Interleave rounds so drift affects both alike.
const local = [];
const global = [];
for (let round = 0; round < 3; round++) {
  local.push(await latencies("/l/x", 100_000 * round + 1));
  global.push(await latencies("/g/x", 100_000 * round + 50_000));
}
const med = (xs, k) => xs.map((x) => x[k]).sort((a, b) => a - b)[1];
const agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
async function throughput(seconds) {
  let done = 0;
  let bad = 0;
  let key = 0;
  const until = Date.now() + seconds * 1000;
  async function worker() {
    while (Date.now() < until) {
      key = (key + 1) % 10_000;
      await new Promise((resolve) => {
        const req = https.request(`${edge.url}/g/x`, { agent, headers: { host: "app.test", "cf-connecting-ip": ip(700_000 + key) } }, (res) => {
          res.resume();
          res.on("end", () => {
            done++;
            if (res.statusCode !== 200 && res.statusCode !== 429) bad++;
            resolve();
          });
        });
        req.on("error", () => {
          bad++;
          resolve();
        });
        req.end();
      });
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  return { rps: done / seconds, bad };
}
const tp = await throughput(10);
console.log(JSON.stringify({
  requests_per_round: N,
  local_p50_ms: med(local, "p50").toFixed(2),
  local_p99_ms: med(local, "p99").toFixed(2),
  global_p50_ms: med(global, "p50").toFixed(2),
  global_p99_ms: med(global, "p99").toFixed(2),
  added_p50_ms: (med(global, "p50") - med(local, "p50")).toFixed(2),
  added_p99_ms: (med(global, "p99") - med(local, "p99")).toFixed(2),
  global_rps_10k_keys: tp.rps.toFixed(0),
  non_2xx_429: tp.bad,
}));
await edge.stop();
await origin.stop();
void http;
