#!/usr/bin/env bash
# Strict CSP on HTML responses (docs/benchmarks.md, "Strict CSP"): writes edgeguard workers for
# fixtures/quotekit.toml as written and with `strict = "nonce"` added to its [csp], then runs
# bench/worker/html.mjs (pass-through vs both, 50 KiB and 2 MiB pages, time to first byte of a
# streamed page) with `workerd serve` on 127.0.0.1.
#
#   scripts/bench-html.sh            ROUNDS=5 REQUESTS=200 SKIP_BUILD=1 (reuse build/bench-html)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERD=node_modules/@cloudflare/workerd-linux-64/bin/workerd
[ -x "$WORKERD" ] || npm ci --no-audit --no-fund
out=build/bench-html
if [ "${SKIP_BUILD:-}" != 1 ]; then
  mkdir -p "$out"
  sed '/^\[csp\]$/a strict = "nonce"' fixtures/quotekit.toml > "$out/quotekit-strict.toml"
  grep -q '^strict = "nonce"$' "$out/quotekit-strict.toml"
  make -s cli >&2
  target/debug/edgeguard build fixtures/quotekit.toml -o "$out/legacy" 2>/dev/null >&2
  target/debug/edgeguard build "$out/quotekit-strict.toml" -o "$out/strict" 2>/dev/null >&2
fi
node bench/worker/html.mjs "$WORKERD" "$out/legacy" "$out/strict" "${ROUNDS:-5}" "${REQUESTS:-200}" | tee "$out/last.txt"
