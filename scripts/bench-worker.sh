#!/usr/bin/env bash
# The worker benchmark (docs/benchmarks.md, "The worker in workerd"): edgeguard vs an
# idiomatic-JS QuoteKit policy worker, a lean hand-written one (bench/worker/lean.mjs: the
# core policy only, no request id, log line or RateLimit headers) and a JS pass-through (and a
# headers-only diagnostic worker), each run by `workerd serve`
# directly (no wrangler proxy) in front of nginx on 127.0.0.1, loaded by wrk on loopback.
#
#   scripts/bench-worker.sh
#
# One run does everything, in this order:
#   build     the worker for fixtures/quotekit.toml less its stale page copy (the engine, then `edgeguard build`) into a
#             temp dir; with BEFORE_REV, also that commit's worker as variant edgeguard-before
#             (built its own way: before the runtime bundle, the policy was compiled into the wasm)
#   bundle    `wrangler deploy --dry-run`: Total Upload / gzip
#   wait      until no CI job (.ci/run) or cargo runs, at most WAIT_CI seconds
#   servers   nginx (bench/worker/nginx.conf), then one workerd per variant
#             (bench/worker/{passthrough,headers-only,baseline,edgeguard}.capnp; headers-only
#             is a diagnostic: the pass-through plus the policy workers' header work;
#             edgeguard-nolog is edgeguard built with `[observe] log = "off"` appended to the
#             policy, i.e. without the per-request log line the JS baseline does not write;
#             baseline-log is the baseline writing the same JSON line per request with
#             console.log, the LOG binding)
#   check     every variant answers GET /dashboard with the origin's page (200); edgeguard,
#             the baseline and headers-only send the same headers; a status-counting warm-up run per
#             variant must see only 200s
#   max rate  ROUNDS interleaved rounds (variant order rotated) of DURATION s closed-loop wrk
#   latency   ROUNDS interleaved rounds at a constant RATE = half the pass-through's median
#             max, then at RATE2 = half the baseline's median max (bench/worker/clients.lua
#             paces wrk's requests on a fixed schedule)
#   cold      COLD_RUNS interleaved cold starts per variant (bench/worker/coldstart.mjs)
#   in V8     the shell's per-request steps in node (bench/worker/decide-in-v8.mjs)
# and prints a summary (also saved in build/bench-worker/). Everything listens on 127.0.0.1
# only and is stopped on exit.
#
# Environment: ROUNDS=3 DURATION=10 CONNS=32 LAT_CONNS=64 COLD_RUNS=10 WAIT_CI=600
#   PIN=1 (workerd on CPU 0; nginx and wrk on CPU 1 — see docs/benchmarks.md)
#   REV=<commit> (build the worker from a clean export of that commit, not the working tree)
#   BEFORE_REV=<commit> (add variant edgeguard-before: that commit's worker, built by its own
#     scripts/build-worker.sh, served with its own bench/worker/edgeguard.capnp; the same runs)
#   SKIP_BUILD=1 (use build/edge as it is)
#   RATE=n (fixed rate for the latency rounds instead of half the pass-through's max)
#   RATE2=n (the second latency rate instead of half the baseline's max)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-32}"
LAT_CONNS="${LAT_CONNS:-64}"
COLD_RUNS="${COLD_RUNS:-10}"
WAIT_CI="${WAIT_CI:-600}"
PIN="${PIN:-1}"
ORIGIN_PORT=18480
VARIANTS=(passthrough headers-only baseline baseline-log edgeguard edgeguard-nolog lean)
[ -z "${BEFORE_REV:-}" ] || VARIANTS+=(edgeguard-before)
declare -A PORT=([passthrough]=18781 [baseline]=18782 [edgeguard]=18783 [headers-only]=18784 [edgeguard-nolog]=18785 [baseline-log]=18786 [edgeguard-before]=18787 [lean]=18788)
WORKERD=node_modules/@cloudflare/workerd-linux-64/bin/workerd
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false

