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
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { ROOT, WORKERD, agent, freePort, get, pct, startOrigin } from "./local.mjs";

const TOKENS = Number(process.argv[2] ?? 300);

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
