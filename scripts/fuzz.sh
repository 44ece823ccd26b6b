#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for SECONDS_PER_TARGET seconds (default 10: about a
# minute for all seven) and fails on the first crash, leak, timeout or out-of-memory.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# The committed seeds (fuzz/corpus/<target>/) are read, never written: what a run discovers
# goes to fuzz/work/<target>/ (ignored by git), so later runs start from it. A crash leaves its
# input in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/crash-…
# Long runs and their numbers: docs/security.md.
#
# cargo-fuzz passes nightly-only flags to rustc (-Z sanitizer=address, -C passes=sancov…). On a
# stable toolchain RUSTC_BOOTSTRAP=1 lets it; nothing else is built that way.
# Environment: FUZZ_ARGS (extra libFuzzer flags), SANITIZER (none, the default, or address). core and compiler hold no
# `unsafe` code, so AddressSanitizer only watches dependencies, at a third of the speed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-10}"
shift || true
ALL=(compile_bytes compile_structured decide normalize_path bundle_load nonce_rewrite session_token)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
SANITIZER="${SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once)" >&2
  # --locked can fail when the registry lacks one of the locked versions; retry unlocked.
  cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

# -a: debug assertions, so integer overflow panics here instead of wrapping in release builds.
BUILD=(--release --debug-assertions --sanitizer "$SANITIZER")
echo "== building ${#TARGETS[@]} fuzz targets" >&2
cargo fuzz build "${BUILD[@]}" >&2

failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  log="fuzz/work/$t.log"
  # Pages are bigger than policies: the rewriter's seeds hold a 100 KB attribute and 10 000
  # nested divs, which a 64 KiB cap would cut short.
  case "$t" in nonce_rewrite) max_len=262144 ;; *) max_len=65536 ;; esac
  echo "== $t: ${SECONDS_PER_TARGET} s" >&2
  # -rss_limit_mb: a policy or bundle must never make the engine balloon; -timeout: nor hang.
  if cargo fuzz run "${BUILD[@]}" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
      -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}' || true)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}' || true)
    echo "$t: ok, ${runs} runs (${speed} exec/s)" >&2
  else
    echo "$t: FAILED (log: $log)" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact_prefix' "$log" | head -20 >&2 || tail -30 "$log" >&2
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets clean" >&2