say() { printf '\n== %s\n' "$*" >&2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ── tools ────────────────────────────────────────────────────────────────────────────────
need_apt=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v taskset >/dev/null || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$WORKERD" ] || npm ci --no-audit --no-fund

# The benchmarked policy: QuoteKit's, less the stale copy of anonymous pages (`/**`'s
# `cache = { stale_if_error = "1d" }`: none of the JS workers keeps one, and its Cache API
# lookup per page is measured on its own by bench/worker/cache.mjs). Without the line the
# workers do the same work per request.
bench_policy() { sed '/^cache = { stale_if_error = "1d" }$/d' fixtures/quotekit.toml > "$tmp/quotekit-bench.toml"; ! grep -q 'stale_if_error = "1d"' "$tmp/quotekit-bench.toml"; }
# The same without the per-request log line, for the edgeguard-nolog variant.
nolog_policy() { sed 's/^\[observe\]$/[observe]\nlog = "off"/' "$tmp/quotekit-bench.toml" > "$tmp/quotekit-nolog.toml"; grep -q '^log = "off"' "$tmp/quotekit-nolog.toml"; }

# ── build and bundle ─────────────────────────────────────────────────────────────────────
# The worker is written into (or copied to) a private directory: build/edge is shared with
# `make` targets that may rebuild it while the benchmark runs. A source tree builds the engine
# (scripts/build-engine.sh) and its CLI once, then `edgeguard build` per policy.
worker="$tmp/worker"
build_in() { # build_in SRC: the engine and CLI of that tree, then the QuoteKit and nolog workers
  (cd "$1" && ./scripts/build-engine.sh && cargo build -q -p edgeguard-cli) 2>&1 | grep -v '^warning' >&2
  cli="$1/target/debug/edgeguard"
  bench_policy
  "$cli" build "$tmp/quotekit-bench.toml" -o "$worker" 2>/dev/null >&2
  nolog_policy
  "$cli" build "$tmp/quotekit-nolog.toml" -o "$tmp/worker-nolog" 2>/dev/null >&2
}
if [ "${SKIP_BUILD:-}" = 1 ]; then
  built_from="the engine and CLI as found (SKIP_BUILD=1: target/debug/edgeguard)"
  cli=target/debug/edgeguard
  bench_policy
  "$cli" build "$tmp/quotekit-bench.toml" -o "$worker" 2>/dev/null >&2
  nolog_policy
  "$cli" build "$tmp/quotekit-nolog.toml" -o "$tmp/worker-nolog" 2>/dev/null >&2
elif [ -n "${REV:-}" ]; then
  # A clean export of one commit, so edits in progress in this tree don't leak into the
  # measurement; its cargo target dir is kept in build/bench-worker/target between runs.
  say "building the worker from $REV (fixtures/quotekit.toml)"
  mkdir -p "$tmp/src" build/bench-worker/target
  git archive "$REV" | tar -x -C "$tmp/src"
  ln -s "$PWD/build/bench-worker/target" "$tmp/src/target"
  build_in "$tmp/src"
  built_from="$(git rev-parse --short "$REV") (REV=$REV, clean export)"
else
  say "building the worker (fixtures/quotekit.toml)"
  build_in "$PWD"
  built_from="$(git rev-parse --short HEAD)$( [ -z "$(git status --porcelain -- crates fixtures/quotekit.toml)" ] || echo ' + uncommitted changes under crates/ (working tree)' )"
fi
if [ -n "${BEFORE_REV:-}" ]; then
  # The worker as that commit built it (for a before/after in one run), in its own target dir.
  say "building the worker of $BEFORE_REV (variant edgeguard-before)"
  mkdir -p "$tmp/before-src" build/bench-worker/target-before
  git archive "$BEFORE_REV" | tar -x -C "$tmp/before-src"
  ln -s "$PWD/build/bench-worker/target-before" "$tmp/before-src/target"
  (cd "$tmp/before-src" && EDGEGUARD_POLICY=fixtures/quotekit.toml EDGEGUARD_ENV= OUT="$tmp/worker-before" ./scripts/build-worker.sh) 2>&1 | grep -v '^warning' >&2
  mkdir -p "$tmp/conf"
  sed -e 's#embed "\.\./\.\./build/worker/#embed "../worker-before/#' -e "s#127.0.0.1:${PORT[edgeguard]}#127.0.0.1:${PORT[edgeguard-before]}#" \
    <(git show "$BEFORE_REV:bench/worker/edgeguard.capnp") > "$tmp/conf/edgeguard-before.capnp"
  sed 's#^main = .*#main = "worker-before/shell.mjs"#' <(git show "$BEFORE_REV:wrangler.toml") > "$tmp/wrangler-before.toml"
fi
# The workerd configs beside copies of the JS workers, edgeguard's modules taken from that
# directory (capnp embeds paths relative to the config).
mkdir -p "$tmp/conf"
cp bench/worker/*.mjs "$tmp/conf/"
for v in passthrough headers-only baseline edgeguard lean; do
  sed 's#embed "\.\./\.\./build/edge/#embed "../worker/#' "bench/worker/$v.capnp" > "$tmp/conf/$v.capnp"
done
sed -e 's#embed "\.\./\.\./build/edge/#embed "../worker-nolog/#' -e "s#127.0.0.1:${PORT[edgeguard]}#127.0.0.1:${PORT[edgeguard-nolog]}#" \
  bench/worker/edgeguard.capnp > "$tmp/conf/edgeguard-nolog.capnp"
# The baseline writing edgeguard's request line with console.log (the LOG binding).
sed -e "s#127.0.0.1:${PORT[baseline]}#127.0.0.1:${PORT[baseline-log]}#" \
  -e 's#(name = "ORIGIN", text = "http://127.0.0.1:18480"),#&\n    (name = "LOG", text = "1"),#' \
  bench/worker/baseline.capnp > "$tmp/conf/baseline-log.capnp"
grep -q '"LOG"' "$tmp/conf/baseline-log.capnp" || { echo "baseline-log.capnp: no LOG binding" >&2; exit 1; }
say "bundle size (wrangler deploy --dry-run)"
# wrangler.toml with `main` pointing at the private build (the same as
# `wrangler deploy --dry-run --outdir build/dist` after `make edges`): engine + policy.egb.
sed 's#^main = .*#main = "worker/index.mjs"#' wrangler.toml > "$tmp/wrangler.toml"
bundle_line=$(node_modules/.bin/wrangler deploy --dry-run -c "$tmp/wrangler.toml" --outdir "$tmp/dist" 2>&1 | grep -ao 'Total Upload: .*' | head -1 || true)
echo "$bundle_line" >&2
bundle_gzip=$(sed -n 's/.*gzip: \([0-9.]*\) KiB.*/\1/p' <<<"$bundle_line")
if [ -n "${BEFORE_REV:-}" ]; then
  before_line=$(node_modules/.bin/wrangler deploy --dry-run -c "$tmp/wrangler-before.toml" --outdir "$tmp/dist-before" 2>&1 | grep -ao 'Total Upload: .*' | head -1 || true)
  echo "edgeguard-before: $before_line" >&2
fi
# A shadow candidate for the V8 step: QuoteKit with one more blocked route.
awk 'done == 0 && /^\[\[routes\]\]$/ { print "[[routes]]\npath = \"/pricing/legacy\"\nblock = 404\n"; done = 1 } { print }' fixtures/quotekit.toml > "$tmp/candidate.toml"
"$cli" compile "$tmp/candidate.toml" -o "$tmp/candidate.egb" >/dev/null 2>&1

# ── wait for a quiet machine ─────────────────────────────────────────────────────────────
# Quiet: no CI job or cargo process, and the whole machine under QUIET_PCT % busy over 5 s,
# three samples in a row (other sessions' builds come and go between cargo invocations).
cpu_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6, $9}' /proc/stat; } # busy idle steal
machine_busy_pct() { # over $1 seconds
  local a b
  a=($(cpu_jiffies)); sleep "$1"; b=($(cpu_jiffies))
  awk -v db=$((b[0] - a[0])) -v di=$((b[1] - a[1])) 'BEGIN {printf "%d", 100 * db / (db + di + 1e-9)}'
}
QUIET_PCT="${QUIET_PCT:-10}"
waited=0
calm=0
quiet="yes"
while [ "$calm" -lt 3 ]; do
  if pgrep -f '\.ci/run' >/dev/null || pgrep -f 'cargo ' >/dev/null; then
    calm=0
    pct=100
  else
    pct=$(machine_busy_pct 5)
    waited=$((waited + 5))
    if [ "$pct" -lt "$QUIET_PCT" ]; then calm=$((calm + 1)); continue; fi
    calm=0
  fi
  if [ "$waited" -ge "$WAIT_CI" ]; then
    quiet="no: CI, cargo or other load (${pct} % busy) still there after ${WAIT_CI} s; measured anyway"
    say "$quiet"
    break
  fi
  [ "$waited" = 0 ] && say "waiting for a quiet machine: no CI / cargo, < ${QUIET_PCT} % busy (at most ${WAIT_CI} s)"
  sleep 10
  waited=$((waited + 10))
