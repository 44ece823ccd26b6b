// Soak and fault test through `workerd serve` (no wrangler proxy), in two phases:
//
//   1. the address sweep (sweep.mjs, wrk + sweep.lua): as fast as the machine goes, every
//      request from a new client address out of 1 000 000 walked in order, until all were sent
//      (SOAK_SWEEP=until-1M, the default) or for SOAK_SWEEP=<seconds>; SOAK_SWEEP=0 skips it;
//   2. origin faults: 60 s of load from a node generator with per-request timing (a new client
//      address per request too), the origin failing mid-load (500s, a hang, resets, a restart).
//
//   make soak                      (installs wrk, builds build/edge-soak from tests/soak/policy.toml)
//   node tests/soak/soak.mjs       (SOAK_SWEEP=until-1M, SOAK_SECONDS=60 SOAK_CONNS=64; SOAK_SECONDS=0
//                                   skips the fault phase; sweep knobs in sweep.mjs)
//
// The sweep's assertions are listed in sweep.mjs. The fault phase asserts:
//   - the limiter's key count (sampled every second through the soak-only entry, entry.mjs)
//     never exceeds the policy's cap, and workerd's RSS stays bounded;
//   - no status the policy or the origin did not ask for: 200 from the origin, 429 only for the
//     one hot client that exceeds its API limit, the origin's own 500 during the 500 phase, and
//     during faults only the documented 502 (origin unreachable or reset) and 504 (timeout);
//   - the edge recovers within a second of the origin: no failure for requests sent later;
//   - p99 latency of the last steady stretch within 3× (+2 ms) of the first.
// Prints one JSON summary line per phase (docs/benchmarks.md, "Soak").

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

import { freePort } from "../e2e/harness.mjs";
import { BUILD, MAX_KEYS, WORKERD, percentile, rssMb, startOrigin, writeConfig } from "./procs.mjs";
import { sweep, sweepConfig } from "./sweep.mjs";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CONNS = Number(process.env.SOAK_CONNS ?? 64);
const DISTINCT = 1_000_000;
const HOT_IP = "192.0.2.1";

// Fault schedule, in seconds from the start (scaled to SOAK_SECONDS).
const at = (s) => (s * SECONDS) / 60;
const FAULTS = [
  { kind: "500", from: at(25), to: at(28), statuses: [500], primary: 500 },
  // requests still hanging when the origin drops them at the end of the phase get 502
  { kind: "hang", from: at(31), to: at(34), statuses: [504, 502], primary: 504 },
  { kind: "reset", from: at(37), to: at(40), statuses: [502], primary: 502 },
  { kind: "restart", from: at(43), to: at(45), statuses: [502], primary: 502 },
];
const STEADY = [
  [at(5), at(25)],
  [at(47), SECONDS],
];

function control(origin, mode) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: origin.control, method: "POST", path: `/mode/${mode}`, agent: false }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end();
  });
}

async function main() {
  assert.ok(fs.existsSync(path.join(BUILD, "shell.mjs")), "build/edge-soak is missing: run `make soak`");
  const sweepCfg = sweepConfig();
  if (sweepCfg.enabled) await sweep(sweepCfg);
  if (SECONDS > 0) await faults();
}

