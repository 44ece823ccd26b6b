// What the workerd benchmarks share: a free loopback port, the demo origin, and one request at
// a time over one keep-alive connection, timed.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const WORKERD = path.join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");

export async function freePort() {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** demo/origin.mjs on a free port: { child, url }. */
export function startOrigin(name) {
  const child = spawn(process.execPath, [path.join(ROOT, "demo/origin.mjs"), "--port", "0", "--name", name], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout.on("data", (c) => {
      seen += c;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (m) resolve({ child, url: m[1] });
    });
    child.once("exit", (code) => reject(new Error(`origin ${name} exited with ${code}`)));
  });
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET `pathname` from the edge on `port` as lawnquote.online over https: { status, body, us }. */
export function get(port, pathname, headers = {}) {
  return new Promise((resolve, reject) => {
    const began = process.hrtime.bigint();
    const req = http.request(
      { host: "127.0.0.1", port, path: pathname, agent, headers: { host: "lawnquote.online", "x-forwarded-proto": "https", ...headers } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), us: Number(process.hrtime.bigint() - began) / 1000 }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

/**
 * `workerd serve` with build/edge (the worker `make edges` writes for QuoteKit) on a free
 * loopback port, its text `bindings` ({ name: value }) set; the config goes in build/bench-<name>.
 * Its request log lines go nowhere. Resolves to { child, port }.
 */
export async function serveEdge(name, bindings) {
  const port = await freePort();
  const dir = path.join(ROOT, `build/bench-${name}`);
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, `${name}.capnp`);
  const texts = Object.entries(bindings).map(([k, v]) => `(name = "${k}", text = "${v}")`).join(", ");
  writeFileSync(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "edge", worker = .edge), (name = "loopback", network = (allow = ["public", "private", "local"]))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", service = "edge", http = (forwardedProtoHeader = "x-forwarded-proto"))],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "index.mjs", esModule = embed "../edge/index.mjs"),
    (name = "shell.mjs", esModule = embed "../edge/shell.mjs"),
    (name = "engine.js", esModule = embed "../edge/engine.js"),
    (name = "engine_bg.wasm", wasm = embed "../edge/engine_bg.wasm"),
    (name = "policy.egb", data = embed "../edge/policy.egb"),
  ],
  bindings = [${texts}],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
`,
  );
  const child = spawn(WORKERD, ["serve", config], { stdio: ["ignore", "ignore", "inherit"] });
  return { child, port };
}
