#!/usr/bin/env bash
# Builds the engine — the worker's wasm, its wasm-bindgen glue and the JS shell, the same bytes
# for every policy — into crates/cli/engine/, where the CLI embeds it (`edgeguard build` writes
# it next to each policy bundle) and the npm package and `make dist` take it from.
# Installs the wasm32 target and the exact wasm-bindgen CLI when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out="crates/cli/engine"
source scripts/wasm-tools.sh
cargo build -p edgeguard-worker --target wasm32-unknown-unknown --profile worker
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No name section: function names are for debuggers (the engine never panics), and they were a fifth of
# the upload.
wasm-bindgen --target web --no-typescript --remove-name-section --out-name engine --out-dir "$tmp" target/wasm32-unknown-unknown/worker/edgeguard_worker.wasm
cp crates/worker/js/shell.mjs "$tmp/shell.mjs"
mkdir -p "$out"
# Replace only what changed, so the CLI's build script (which watches these files) reruns only
# when the engine really did.
for f in engine_bg.wasm engine.js shell.mjs; do
  cmp -s "$tmp/$f" "$out/$f" || cp "$tmp/$f" "$out/$f"
done
touch "$out/.built"   # when this engine was last brought up to date (crates/cli/build.rs)
echo "built $out ($(wc -c < "$out/engine_bg.wasm") bytes of wasm, sha256 $(sha256sum "$out/engine_bg.wasm" | cut -c1-12)…)"
