#!/usr/bin/env bash
# Builds the worker into build/worker: the engine (Rust → wasm32, policy embedded by build.rs),
# its wasm-bindgen JS glue and the JS shell. EDGEGUARD_POLICY / EDGEGUARD_ENV pick the policy.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build/worker}"
# build.rs runs in the crate's directory: hand it an absolute policy path.
if [ -n "${EDGEGUARD_POLICY:-}" ]; then
  EDGEGUARD_POLICY="$(realpath "$EDGEGUARD_POLICY")"
  export EDGEGUARD_POLICY
fi
# The wasm-bindgen CLI must be the exact version of the library in Cargo.lock.
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$want"
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build -p edgeguard-worker --target wasm32-unknown-unknown --profile worker
rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" target/wasm32-unknown-unknown/worker/edgeguard_worker.wasm
cp crates/worker/js/shell.mjs "$out/shell.mjs"
echo "built $out ($(wc -c < "$out/edgeguard_worker_bg.wasm") bytes of wasm, policy ${EDGEGUARD_POLICY:-fixtures/quotekit.toml})"
