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
import { agent, get, pct, serveEdge, startOrigin } from "./local.mjs";

const TOKENS = Number(process.argv[2] ?? 300);

const origin = await startOrigin("blue");
const { child: workerd, port } = await serveEdge("sessions", { EDGE_ORIGINS: `*=${origin.url}`, EDGE_JWKS_URLS: `supabase=${origin.url}/auth/v1/.well-known/jwks.json` });

async function mint(sub) {
  const res = await fetch(`${origin.url}/__demo/session?sub=${sub}&role=admin`, { method: "POST" });
  return (await res.json()).token;
}

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
