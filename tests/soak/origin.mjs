// Soak origin: answers 200 fast, and misbehaves on command. Control (a second port):
//   POST /mode/normal | /mode/500 | /mode/hang | /mode/reset
// Prints "listening <port> <control port>" when ready.
import http from "node:http";

const port = Number(process.argv[2] ?? 0);
const controlPort = Number(process.argv[3] ?? 0);
let mode = "normal";
const hung = new Set();

const server = http.createServer((req, res) => {
  req.resume();
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
