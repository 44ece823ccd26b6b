#!/usr/bin/env bash
# Runs the engine's own unit tests (crates/core) as wasm32 in Node under wasm-bindgen-test, the
# way the worker runs the engine: 32-bit usize, wasm's floats and integer arithmetic, no threads.
# The native `cargo test` cannot see a difference there. Property tests (proptest) stay native:
# they need threads, failure files and OS randomness (crates/core/Cargo.toml).
#
#   scripts/test-core-wasm.sh [TEST-NAME-FILTER]
#
# Installs the wasm32 target and the wasm-bindgen CLI at the version in Cargo.lock when missing
# (its wasm-bindgen-test-runner must match the wasm-bindgen-test library), and Node if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-tools.sh
if ! command -v node >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs
fi
# The runner runs each test binary in Node (no browser: nothing here needs one).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
cargo test -p edgeguard-core --lib --target wasm32-unknown-unknown -- "$@"
