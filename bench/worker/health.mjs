// Latency of the edge's own health answer in workerd (docs/benchmarks.md, "The health endpoint").
//
//   make edges && node bench/worker/health.mjs [REQUESTS=2000]
//
// Starts two demo origins (blue, green: demo/origin.mjs, answering /api/health in QuoteKit's
// roadmap shape) and `workerd serve` with build/edge (fixtures/quotekit.toml: `[health] cache =
// "10s"`), then sends GET /__edge/health one request at a time over one keep-alive connection.
// The first request waits for a round of probes; the timed ones (a few seconds, well within the
// 10 s cache) are answered from it. Prints one JSON line.
import { agent, get as getPath, pct, serveEdge, startOrigin } from "./local.mjs";

const REQUESTS = Number(process.argv[2] ?? 2000);
const get = (port) => getPath(port, "/__edge/health");

const [blue, green] = await Promise.all([startOrigin("blue"), startOrigin("green")]);
const { child: workerd, port } = await serveEdge("health", { EDGE_ORIGINS: `blue=${blue.url},green=${green.url}` });
try {
  let first;
  for (let i = 0; i < 500 && !first; i++) {
    first = await get(port).catch(() => null);
    if (!first) await new Promise((r) => setTimeout(r, 20));
  }
  if (!first || first.status !== 200) throw new Error(`edge not ready: ${JSON.stringify(first)}`);
  const checks = Object.keys(JSON.parse(first.body).checks);
  const cached = [];
  const started = Date.now();
  for (let i = 0; i < REQUESTS; i++) {
    const r = await get(port);
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body}`);
    cached.push(r.us);
  }
  const secs = (Date.now() - started) / 1000;
  if (secs >= 10) throw new Error(`took ${secs} s: past the 10 s probe cache, use fewer requests`);
  cached.sort((a, b) => a - b);
  const ms = (us) => Math.round(us) / 1000;
  console.log(
    JSON.stringify({
      requests: REQUESTS,
      first_ms: ms(first.us),
      p50_ms: ms(pct(cached, 50)),
      p90_ms: ms(pct(cached, 90)),
      p99_ms: ms(pct(cached, 99)),
      max_ms: ms(cached.at(-1)),
      req_per_s: Math.round(REQUESTS / secs),
      checks,
      status: JSON.parse(first.body).status,
    }),
  );
} finally {
  workerd.kill("SIGTERM");
  blue.child.kill("SIGTERM");
  green.child.kill("SIGTERM");
  agent.destroy();
}