done
[ "$quiet" = yes ] && say "machine quiet (waited ${waited} s)"

# ── servers ──────────────────────────────────────────────────────────────────────────────

# Command prefixes pinning to a CPU (empty when PIN=0). Plain prefixes, not functions, so
# `$!` of a background server is the server's own pid.
cpu0=()
cpu1=()
if [ "$PIN" = 1 ]; then
  cpu0=(taskset -c 0)
  cpu1=(taskset -c 1)
fi

wait_port() {
  local port=$1 i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$port" >&2
  return 1
}

for p in "$ORIGIN_PORT" "${PORT[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is already in use; stop what listens there" >&2
    exit 1
  fi
done

say "starting nginx on 127.0.0.1:$ORIGIN_PORT and workerd per variant"
mkdir -p "$tmp/nginx/tmp"
"${cpu1[@]}" "$NGINX" -p "$tmp/nginx/" -c "$PWD/bench/worker/nginx.conf" 2>"$tmp/nginx.log" &
pids+=($!)
wait_port "$ORIGIN_PORT"
declare -A WPID
for v in "${VARIANTS[@]}"; do
  "${cpu0[@]}" "$WORKERD" serve "$tmp/conf/$v.capnp" >"$tmp/$v.log" 2>&1 &
  pids+=($!)
  WPID[$v]=$!
