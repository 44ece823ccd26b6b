// Soak origin: answers 200 fast, and misbehaves on command. Control (a second port):
//   POST /mode/normal | /mode/500 | /mode/hang | /mode/reset
//   GET /stats: {"requests", "distinct_10_8", "loop_delay_max_ms"}: requests so far; distinct
//     client addresses in 10.0.0.0/8 the edge forwarded (its X-Real-IP: an independent count of
//     the sweep's addresses); this process's longest event-loop stall (its own work or waiting
//     for a CPU) since the last GET /stats
// Prints "listening <port> <control port>" when ready.
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";

const port = Number(process.argv[2] ?? 0);
const controlPort = Number(process.argv[3] ?? 0);
let mode = "normal";
const hung = new Set();
const stats = { requests: 0, distinct_10_8: 0 };
const seen = new Uint8Array(1 << 21); // one bit per address of 10.0.0.0/8
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

const server = http.createServer((req, res) => {
  req.resume();
  stats.requests++;
  const ip = req.headers["x-real-ip"];
  if (typeof ip === "string" && ip.startsWith("10.")) {
    const [, b, c, d] = ip.split(".").map(Number);
    const i = (b << 16) | (c << 8) | d;
    if (!(seen[i >> 3] & (1 << (i & 7)))) {
      seen[i >> 3] |= 1 << (i & 7);
      stats.distinct_10_8++;
    }
  }
  if (mode === "reset") return req.socket.destroy();
  if (mode === "hang") {
    hung.add(res);
    res.on("close", () => hung.delete(res));
    return;
  }
  const status = mode === "500" ? 500 : 200;
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "x-soak-origin": "1" });
  res.end(status === 200 ? "<!doctype html><h1>ok</h1>\n" : "<!doctype html><h1>500</h1>\n");
});
server.keepAliveTimeout = 60_000;

const control = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...stats, loop_delay_max_ms: Math.round(loop.max / 1e6) }));
    loop.reset();
    return;
  }
  const m = /^\/mode\/(normal|500|hang|reset)$/.exec(req.url);
  if (req.method !== "POST" || !m) {
    res.writeHead(404).end();
    return;
  }
  mode = m[1];
  if (mode !== "hang") for (const r of hung) r.socket?.destroy();
  res.writeHead(200).end(mode);
});

server.listen(port, "127.0.0.1", () => {
  control.listen(controlPort, "127.0.0.1", () => {
    console.log(`listening ${server.address().port} ${control.address().port}`);
  });
});
