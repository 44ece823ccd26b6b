// The cost of a verified session in workerd (docs/benchmarks.md, "Verified sessions").
//
//   make edges && node bench/worker/sessions.mjs [TOKENS=300]
//
// `workerd serve` with build/edge (fixtures/quotekit.toml: /api/admin/** requires a verified
// Supabase session) in front of the demo origin, which also serves the ES256 JWKS and mints the
// tokens. After one warm-up request (the JWKS fetch), each of TOKENS fresh admin tokens is sent
// twice to GET /api/admin/users, one request at a time over one keep-alive connection: the
// first request pays the verification (the engine's ask, WebCrypto's ECDSA P-256 check, the
// second decide), the second finds the token remembered. Both are forwarded to the origin, so
// the difference of the two is the first verification's cost. Prints one JSON line.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKENS = Number(process.argv[2] ?? 300);
const WORKERD = path.join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");

async function freePort() {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

function startOrigin(name) {
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

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(port, pathname, headers = {}) {
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

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

const origin = await startOrigin("blue");
const port = await freePort();
const dir = path.join(ROOT, "build/bench-sessions");
mkdirSync(dir, { recursive: true });
const config = path.join(dir, "sessions.capnp");
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
  bindings = [
    (name = "EDGE_ORIGINS", text = "*=${origin.url}"),
    (name = "EDGE_JWKS_URLS", text = "supabase=${origin.url}/auth/v1/.well-known/jwks.json"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
`,
);

async function mint(sub) {
  const res = await fetch(`${origin.url}/__demo/session?sub=${sub}&role=admin`, { method: "POST" });
  return (await res.json()).token;
}

const workerd = spawn(WORKERD, ["serve", config], { stdio: ["ignore", "ignore", "inherit"] });
try {
  let ready;
  for (let i = 0; i < 500 && !ready; i++) {
    ready = await get(port, "/api/admin/users").catch(() => null);
    if (!ready) await new Promise((r) => setTimeout(r, 20));
  }
  if (!ready || ready.status !== 401) throw new Error(`edge not ready: ${JSON.stringify(ready)}`);
  const warm = await get(port, "/api/admin/users", { authorization: `Bearer ${await mint("warm-up")}` });
  if (warm.status !== 200) throw new Error(`warm-up: ${warm.status} ${warm.body}`);
  const tokens = [];
  for (let i = 0; i < TOKENS; i++) tokens.push(await mint(`admin-${i}`));
  const first = [];
  const again = [];
  for (const token of tokens) {
    const headers = { authorization: `Bearer ${token}` };
    const a = await get(port, "/api/admin/users", headers);
    const b = await get(port, "/api/admin/users", headers);
    if (a.status !== 200 || b.status !== 200) throw new Error(`status ${a.status}/${b.status}: ${a.body}`);
    first.push(a.us);
    again.push(b.us);
  }
  first.sort((x, y) => x - y);
  again.sort((x, y) => x - y);
  const ms = (us) => Math.round(us) / 1000;
  const fetches = (await (await fetch(`${origin.url}/__demo/requests`)).json()).jwks_fetches;
  console.log(
    JSON.stringify({
      tokens: TOKENS,
      first_p50_ms: ms(pct(first, 50)),
      first_p90_ms: ms(pct(first, 90)),
      remembered_p50_ms: ms(pct(again, 50)),
      remembered_p90_ms: ms(pct(again, 90)),
      first_verification_ms: ms(pct(first, 50) - pct(again, 50)),
      jwks_fetches: fetches,
    }),
  );
} finally {
  workerd.kill("SIGTERM");
  origin.child.kill("SIGTERM");
  agent.destroy();
}