done
for v in "${VARIANTS[@]}"; do wait_port "${PORT[$v]}"; done
NGINX_PID=${pids[0]}

# ── checks ───────────────────────────────────────────────────────────────────────────────
say "checks"
# A browser's user agent, as bench/worker/clients.lua sends: without one QuoteKit's bot rules
# count the request under the tighter `scripts` limit.
H=(-H 'Host: lawnquote.online' -H 'x-forwarded-proto: https' -H 'cf-connecting-ip: 10.255.255.1'
   -H 'User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36')
for v in "${VARIANTS[@]}"; do
  out=$(curl -s -D "$tmp/$v.headers" "${H[@]}" "http://127.0.0.1:${PORT[$v]}/dashboard")
  status=$(head -1 "$tmp/$v.headers" | awk '{print $2}')
  if [ "$status" != 200 ] || ! grep -q '<h1>Dashboard</h1>' <<<"$out"; then
    echo "$v: GET /dashboard answered $status, not the origin's page" >&2
    cat "$tmp/$v.headers" "$tmp/$v.log" >&2
    exit 1
  fi
  tr -d '\r' < "$tmp/$v.headers" | sed -n 's/^\([^: ]*\):.*/\L\1/p' | sort > "$tmp/$v.names"
  # name: value, less the values that differ per request or per limiter state
  tr -d '\r' < "$tmp/$v.headers" | sed -n 's/^\([^: ]*\): */\L\1\E: /p' |
    sed -E 's/^(date|x-request-id|server-timing|ratelimit): .*/\1: …/' | sort > "$tmp/$v.values"
  echo "$v: 200 with the origin's page, $(wc -l < "$tmp/$v.names") response headers" >&2
done
for v in headers-only baseline baseline-log edgeguard edgeguard-nolog ${BEFORE_REV:+edgeguard-before}; do
  for h in content-security-policy strict-transport-security x-frame-options ratelimit x-request-id; do
    grep -qx "$h" "$tmp/$v.names" || { echo "$v: no $h header" >&2; exit 1; }
  done
  for h in x-powered-by server; do
    if grep -qx "$h" "$tmp/$v.names"; then echo "$v: $h was not removed" >&2; exit 1; fi
  done
done
for v in headers-only baseline baseline-log edgeguard-nolog ${BEFORE_REV:+edgeguard-before}; do
  if ! diff "$tmp/$v.values" "$tmp/edgeguard.values" >&2; then
    echo "$v and edgeguard answer with different headers" >&2
    exit 1
  fi
