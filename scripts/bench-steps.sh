#!/usr/bin/env bash
# Where a request's CPU goes in workerd, step by step (docs/benchmarks.md, "One typed boundary"):
# bench/worker/headers-only.mjs plus one or more steps of edgeguard's request path at a time
# (bench/worker/steps.mjs: flatten, decide, finish, twice, codec, log, request-in-place,
# response-in-place), each its own workerd pinned to CPU 0, in front of the benchmark's nginx,
# loaded by wrk on CPU 1 with bench/worker/clients.lua; interleaved rounds; prints workerd's
# CPU per request per variant (median over rounds) and its difference to the plain worker.
#
#   scripts/bench-steps.sh [STEPS...]      e.g. scripts/bench-steps.sh flatten flatten,decide
#
# The engine and policy are build/edge's (`make edges` writes it). Environment: ROUNDS=4
# DURATION=6. Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-4}"
DURATION="${DURATION:-6}"
WORKERD=node_modules/@cloudflare/workerd-linux-64/bin/workerd
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
VARIANTS=("" "$@")
[ $# -gt 0 ] || VARIANTS=("" flatten flatten,decide flatten,decide,finish flatten,decide,finish,twice codec log request-in-place response-in-place)
for f in engine.js engine_bg.wasm policy.egb; do
  [ -f "build/edge/$f" ] || { echo "build/edge/$f is missing: run make edges" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
cp bench/worker/headers-only.mjs bench/worker/steps.mjs bench/worker/quotekit-headers.mjs build/edge/engine.js build/edge/engine_bg.wasm build/edge/policy.egb "$tmp/"
mkdir -p "$tmp/nginx/tmp"
taskset -c 1 "$NGINX" -p "$tmp/nginx/" -c "$PWD/bench/worker/nginx.conf" 2>/dev/null &
pids+=($!)

declare -A PID PORT
port=18790
for i in "${!VARIANTS[@]}"; do
  cat > "$tmp/v$i.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "w", worker = .w), (name = "loopback", network = (allow = ["public", "private", "local"])) ],
  sockets = [ (name = "http", address = "127.0.0.1:$port", service = "w", http = (forwardedProtoHeader = "x-forwarded-proto")) ],
);
const w :Workerd.Worker = (
  modules = [
    (name = "steps.mjs", esModule = embed "steps.mjs"),
    (name = "headers-only.mjs", esModule = embed "headers-only.mjs"),
    (name = "quotekit-headers.mjs", esModule = embed "quotekit-headers.mjs"),
    (name = "engine.js", esModule = embed "engine.js"),
    (name = "engine_bg.wasm", wasm = embed "engine_bg.wasm"),
    (name = "policy.egb", data = embed "policy.egb"),
  ],
  bindings = [ (name = "ORIGIN", text = "http://127.0.0.1:18480"), (name = "STEPS", text = "${VARIANTS[$i]}") ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
CAPNP
  taskset -c 0 "$WORKERD" serve "$tmp/v$i.capnp" > "$tmp/v$i.log" 2>&1 &
  PID[$i]=$!
  PORT[$i]=$port
  pids+=($!)
  port=$((port + 1))
done
sleep 2
H=(-H 'Host: lawnquote.online' -H 'x-forwarded-proto: https')
for i in "${!VARIANTS[@]}"; do
  status=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "http://127.0.0.1:${PORT[$i]}/dashboard")
  [ "$status" = 200 ] || { echo "variant '${VARIANTS[$i]}' answered $status" >&2; cat "$tmp/v$i.log" >&2; exit 1; }
done

# Warm-up: the engine's wasm is compiled (and tiered up) on the first requests; not measured.
for i in "${!VARIANTS[@]}"; do
  taskset -c 1 wrk -t1 -c32 -d3s -s bench/worker/clients.lua "http://127.0.0.1:${PORT[$i]}/" > /dev/null
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
results="$tmp/results"
: > "$results"
for r in $(seq "$ROUNDS"); do
  n=${#VARIANTS[@]}
  for k in $(seq 0 $((n - 1))); do
    i=$(( (k + r - 1) % n ))
    t0=$(ticks "${PID[$i]}")
    line=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -s bench/worker/clients.lua "http://127.0.0.1:${PORT[$i]}/" | grep '^EG ')
    t1=$(ticks "${PID[$i]}")
    reqs=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
    awk -v i="$i" -v t=$((t1 - t0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%s\t%.1f\n", i, t / hz * 1e6 / n}' >> "$results"
  done
done
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
base=$(awk -F'\t' '$1 == 0 {print $2}' "$results" | median)
echo "| steps on top of headers-only | workerd CPU µs/request (median of $ROUNDS) | over headers-only | per round |"
echo "|---|---|---|---|"
for i in "${!VARIANTS[@]}"; do
  m=$(awk -F'\t' -v i="$i" '$1 == i {print $2}' "$results" | median)
  rounds=$(awk -F'\t' -v i="$i" '$1 == i {printf "%s%s", sep, $2; sep=", "}' "$results")
  echo "| ${VARIANTS[$i]:-(none)} | $m | $(awk -v a="$m" -v b="$base" 'BEGIN {printf "%+.1f", a - b}') | $rounds |"
done
