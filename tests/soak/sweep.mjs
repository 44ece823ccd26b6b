// The soak's address sweep: wrk (C + LuaJIT, tests/soak/sweep.lua) drives `workerd serve` as
// fast as this machine lets it (closed loop), every request from a new client address out of a
// pool of 1 000 000, walked in order, in back-to-back wrk runs ("slices") so latency is known per
// slice. Run by soak.mjs (`make soak`) before the origin-fault phase.
//
//   SOAK_SWEEP=until-1M   run slices until every address of the pool was sent once (default)
//   SOAK_SWEEP=60         run 60 s of slices and report how many addresses that reached
//   SOAK_SWEEP=0          skip the sweep
//   SOAK_SLICE=10 (s per wrk run)  SOAK_WRK_THREADS=2  SOAK_WRK_CONNS=64  SOAK_HOT_EVERY=100
//   SOAK_POOL=1000000  SOAK_SWEEP_MAX=1500 (s: give up on until-1M after this long)
//
// Every second, from the side: the limiter's key count and the engine's wasm memory (GET
// /__soak/limiter, entry.mjs), workerd's RSS and how long its threads waited for a CPU (/proc).
// Per slice: wrk's p50/p99 and statuses, workerd's CPU, the origin's longest event-loop stall and
// its count of distinct forwarded addresses, and the CPU share of the machine used by anything
// else (other sessions' builds: the load this was measured under). Everything is saved in
// build/soak/sweep-<time>.json; one JSON summary line goes to stdout.
//
// Asserts: the key count never above the cap; workerd's RSS under 1 GiB and, in a run of 180 s
// or more, at the end within 1.25× (+16 MB) of RSS at 25 % of the run, the engine's wasm memory
// not grown after 25 %; every answer the origin's 200 or, for the hot client only, the `api`
// limit's 429; no socket error; p99 of the last slice within 3× (+2 ms) of the first slice
// after SOAK_WARMUP=30 s (workerd's p99 rises from ~60 to ~150 ms over the first 20–30 s while
// its RSS climbs to its plateau; the first slice's p99 is reported too); until-1M: all
// 1 000 000 addresses sent.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ROOT, freePort } from "../e2e/harness.mjs";
import {
  MAX_KEYS,
  getJson,
  limiterProbe,
  machineTicks,
  percentile,
  procTicks,
  rssMb,
  runqueueWaitNs,
  selfAndReapedTicks,
  startOrigin,
  startWorkerd,
} from "./procs.mjs";

const RSS_TREND_MIN_S = 180;
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

export function sweepConfig(env = process.env) {
  const mode = (env.SOAK_SWEEP ?? "until-1M").trim();
  const untilAll = /^until/i.test(mode);
  const seconds = untilAll ? null : Number(mode);
  assert.ok(untilAll || Number.isFinite(seconds), `SOAK_SWEEP=${mode}: until-1M or a number of seconds`);
  return {
    mode,
    untilAll,
    seconds,
    enabled: untilAll || seconds > 0,
    slice: Number(env.SOAK_SLICE ?? 10),
    threads: Number(env.SOAK_WRK_THREADS ?? 2),
    conns: Number(env.SOAK_WRK_CONNS ?? 64),
    hotEvery: Number(env.SOAK_HOT_EVERY ?? 100),
    pool: Number(env.SOAK_POOL ?? 1_000_000),
    maxSeconds: Number(env.SOAK_SWEEP_MAX ?? 1500),
    warmup: Number(env.SOAK_WARMUP ?? 30),
  };
}

function parseLine(line) {
  const out = {};
  for (const [, k, v] of line.matchAll(/(\w+)=(\S+)/g)) out[k] = /^-?[\d.]+$/.test(v) ? Number(v) : v;
  return out;
}