done
# The lean worker: edgeguard's headers less what it leaves out (request id, RateLimit fields,
# Server-Timing), with the same values.
grep -Ev '^(x-request-id|ratelimit|ratelimit-policy|server-timing): ' "$tmp/edgeguard.values" > "$tmp/edgeguard-lean.values"
if ! diff "$tmp/lean.values" "$tmp/edgeguard-lean.values" >&2; then
  echo "lean and edgeguard answer with different headers (beyond request id, RateLimit and Server-Timing)" >&2
  exit 1
fi
echo "headers-only, baseline and edgeguard: the same response headers (values too, but for date, request id, timing, ratelimit counts); X-Powered-By and Server removed" >&2

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
CLK_TCK=$(getconf CLK_TCK)
proc_ticks() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; } # utime + stime
children_ticks() { # CPU of this shell's finished children (bash `times`, second line), in ticks
  times | awk -v hz="$CLK_TCK" 'NR == 2 {
    split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }'
}
run_wrk() { # run_wrk variant seconds connections [ENV=…]: prints wrk's EG summary line plus
  #   workerd_cpu_us_per_req  the variant's workerd CPU time per request (robust to other load)
  #   others_pct              CPU share of the whole machine used by anything but workerd,
  #                           nginx and wrk during the run: other load, i.e. noise
  #   steal_pct               CPU the hypervisor gave to other guests
  local v=$1 secs=$2 conns=$3 line w0 n0 m0 w1 n1 m1 kids
  shift 3
  local ours=("${WPID[$v]}" "$NGINX_PID" $(pgrep -P "$NGINX_PID"))
  m0=($(cpu_jiffies)); w0=$(proc_ticks "${WPID[$v]}"); n0=$(proc_ticks "${ours[@]:1}")
  line=$(env "$@" "${cpu1[@]}" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s bench/worker/clients.lua \
    "http://127.0.0.1:${PORT[$v]}/" | grep '^EG ' | sed 's/^EG //')
  m1=($(cpu_jiffies)); w1=$(proc_ticks "${WPID[$v]}"); n1=$(proc_ticks "${ours[@]:1}")
  kids=$(children_ticks)
  awk -v l="$line" -v w=$((w1 - w0)) -v ng=$((n1 - n0)) -v k="$kids" -v busy=$((m1[0] - m0[0])) \
    -v all=$((m1[0] + m1[1] - m0[0] - m0[1])) -v st=$((m1[2] - m0[2])) -v hz="$CLK_TCK" -v n="$(field requests "$line")" \
    'BEGIN {o = busy - w - ng - k; if (o < 0) o = 0;
      printf "%s workerd_cpu_us_per_req=%.1f others_pct=%.0f steal_pct=%.0f\n", l, w / hz * 1e6 / n, 100 * o / all, 100 * st / (all + st)}'
}

say "warm-up with status counts (3 s per variant)"
for v in "${VARIANTS[@]}"; do
  line=$(run_wrk "$v" 3 "$CONNS" EG_STATUS=1)
  statuses=$(field statuses "$line")
  echo "$v: $(field rps "$line") req/s, statuses $statuses" >&2
  if [ "$statuses" != "200:$(field requests "$line");" ]; then
    echo "$v: not every response was 200" >&2
    exit 1
  fi
done

