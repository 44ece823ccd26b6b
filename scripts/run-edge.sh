#!/usr/bin/env bash
# The main job: the edge (real workerd via wrangler dev) in front of an origin on 127.0.0.1.
#   POLICY=path   policy to enforce (default fixtures/quotekit.toml)
#   ENV=name      environment overlay (default: the policy's app.environment)
#   ORIGIN=url    an origin you already run (default: start the demo QuoteKit origin)
#   PORT=n        edge port (default 8787)
#   PROTOCOL=http plain http (default https, with wrangler's self-signed certificate: curl -k)
#   HOST=name     the Host header the examples use (default: the policy's first app.hosts)
set -euo pipefail
cd "$(dirname "$0")/.."
POLICY="${POLICY:-fixtures/quotekit.toml}"
ENV="${ENV:-}"
PORT="${PORT:-8787}"
PROTOCOL="${PROTOCOL:-https}"
# The one prebuilt engine and this policy's bundle (no Rust build per policy): build/edge,
# wrangler.toml's `main`.
target/debug/edgeguard build "$POLICY" ${ENV:+--env "$ENV"} -o build/edge | head -1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
origin="${ORIGIN:-}"
jwks=""
if [ -z "$origin" ]; then
  log=$(mktemp)
  node demo/origin.mjs --port 0 --name demo > "$log" &
  pids+=($!)
  for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
  origin=$(sed -n 's/.*listening on //p' "$log")
  echo "demo origin (a QuoteKit stand-in) on $origin"
  # It stands in for Supabase Auth too: session sources named `supabase` read its key set.
  jwks="supabase=$origin/auth/v1/.well-known/jwks.json"
fi
# The Host to send: HOST, else the policy's first app.hosts entry.
host="${HOST:-$(sed -n 's/^hosts *= *\[ *"\([^"]*\)".*/\1/p' "$POLICY" | head -1)}"
host="${host:-127.0.0.1}"
cat <<MSG

edgeguard: policy $POLICY${ENV:+ (env $ENV)} in front of $origin
edge on $PROTOCOL://127.0.0.1:$PORT — try (-k: the local certificate is self-signed):
  curl -ski -H 'Host: $host' $PROTOCOL://127.0.0.1:$PORT/                    # forwarded; security headers replaced, X-Powered-By gone
  curl -ski -H 'Host: $host' $PROTOCOL://127.0.0.1:$PORT/__edge/health       # application/health+json
  curl -ski -H 'Host: $host' $PROTOCOL://127.0.0.1:$PORT/api/debug-oauth     # 404 problem+json: blocked in production
  curl -ski -H 'Host: $host' $PROTOCOL://127.0.0.1:$PORT/api/admin/users     # 401: no verified Supabase session
  token=\$(curl -s -X POST '$origin/__demo/session?sub=u-1&role=admin' | sed 's/.*"token":"\([^"]*\)".*/\1/')
  curl -ski -H 'Host: $host' -H "Authorization: Bearer \$token" $PROTOCOL://127.0.0.1:$PORT/api/admin/users   # 200: an admin's session (docs/sessions.md)
  curl -ski -H 'Host: evil.example' $PROTOCOL://127.0.0.1:$PORT/             # 421
  curl -ski -H 'Host: $host' $PROTOCOL://127.0.0.1:$PORT/_next/static/chunks/app.js   # twice: Cache-Status says hit (docs/caching.md)
  origin down: curl / once, stop the demo origin (kill ${pids[0]:-its pid}), then
    curl -ski -H 'Host: $host' -H 'Accept: text/html' $PROTOCOL://127.0.0.1:$PORT/          # the stored page, Cache-Status stale-if-error
    curl -ski -H 'Host: $host' -H 'Accept: text/html' $PROTOCOL://127.0.0.1:$PORT/dashboard # the fallback page, 503
  maintenance: EDGE_MAINTENANCE=1 in wrangler.toml [vars] (or --var EDGE_MAINTENANCE:1) → 503 for all but [maintenance]'s allow-list
  PROTOCOL=http make run, then: curl -si -H 'Host: $host' http://127.0.0.1:$PORT/pricing   # 301 to https
  edgeguard explain $POLICY --request "GET https://$host/api/admin/users"         # the same decision, offline
  strict CSP (docs/strict-csp.md): POLICY=tests/e2e/strict.toml make run, then open in a browser
    https://127.0.0.1:$PORT/strict-demo#%3Cscript%3Ealert(1)%3C/script%3E   # the app's XSS, blocked by the edge's nonces
Ctrl-C stops both.

MSG
WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false node_modules/.bin/wrangler dev --local \
  --ip 127.0.0.1 --port "$PORT" --local-protocol "$PROTOCOL" --var "EDGE_ORIGINS:*=$origin" ${jwks:+--var "EDGE_JWKS_URLS:$jwks"} &
pids+=($!)
wait "${pids[-1]}"