async function faults() {
  const [edgePort, originPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  let origin = await startOrigin(originPort, controlPort);
  // The shell logs one JSON line per request: discard stdout, or a full pipe stalls workerd.
  const workerd = spawn(WORKERD, ["serve", writeConfig(edgePort, originPort)], { stdio: ["ignore", "ignore", "pipe"] });
  let workerdLog = "";
  workerd.stderr.on("data", (c) => (workerdLog = (workerdLog + c).slice(-20_000)));
  for (let i = 0; ; i++) {
    try {
      await get(edgePort, "/ready", "10.255.255.255", 2000);
      break;
    } catch (err) {
      if (i > 100) throw new Error(`workerd did not start: ${err}\n${workerdLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  function get(port, p, ip, timeout = 10_000, useAgent = false) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, path: p, agent: useAgent ? agent : false, headers: { host: "soak.test", "cf-connecting-ip": ip } },
        (res) => {
          const fromOrigin = res.headers["x-soak-origin"] === "1";
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode, fromOrigin }));
        },
      );
      req.setTimeout(timeout, () => req.destroy(new Error("client timeout")));
      req.on("error", reject);
      req.end();
    });
  }

  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const results = []; // [sentAt s, latency ms, status, fromOrigin, hot]
  let next = 0;
  const samples = [];
  let originReadyAt = null;
  let running = true;

  const sampler = (async () => {
    while (running) {
      const r = await new Promise((resolve) => {
        const req = http.get({ host: "127.0.0.1", port: edgePort, path: "/__soak/limiter", agent: false }, (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => {
            try {
              resolve(JSON.parse(body));
            } catch {
              resolve({ error: `${res.statusCode} ${body.slice(0, 200)}` });
            }
          });
        });
        req.setTimeout(5000, () => req.destroy(new Error("timeout")));
        req.on("error", (err) => resolve({ error: String(err) }));
      });
      samples.push({ t: now(), keys: r?.keys ?? null, error: r?.error ?? null, rss: rssMb(workerd.pid) });
      await new Promise((res) => setTimeout(res, 1000));
    }
  })();

  const faults = (async () => {
    for (const f of FAULTS) {
      await new Promise((r) => setTimeout(r, Math.max(0, (f.from - now()) * 1000)));
      f.startedAt = now();
      if (f.kind === "restart") {
        origin.child.kill("SIGKILL");
        await once(origin.child, "exit");
        await new Promise((r) => setTimeout(r, Math.max(0, (f.to - now()) * 1000)));
        origin = await startOrigin(originPort, controlPort);
        originReadyAt = now();
      } else {
        await control(origin, f.kind);
        await new Promise((r) => setTimeout(r, Math.max(0, (f.to - now()) * 1000)));
        await control(origin, "normal");
      }
      f.endedAt = f.kind === "restart" ? originReadyAt : now();
    }
  })();

  async function loop() {
    while (now() < SECONDS) {
      const i = next++;
      const hot = i % 100 === 0;
      const ip = hot ? HOT_IP : `10.${(i % DISTINCT) >> 16 & 255}.${(i % DISTINCT) >> 8 & 255}.${i % DISTINCT & 255}`;
      const p = hot ? "/api/hot" : `/page/${i % 1000}`;
      const sent = now();
      const began = performance.now();
      let status;
      let fromOrigin = false;
      try {
        ({ status, fromOrigin } = await get(edgePort, p, ip, 10_000, true));
      } catch {
        status = 0;
      }
      results.push([sent, performance.now() - began, status, fromOrigin, hot]);
    }
  }
  await Promise.all(Array.from({ length: CONNS }, loop));
  running = false;
  await Promise.all([sampler, faults]);
  workerd.kill("SIGTERM");
  origin.child.kill("SIGTERM");
  agent.destroy();

  // ── checks ──
  const problems = [];
  const statusCounts = {};
  // The most recent fault, from a second before it started (requests still in flight then meet
  // it) to a second after the origin recovered (never past the next one).
  const inFault = (t) => {
    const i = FAULTS.findLastIndex((f) => t >= f.startedAt - 1);
    const f = FAULTS[i];
    const until = Math.min(f ? f.endedAt + 1 : 0, FAULTS[i + 1]?.from ?? Infinity);
    return f && t < until ? f : undefined;
  };
  const recovery = {};
  for (const [sent, , status, fromOrigin, hot] of results) {
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    const fault = inFault(sent);
    const ok = status === 200 && fromOrigin;
    const policy = hot && status === 429;
    if (ok || policy) continue;
    if (fault && fault.statuses.includes(status) && (status !== 500 || fromOrigin)) {
      if (sent >= fault.endedAt) recovery[fault.kind] = Math.max(recovery[fault.kind] ?? 0, sent - fault.endedAt);
      continue;
    }
    if (problems.length < 20) problems.push({ sent: sent.toFixed(3), status, fromOrigin, hot, fault: fault?.kind ?? null });
    problems.total = (problems.total ?? 0) + 1;
  }
  const hotSeen = results.filter((r) => r[4]);
  const steady = STEADY.map(([a, b]) => {
    const lat = results.filter((r) => r[0] >= a && r[0] < b && r[2] === 200).map((r) => r[1]).sort((x, y) => x - y);
    return { from: a, to: b, requests: lat.length, p50_ms: +percentile(lat, 50).toFixed(2), p99_ms: +percentile(lat, 99).toFixed(2), rps: Math.round(lat.length / (b - a)) };
  });
  const keys = samples.map((s) => s.keys).filter((k) => k !== null);
  const rss = samples.map((s) => s.rss).filter((r) => r !== null);
  const summary = {
    seconds: SECONDS,
    connections: CONNS,
    requests: results.length,
    rps: Math.round(results.length / SECONDS),
    distinct_client_ips: Math.min(results.filter((r) => !r[4]).length, DISTINCT) + 1,
    statuses: statusCounts,
    hot_client: { requests: hotSeen.length, refused_429: hotSeen.filter((r) => r[2] === 429).length },
    limiter_keys_max: Math.max(...keys),
    limiter_cap: MAX_KEYS,
    workerd_rss_mb: { max: +Math.max(...rss).toFixed(1), every_10s: samples.filter((_, i) => i % 10 === 0).map((x) => (x.rss === null ? null : Math.round(x.rss))) },
    limiter_keys_every_10s: samples.filter((_, i) => i % 10 === 0).map((x) => x.keys),
    steady,
    recovery_ms: Object.fromEntries(FAULTS.map((f) => [f.kind, Math.round((recovery[f.kind] ?? 0) * 1000)])),
    unexpected: problems.total ?? 0,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}`,
  };
  console.log(JSON.stringify(summary));
  assert.deepEqual(problems, [], `unexpected statuses: ${JSON.stringify(problems)} (${problems.total} in all)`);
  assert.ok(keys.length > 0, "no limiter sample");
  assert.ok(summary.limiter_keys_max <= MAX_KEYS, `limiter held ${summary.limiter_keys_max} keys, cap ${MAX_KEYS}`);
  assert.ok(summary.workerd_rss_mb.max < 1024, `workerd RSS ${summary.workerd_rss_mb.max} MB`);
  for (const f of FAULTS) {
    assert.ok(results.some((r) => r[0] >= f.from && r[0] < f.to && r[2] === f.primary), `the ${f.kind} fault produced no ${f.primary}`);
    assert.ok((recovery[f.kind] ?? 0) < 1, `${f.kind}: failures for ${recovery[f.kind]} s after the origin recovered`);
  }
  assert.ok(summary.hot_client.refused_429 > 0, "the hot client was never limited");
  const [first, last] = steady;
  assert.ok(last.p99_ms <= first.p99_ms * 3 + 2, `p99 drifted: ${first.p99_ms} ms → ${last.p99_ms} ms`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
