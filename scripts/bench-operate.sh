#!/usr/bin/env bash
# What the fleet statistics cost (docs/benchmarks.md, "Fleet statistics"): QuoteKit's policy
# with its [stats]/[slo.*]/[alerts] (build/edge, the EdgeguardStats object bound, in memory)
# against the same policy without them (build/edge-nostats), the same engine, both served by
# one `workerd serve bench/worker/operate.capnp` in front of nginx, loaded by wrk on loopback in
# interleaved rounds; then node's per-request engine time for both (decide-in-v8.mjs), and the
# flushes the object received.
#
#   scripts/bench-operate.sh            ROUNDS=6 DURATION=8 CONNS=32
#
# A targeted run: scripts/bench-worker.sh measures much more (and takes ~15 min).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-6}"
DURATION="${DURATION:-8}"
CONNS="${CONNS:-32}"
WORKERD=node_modules/@cloudflare/workerd-linux-64/bin/workerd
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

[ "${SKIP_BUILD:-}" = 1 ] || { ./scripts/build-engine.sh >&2; cargo build -q -p edgeguard-cli; }
target/debug/edgeguard build fixtures/quotekit.toml -o build/edge > /dev/null 2>&1
# The same policy without the operate tables (each runs from its header to the next table).
awk '/^\[/ { skip = ($0 ~ /^\[(stats|alerts)\]$/ || $0 ~ /^\[slo\./) } !skip' fixtures/quotekit.toml > "$tmp/quotekit-nostats.toml"
target/debug/edgeguard build "$tmp/quotekit-nostats.toml" -o build/edge-nostats > /dev/null 2>&1

mkdir -p "$tmp/nginx/tmp"
"$NGINX" -p "$tmp/nginx/" -c "$PWD/bench/worker/nginx.conf" 2>"$tmp/nginx.log" &
pids+=($!)
"$WORKERD" serve bench/worker/operate.capnp > "$tmp/workerd.log" 2>&1 &
pids+=($!)
for p in 18480 18791 18792; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done

declare -A PORT=([stats]=18791 [nostats]=18792)
declare -A RPS
began=$(date +%s)
for round in $(seq "$ROUNDS"); do
  order=(stats nostats)
  [ $((round % 2)) = 0 ] && order=(nostats stats)
  for v in "${order[@]}"; do
    rps=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s -s bench/worker/clients.lua "http://127.0.0.1:${PORT[$v]}/" | grep '^EG ' | sed 's/.*rps=\([0-9.]*\).*/\1/')
    RPS[$v]="${RPS[$v]:-} $rps"
    echo "round $round $v $rps req/s" >&2
  done
done
elapsed=$(( $(date +%s) - began ))
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
with=$(echo "${RPS[stats]}" | median)
without=$(echo "${RPS[nostats]}" | median)
fleet=$(curl -s -H 'host: lawnquote.online' -H 'x-forwarded-proto: https' -H 'x-api-key: demo-metrics-key' "http://127.0.0.1:18791/__edge/metrics?scope=fleet")
flushes=$(echo "$fleet" | awk '$1 == "edgeguard_fleet_flushes_total" {print $2}')
requests=$(echo "$fleet" | awk '/^edgeguard_fleet_requests_total/ {s += $2} END {print s}')
echo "with stats: $with req/s (rounds:${RPS[stats]}); without: $without req/s (rounds:${RPS[nostats]})"
awk -v a="$with" -v b="$without" 'BEGIN {printf "throughput cost: %.1f %%\n", (1 - a / b) * 100}'
echo "fleet object: $flushes flushes for $requests requests in ${elapsed} s of load (one workerd isolate)"
echo "engine time in node (decide-in-v8.mjs), with then without:"
node bench/worker/decide-in-v8.mjs build/edge
node bench/worker/decide-in-v8.mjs build/edge-nostats