async function runWrk(cfg, port, seconds, cursors) {
  const args = ["-t", String(cfg.threads), "-c", String(cfg.conns), "-d", `${seconds}s`, "--timeout", "10s"];
  args.push("-s", path.join(ROOT, "tests/soak/sweep.lua"), `http://127.0.0.1:${port}/`);
  const child = spawn("wrk", args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      SOAK_POOL: String(cfg.pool),
      SOAK_THREADS: String(cfg.threads),
      SOAK_CURSORS: cursors.join(","),
      SOAK_HOT_EVERY: String(cfg.hotEvery),
    },
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (err += c));
  const [code] = await once(child, "close"); // reaped: its CPU is in this process's cutime now
  const line = out.split("\n").find((l) => l.startsWith("EGSWEEP "));
  if (code !== 0 || !line) throw new Error(`wrk exited ${code}:\n${out}\n${err}`);
  return parseLine(line);
}

function builtFrom() {
  try {
    const git = (...a) => execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = git("status", "--porcelain", "--", "crates", "tests/soak/policy.toml") !== "";
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? " + uncommitted changes under crates/ (working tree)" : ""}`;
  } catch {
    return "?";
  }
}

const round = (x, d = 1) => (x === null || x === undefined ? null : +x.toFixed(d));

export async function sweep(cfg = sweepConfig()) {
  const [edgePort, originPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  const origin = await startOrigin(originPort, controlPort);
  const workerd = await startWorkerd(edgePort, originPort);
  const wpid = workerd.child.pid;
  const opid = origin.child.pid;
  const sizes = Array.from({ length: cfg.threads }, (_, i) =>
    Math.floor((cfg.pool * (i + 1)) / cfg.threads) - Math.floor((cfg.pool * i) / cfg.threads),
  );
  const distinctOf = (cursors) => cursors.reduce((s, c, i) => s + Math.min(c, sizes[i]), 0);

  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const probe0 = await limiterProbe(edgePort);
  const samples = [{ t: 0, keys: probe0.keys, wasm: probe0.wasmMb, rss: rssMb(wpid), slice: -1, cpu_wait_ms: 0 }];
  let slice = -1;
  let running = true;
  let wait0 = runqueueWaitNs(wpid);
  const sampler = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 1000));
      const wait = runqueueWaitNs(wpid);
      // workerd's threads' time waiting for a CPU in this second: how starved the edge was
      const cpuWaitMs = wait === null || wait0 === null ? null : Math.round((wait - wait0) / 1e6);
      wait0 = wait;
      const rss = rssMb(wpid);
      const p = await limiterProbe(edgePort);
      samples.push({ t: now(), keys: p.keys, wasm: p.wasmMb, rss, slice, cpu_wait_ms: cpuWaitMs });
    }
  })();
  await getJson(origin.control, "/stats"); // resets the origin's stall gauge

  const slices = [];
  let cursors = sizes.map(() => 0);
  let distinctAt60 = null;
  try {
    for (let i = 0; ; i++) {
      const loadSoFar = slices.reduce((s, x) => s + x.seconds, 0);
      if (cfg.untilAll ? distinctOf(cursors) >= cfg.pool : loadSoFar >= cfg.seconds) break;
      if (cfg.untilAll && now() > cfg.maxSeconds) throw new Error(`until-1M: only ${distinctOf(cursors)} addresses after ${cfg.maxSeconds} s`);
      const secs = cfg.untilAll ? cfg.slice : Math.min(cfg.slice, cfg.seconds - loadSoFar);
      slice = i;
      const m0 = machineTicks();
      const w0 = procTicks(wpid);
      const o0 = procTicks(opid);
      const s0 = selfAndReapedTicks();
      const from = now();
      const r = await runWrk(cfg, edgePort, secs, cursors);
      const wall = now() - from;
      const originStats = await getJson(origin.control, "/stats");
      const m1 = machineTicks();
      const dw = procTicks(wpid) - w0;
      const dor = procTicks(opid) - o0;
      const ds = selfAndReapedTicks() - s0;
      const all = m1.busy + m1.idle - m0.busy - m0.idle;
      cursors = String(r.cursors).split(",").map(Number);
      const x = {
        slice: i,
        from: round(from, 2),
        seconds: secs,
        requests: r.requests,
        rps: Math.round(r.rps),
        p50_ms: round(r.p50_us / 1000, 2),
        p99_ms: round(r.p99_us / 1000, 2),
        max_ms: round(r.max_us / 1000, 1),
        addresses_sent: r.addresses_sent,
        distinct_so_far: distinctOf(cursors),
        ok: r.ok,
        hot_sent: r.hot_sent,
        hot_429: r.hot_429,
        not_from_origin: r.not_from_origin,
        other: r.other,
        socket_errors: r.connect_err + r.read_err + r.write_err + r.timeouts,
        workerd_core_pct: Math.round((100 * dw) / (wall * CLK_TCK)),
        origin_core_pct: Math.round((100 * dor) / (wall * CLK_TCK)),
        wrk_and_driver_core_pct: Math.round((100 * ds) / (wall * CLK_TCK)),
        others_pct: Math.max(0, Math.round((100 * (m1.busy - m0.busy - dw - dor - ds)) / all)),
        steal_pct: Math.round((100 * (m1.steal - m0.steal)) / (all + m1.steal - m0.steal)),
        origin_stall_max_ms: originStats.loop_delay_max_ms ?? null,
        origin_distinct: originStats.distinct_10_8 ?? null,
        workerd_cpu_wait_max_ms_per_s: Math.max(0, ...samples.filter((s) => s.slice === i && s.cpu_wait_ms !== null).map((s) => s.cpu_wait_ms)),
      };
      slices.push(x);
      if (distinctAt60 === null && loadSoFar + secs >= 60) distinctAt60 = { load_seconds: loadSoFar + secs, distinct: x.distinct_so_far };
      process.stderr.write(
        `sweep slice ${i}: ${x.rps} req/s, p50 ${x.p50_ms} ms, p99 ${x.p99_ms} ms, ${x.distinct_so_far} distinct, ` +
          `keys ${samples.at(-1)?.keys}, RSS ${round(samples.at(-1)?.rss)} MB, workerd ${x.workerd_core_pct} % of a core, other load ${x.others_pct} %` +
          `${x.other === "-" ? "" : `, other statuses ${x.other} (origin stalled up to ${x.origin_stall_max_ms} ms; workerd waited up to ${x.workerd_cpu_wait_max_ms_per_s} ms/s for a CPU)`}\n`,
      );
    }
  } finally {
    running = false;
    await sampler;
    workerd.child.kill("SIGTERM");
    origin.child.kill("SIGTERM");
    await Promise.all([once(workerd.child, "close"), once(origin.child, "close")]);
  }

  // ── summary ──
  const loadSeconds = slices.reduce((s, x) => s + x.seconds, 0);
  const requests = slices.reduce((s, x) => s + x.requests, 0);
  const sum = (k) => slices.reduce((s, x) => s + x[k], 0);
  const other = {};
  for (const x of slices) {
    if (x.other === "-") continue;
    for (const part of String(x.other).split(";")) {
      const [code, n] = part.split(":").map(Number);
      other[code] = (other[code] ?? 0) + n;
    }
  }
  const keys = samples.map((s) => s.keys).filter((k) => k !== null);
  const during = samples.filter((s) => s.slice >= 0 && s.rss !== null);
  const end = samples.at(-1).t;
  const at = (f) => during.reduce((best, s) => (Math.abs(s.t - f * end) < Math.abs(best.t - f * end) ? s : best), during[0]);
  // The table filled up when a sample first shows fewer keys than the one before: a full table
  // drops its recovered keys (the `pages` limit recovers a new address after 0.5 s).
  const capped = samples.find((s, i) => i > 1 && s.keys !== null && samples[i - 1].keys !== null && s.keys < samples[i - 1].keys);
  const tail = during.filter((s) => s.t >= 0.25 * end);
  const slope = (() => {
    // least squares RSS(t) over the last 75 % of the run, MB per minute
    const n = tail.length;
    if (n < 3) return null;
    const mt = tail.reduce((a, s) => a + s.t, 0) / n;
    const mr = tail.reduce((a, s) => a + s.rss, 0) / n;
    const cov = tail.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0);
    const vt = tail.reduce((a, s) => a + (s.t - mt) ** 2, 0);
    return (cov / vt) * 60;
  })();
  const others = slices.map((x) => x.others_pct).sort((a, b) => a - b);
  const [first, last] = [slices[0], slices.at(-1)];
  // the first slice that starts after the warm-up, if the run has one before its last slice
  let warmIdx = slices.findIndex((x, i) => slices.slice(0, i).reduce((a, y) => a + y.seconds, 0) >= cfg.warmup);
  if (warmIdx < 0 || warmIdx >= slices.length - 1) warmIdx = 0;
  const warm = slices[warmIdx];
  const summary = {
    phase: "sweep",
    mode: cfg.mode,
    wrk: `wrk -t${cfg.threads} -c${cfg.conns}, ${cfg.slice} s slices, closed loop`,
    load_seconds: loadSeconds,
    wall_seconds: round(end, 1),
    slices: slices.length,
    requests,
    rps: Math.round(requests / loadSeconds),
    address_pool: cfg.pool,
    distinct_addresses_sent: distinctOf(cursors),
    distinct_after_60s: distinctAt60,
    // counted by the origin from the X-Real-IP the edge forwarded; requests still in flight when a
    // wrk run stops may never be forwarded, so up to connections × slices fewer
    distinct_addresses_at_origin: last.origin_distinct,
    repeat_sends_after_pool_done: sum("addresses_sent") - distinctOf(cursors),
    hot_client: cfg.hotEvery > 0 ? { address: "192.0.2.1", sent: sum("hot_sent"), refused_429: sum("hot_429") } : null,
    statuses: { "200_from_origin": sum("ok"), "429_hot_client": sum("hot_429"), "200_not_from_origin": sum("not_from_origin"), other },
    socket_errors: sum("socket_errors"),
    limiter: { cap: MAX_KEYS, max_sampled: Math.max(...keys), samples: keys.length, missed_samples: samples.length - keys.length, at_end: keys.at(-1) },
    workerd_rss_mb: {
      start: round(samples[0].rss),
      cap_reached: capped ? { t: round(capped.t), mb: round(capped.rss) } : null,
      at_25pct: round(at(0.25).rss),
      at_50pct: round(at(0.5).rss),
      end: round(at(1).rss),
      max: round(Math.max(...during.map((s) => s.rss))),
      slope_after_25pct_mb_per_min: round(slope, 2),
    },
    wasm_memory_mb: {
      start: round(samples[0].wasm, 2),
      cap_reached: capped ? round(capped.wasm, 2) : null,
      at_25pct: round(at(0.25).wasm, 2),
      end: round(at(1).wasm, 2),
    },
    latency: {
      first: { p50_ms: first.p50_ms, p99_ms: first.p99_ms, rps: first.rps },
      after_warmup: { slice: warmIdx, p50_ms: warm.p50_ms, p99_ms: warm.p99_ms, rps: warm.rps },
      last: { p50_ms: last.p50_ms, p99_ms: last.p99_ms, rps: last.rps },
      p99_ms_all_slices: { min: Math.min(...slices.map((x) => x.p99_ms)), median: percentile(slices.map((x) => x.p99_ms).sort((a, b) => a - b), 50), max: Math.max(...slices.map((x) => x.p99_ms)) },
    },
    workerd_core_pct_median: percentile(slices.map((x) => x.workerd_core_pct).sort((a, b) => a - b), 50),
    other_load_pct: { median: percentile(others, 50), max: others.at(-1) },
    steal_pct_max: Math.max(...slices.map((x) => x.steal_pct)),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}`,
    worker_built_from: builtFrom(),
    wrk_version: (() => {
      try {
        return execFileSync("wrk", ["-v"], { encoding: "utf8" }).split("\n")[0];
      } catch (err) {
        return String(err.stdout ?? "").split("\n")[0] || "?"; // wrk -v exits 1
      }
    })(),
    stalls: {
      origin_event_loop_max_ms: Math.max(...slices.map((x) => x.origin_stall_max_ms ?? 0)),
      workerd_cpu_wait_max_ms_per_s: Math.max(...slices.map((x) => x.workerd_cpu_wait_max_ms_per_s)),
    },
    per_slice: slices.map((x) => [x.slice, x.rps, x.p50_ms, x.p99_ms, x.max_ms, x.distinct_so_far, x.workerd_core_pct, x.others_pct, x.origin_stall_max_ms, x.workerd_cpu_wait_max_ms_per_s, x.other]),
    per_slice_columns: ["slice", "rps", "p50_ms", "p99_ms", "max_ms", "distinct_so_far", "workerd_core_pct", "others_pct", "origin_stall_max_ms", "workerd_cpu_wait_max_ms_per_s", "other_statuses"],
    per_10s: samples.filter((_, i) => i % 10 === 0).map((s) => [Math.round(s.t), s.keys, round(s.rss, 0), round(s.wasm, 2)]),
    per_10s_columns: ["t", "limiter_keys", "workerd_rss_mb", "wasm_memory_mb"],
  };
  const dir = path.join(ROOT, "build/soak");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `sweep-${new Date().toISOString().replace(/[:.]/g, "")}.json`);
  fs.writeFileSync(file, JSON.stringify({ summary, slices, samples }, null, 1));
  console.log(JSON.stringify(summary));
  process.stderr.write(`sweep: saved ${path.relative(ROOT, file)}\n`);

  // ── checks ──
  assert.ok(keys.length > 0, "no limiter sample");
  assert.ok(summary.limiter.max_sampled <= MAX_KEYS, `limiter held ${summary.limiter.max_sampled} keys, cap ${MAX_KEYS}`);
  const rss = summary.workerd_rss_mb;
  assert.ok(rss.max < 1024, `workerd RSS ${rss.max} MB`);
  // workerd's RSS keeps growing for a while after the table first fills (about 40 s here, V8
  // settling); a run shorter than RSS_TREND_MIN_S cannot tell that from a leak, so only the
  // absolute bound applies to it.
  if (loadSeconds >= RSS_TREND_MIN_S) {
    assert.ok(rss.end <= rss.at_25pct * 1.25 + 16, `workerd RSS grew from ${rss.at_25pct} MB at 25 % of the run to ${rss.end} MB at its end`);
    const wasm = summary.wasm_memory_mb;
    assert.ok(wasm.end <= wasm.at_25pct + 1, `the engine's wasm memory grew from ${wasm.at_25pct} MB at 25 % of the run to ${wasm.end} MB`);
  }
  assert.equal(summary.statuses["200_not_from_origin"], 0, "200s that did not come from the origin");
  const where = slices.filter((x) => x.other !== "-").map((x) => `slice ${x.slice}: ${x.other}, max latency ${x.max_ms} ms, origin stalled up to ${x.origin_stall_max_ms} ms, workerd waited up to ${x.workerd_cpu_wait_max_ms_per_s} ms/s for a CPU, other load ${x.others_pct} %`);
  assert.deepEqual(other, {}, `statuses the policy did not ask for: ${JSON.stringify(other)} (${where.join("; ")})`);
  assert.equal(summary.socket_errors, 0, "socket errors");
  if (cfg.hotEvery > 0) assert.ok(summary.hot_client.refused_429 > 0, "the hot client was never limited");
  assert.ok(last.p99_ms <= warm.p99_ms * 3 + 2, `p99 drifted: ${warm.p99_ms} ms (slice ${warmIdx}) → ${last.p99_ms} ms (last slice)`);
  if (cfg.untilAll) assert.equal(summary.distinct_addresses_sent, cfg.pool, "not every address of the pool was sent");
  const atOrigin = summary.distinct_addresses_at_origin;
  const sent = summary.distinct_addresses_sent;
  assert.ok(
    atOrigin <= sent && atOrigin >= sent - cfg.conns * slices.length,
    `the origin saw ${atOrigin} distinct addresses, wrk sent ${sent} (in flight at slice ends: at most ${cfg.conns * slices.length})`,
  );
  return summary;
}