# ── max throughput ───────────────────────────────────────────────────────────────────────
results="$tmp/results.tsv"
: > "$results"
rotate() { # rotate N: VARIANTS rotated left by N
  local n=$(( $1 % ${#VARIANTS[@]} ))
  echo "${VARIANTS[@]:n}" "${VARIANTS[@]:0:n}"
}
say "max throughput: $ROUNDS rounds × ${DURATION} s per variant, wrk -t1 -c$CONNS"
for r in $(seq "$ROUNDS"); do
  for v in $(rotate $((r - 1))); do
    line=$(run_wrk "$v" "$DURATION" "$CONNS")
    printf 'max\t%s\t%s\t%s\n' "$r" "$v" "$line" >> "$results"
    echo "round $r $v: $(field rps "$line") req/s, workerd CPU $(field workerd_cpu_us_per_req "$line") µs/req, non-2xx/3xx $(field non2xx3xx "$line"), errors $(field read_err "$line")/$(field timeouts "$line"), other load $(field others_pct "$line") %" >&2
  done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
stat() { # stat kind variant field: median over rounds
  awk -F'\t' -v k="$1" -v v="$2" '$1==k && $3==v {print $4}' "$results" | while read -r l; do field "$3" "$l"; done | median
}
sum_field() {
  awk -F'\t' -v k="$1" '$1==k {print $4}' "$results" | while read -r l; do field "$2" "$l"; done | awk '{s+=$1} END {print s+0}'
}
declare -A RPS CPU
for v in "${VARIANTS[@]}"; do
  RPS[$v]=$(stat max "$v" rps)
  CPU[$v]=$(stat max "$v" workerd_cpu_us_per_req)
done

# ── latency at a fixed rate ──────────────────────────────────────────────────────────────
latency_rounds() { # latency_rounds kind rate: ROUNDS rotated rounds paced at rate, saved as kind
  local kind=$1 rate=$2 r v line
  for r in $(seq "$ROUNDS"); do
    for v in $(rotate $((r - 1))); do
      line=$(run_wrk "$v" "$DURATION" "$LAT_CONNS" EG_RATE="$rate")
      printf '%s\t%s\t%s\t%s\n' "$kind" "$r" "$v" "$line" >> "$results"
      echo "round $r $v: $(field rps "$line") req/s, p50 $(field p50_us "$line") µs, p99 $(field p99_us "$line") µs, max lag $(field max_lag_ms "$line") ms, other load $(field others_pct "$line") %" >&2
    done
  done
}
RATE="${RATE:-$(awk -v r="${RPS[passthrough]}" 'BEGIN {printf "%d", r / 2}')}"
say "latency at $RATE req/s (half the pass-through's max): $ROUNDS rounds × ${DURATION} s per variant, wrk -t1 -c$LAT_CONNS, paced"
latency_rounds lat "$RATE"
# Half the pass-through's max is about the policy workers' own max on one core, where any
# worker queues; a second rate, half the baseline's max, shows the added latency with the
# policy workers at about half load.
RATE2="${RATE2:-$(awk -v r="${RPS[baseline]}" 'BEGIN {printf "%d", r / 2}')}"
say "latency at $RATE2 req/s (half the baseline's max): $ROUNDS rounds × ${DURATION} s per variant, wrk -t1 -c$LAT_CONNS, paced"
latency_rounds lat2 "$RATE2"

# ── cold start ───────────────────────────────────────────────────────────────────────────
say "cold start: $COLD_RUNS interleaved runs per variant (spawn → first 200)"
specs=()
for v in "${VARIANTS[@]}"; do specs+=("$v=$tmp/conf/$v.capnp@$((PORT[$v] + 10))"); done
cold=$(node bench/worker/coldstart.mjs "$WORKERD" "$COLD_RUNS" "${specs[@]}")
echo "$cold" >&2
declare -A COLD
for v in "${VARIANTS[@]}"; do
  COLD[$v]=$(grep "\"variant\":\"$v\"" <<<"$cold" | sed 's/.*"median_ms":\([0-9.]*\).*/\1/')
done

say "the shell's steps in V8 (node)"
v8=$(node bench/worker/decide-in-v8.mjs "$worker" "$tmp/candidate.egb")
echo "$v8" >&2

# ── summary ──────────────────────────────────────────────────────────────────────────────
declare -A P50 P99 LRPS P50B P99B
for v in "${VARIANTS[@]}"; do
  P50[$v]=$(stat lat "$v" p50_us)
  P99[$v]=$(stat lat "$v" p99_us)
  LRPS[$v]=$(stat lat "$v" rps)
  P50B[$v]=$(stat lat2 "$v" p50_us)
  P99B[$v]=$(stat lat2 "$v" p99_us)
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
us_per_req() { awk -v r="$1" 'BEGIN {printf "%.1f", 1e6 / r}'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.0f", a - b}'; }
per_round() { # per_round kind field a b: "min–max" over rounds of a's field / b's field
  awk -F'\t' -v k="$1" -v f="$2" -v a="$3" -v b="$4" '
    $1 == k { if (match($4, "(^| )" f "=[^ ]*")) { x = substr($4, RSTART, RLENGTH); sub(/.*=/, "", x); val[$2, $3] = x; r[$2] = 1 } }
    END { lo = 1e18; hi = -1e18; for (i in r) { q = val[i, a] / val[i, b]; if (q < lo) lo = q; if (q > hi) hi = q }
          printf "%.2f–%.2f", lo, hi }' "$results"
}
others() { # median and max of the other load over all timed runs
  awk -F'\t' '{ if (match($4, /others_pct=[0-9.]+/)) print substr($4, RSTART + 11, RLENGTH - 11) }' "$results" |
    sort -g | awk '{a[NR] = $1} END {printf "median %s %%, max %s %%", a[int((NR + 1) / 2)], a[NR]}'
}
mkdir -p build/bench-worker
report="build/bench-worker/$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# worker benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(uname -r); workerd $("$WORKERD" --version | awk '{print $2}'); nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)"
  echo "worker: built from $built_from; engine sha256 $(sha256sum "$worker/engine_bg.wasm" | cut -c1-12), $(wc -c < "$worker/engine_bg.wasm") bytes; shell.mjs sha256 $(sha256sum "$worker/shell.mjs" | cut -c1-12); policy.egb $(wc -c < "$worker/policy.egb") bytes"
  [ -z "${BEFORE_REV:-}" ] || echo "edgeguard-before: $(git rev-parse --short "$BEFORE_REV") built by its own scripts/build-worker.sh, policy compiled into the wasm; wasm $(wc -c < "$tmp/worker-before/edgeguard_worker_bg.wasm") bytes; bundle ${before_line:-unknown}"
  echo "quiet machine: $quiet; pinned: $([ "$PIN" = 1 ] && echo 'workerd on CPU 0, nginx and wrk on CPU 1' || echo no)"
  echo "max rate: $ROUNDS × ${DURATION} s, wrk -t1 -c$CONNS; latency: $ROUNDS × ${DURATION} s at $RATE req/s, -c$LAT_CONNS; medians over rounds"
  echo "other load during the timed runs (CPU share of the machine used by anything but workerd, nginx and wrk): $(others)"
  echo "non-2xx/3xx responses in all timed runs: $(sum_field max non2xx3xx) (max rate), $(sum_field lat non2xx3xx) (latency); socket errors: $(( $(sum_field max read_err) + $(sum_field max timeouts) + $(sum_field lat read_err) + $(sum_field lat timeouts) ))"
  echo
  echo "| variant | req/s (max) | µs/req (1/req/s) | workerd CPU µs/req | p50 µs @ $RATE/s | p99 µs | achieved req/s | p50 / p99 µs @ $RATE2/s | cold start ms (median) |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for v in "${VARIANTS[@]}"; do
    echo "| $v | ${RPS[$v]} | $(us_per_req "${RPS[$v]}") | ${CPU[$v]} | ${P50[$v]} | ${P99[$v]} | ${LRPS[$v]} | ${P50B[$v]} / ${P99B[$v]} | ${COLD[$v]} |"
  done
  echo
  echo "edgeguard / baseline: $(ratio "${RPS[edgeguard]}" "${RPS[baseline]}")× (per round $(per_round max rps edgeguard baseline)); edgeguard / pass-through: $(ratio "${RPS[edgeguard]}" "${RPS[passthrough]}")× (per round $(per_round max rps edgeguard passthrough)); baseline / pass-through: $(ratio "${RPS[baseline]}" "${RPS[passthrough]}")×"
  echo "edgeguard / lean (hand-written, issue #18's floor): $(ratio "${RPS[edgeguard]}" "${RPS[lean]}")× (per round $(per_round max rps edgeguard lean)); edgeguard-nolog / lean: $(ratio "${RPS[edgeguard-nolog]}" "${RPS[lean]}")× (per round $(per_round max rps edgeguard-nolog lean)); CPU over lean: edgeguard $(awk -v a="${CPU[edgeguard]}" -v b="${CPU[lean]}" 'BEGIN {printf "%+.1f", a - b}') µs/req; edgeguard / headers-only: $(ratio "${RPS[edgeguard]}" "${RPS[headers-only]}")× (per round $(per_round max rps edgeguard headers-only)); lean / headers-only: $(ratio "${RPS[lean]}" "${RPS[headers-only]}")×"
  echo "edgeguard without the per-request log line (edgeguard-nolog) / baseline: $(ratio "${RPS[edgeguard-nolog]}" "${RPS[baseline]}")× (per round $(per_round max rps edgeguard-nolog baseline)); CPU $(ratio "${CPU[edgeguard-nolog]}" "${CPU[baseline]}")× the baseline's (per round $(per_round max workerd_cpu_us_per_req edgeguard-nolog baseline)); the log line costs $(awk -v a="${CPU[edgeguard]}" -v b="${CPU[edgeguard-nolog]}" 'BEGIN {printf "%.1f", a - b}') µs of CPU per request"
  echo "with a JSON log line per request on both sides: edgeguard / baseline-log: $(ratio "${RPS[edgeguard]}" "${RPS[baseline-log]}")× (per round $(per_round max rps edgeguard baseline-log)); CPU $(ratio "${CPU[edgeguard]}" "${CPU[baseline-log]}")× (per round $(per_round max workerd_cpu_us_per_req edgeguard baseline-log)); the baseline's console.log line costs $(awk -v a="${CPU[baseline-log]}" -v b="${CPU[baseline]}" 'BEGIN {printf "%.1f", a - b}') µs of CPU per request"
  echo "added over pass-through at $RATE req/s: edgeguard p50 $(added "${P50[edgeguard]}" "${P50[passthrough]}") µs, p99 $(added "${P99[edgeguard]}" "${P99[passthrough]}") µs; baseline p50 $(added "${P50[baseline]}" "${P50[passthrough]}") µs, p99 $(added "${P99[baseline]}" "${P99[passthrough]}") µs"
  echo "added over pass-through at $RATE2 req/s: edgeguard p50 $(added "${P50B[edgeguard]}" "${P50B[passthrough]}") µs, p99 $(added "${P99B[edgeguard]}" "${P99B[passthrough]}") µs; baseline p50 $(added "${P50B[baseline]}" "${P50B[passthrough]}") µs, p99 $(added "${P99B[baseline]}" "${P99B[passthrough]}") µs"
  echo "workerd CPU per request over headers-only (the policy alone): edgeguard $(awk -v a="${CPU[edgeguard]}" -v b="${CPU[headers-only]}" 'BEGIN {printf "%.1f", a - b}') µs, baseline $(awk -v a="${CPU[baseline]}" -v b="${CPU[headers-only]}" 'BEGIN {printf "%.1f", a - b}') µs; headers-only over pass-through: $(awk -v a="${CPU[headers-only]}" -v b="${CPU[passthrough]}" 'BEGIN {printf "%.1f", a - b}') µs"
  echo "workerd CPU per request over pass-through: edgeguard $(awk -v a="${CPU[edgeguard]}" -v b="${CPU[passthrough]}" 'BEGIN {printf "%.1f", a - b}') µs, baseline $(awk -v a="${CPU[baseline]}" -v b="${CPU[passthrough]}" 'BEGIN {printf "%.1f", a - b}') µs; edgeguard / baseline CPU: $(ratio "${CPU[edgeguard]}" "${CPU[baseline]}")× (per round $(per_round max workerd_cpu_us_per_req edgeguard baseline))"
  echo "per-request cost over pass-through (1/throughput): edgeguard $(awk -v a="${RPS[edgeguard]}" -v b="${RPS[passthrough]}" 'BEGIN {printf "%.1f", 1e6/a - 1e6/b}') µs, baseline $(awk -v a="${RPS[baseline]}" -v b="${RPS[passthrough]}" 'BEGIN {printf "%.1f", 1e6/a - 1e6/b}') µs"
  [ -z "${BEFORE_REV:-}" ] || echo "runtime bundle vs compiled in (edgeguard / edgeguard-before): throughput $(ratio "${RPS[edgeguard]}" "${RPS[edgeguard-before]}")× (per round $(per_round max rps edgeguard edgeguard-before)); CPU $(ratio "${CPU[edgeguard]}" "${CPU[edgeguard-before]}")× (per round $(per_round max workerd_cpu_us_per_req edgeguard edgeguard-before)); cold start ${COLD[edgeguard]} vs ${COLD[edgeguard-before]} ms (median)"
  echo "bundle: ${bundle_line:-unknown} (gzip ${bundle_gzip:-?} KiB = $( [ -n "$bundle_gzip" ] && ratio "$bundle_gzip" 138 || echo '?')× the 138 KiB hello-world workers-rs)"
  echo "shell steps in V8 (node): $v8"
  echo
  echo "raw runs:"
  echo '```'
  cat "$results"
  echo '```'
} | tee "$report"
echo "saved $report" >&2
