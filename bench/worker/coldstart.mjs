// Cold start: time from spawning `workerd serve CONFIG` to the first answered request.
//
//   node bench/worker/coldstart.mjs WORKERD RUNS NAME=CONFIG@PORT [NAME=CONFIG@PORT …]
//
// PORT overrides the config's `http` socket (--socket-addr), so the variants' benchmark
// servers may keep running. Runs are interleaved across the variants (run 1 of each, then run 2 of each, …). Each run
// spawns a fresh workerd, sends the benchmark request (GET /dashboard as
// lawnquote.online over "https") every 2 ms until one is answered with 200, records the
// elapsed time, then stops workerd and waits for it to exit. Prints one JSON line per variant:
// {"variant":NAME,"runs_ms":[…],"median_ms":…,"min_ms":…,"max_ms":…}.
import { spawn } from "node:child_process";
import http from "node:http";

const [workerd, runsArg, ...specs] = process.argv.slice(2);
const runs = Number(runsArg ?? 10);
const variants = specs.map((spec) => {
  const [, name, config, port] = /^([^=]+)=(.+)@(\d+)$/.exec(spec) ?? [];
  if (!port) throw new Error(`expected NAME=CONFIG@PORT, got ${spec}`);
  return { name, config, port, times: [] };
});

function attempt(port) {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/dashboard",
        agent: false,
        headers: { host: "lawnquote.online", "x-forwarded-proto": "https", "cf-connecting-ip": "10.255.0.1" },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      },
    );
    req.on("error", () => resolve(null));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function once({ config, port }) {
  const began = process.hrtime.bigint();
  const child = spawn(workerd, ["serve", config, "--socket-addr", `http=127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "inherit"] });
  let gone = false;
  const exited = new Promise((r) => child.on("exit", () => { gone = true; r(); }));
  let status = null;
  try {
    for (;;) {
      status = await attempt(port);
      if (status !== null) break;
      if (gone) throw new Error(`workerd serve ${config} exited before answering`);
      if (Number(process.hrtime.bigint() - began) > 30e9) throw new Error("no answer within 30 s");
      await sleep(2);
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
  if (status !== 200) throw new Error(`first answer was ${status}, not 200`);
  return Number(process.hrtime.bigint() - began) / 1e6;
}

for (let i = 0; i < runs; i += 1) {
  for (const v of variants) {
    v.times.push(await once(v));
    await sleep(200);
  }
}
const round = (x) => Math.round(x * 10) / 10;
for (const v of variants) {
  const sorted = [...v.times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  console.log(JSON.stringify({ variant: v.name, runs_ms: v.times.map(round), median_ms: round(median), min_ms: round(sorted[0]), max_ms: round(sorted.at(-1)) }));
}
