#!/usr/bin/env bash
# Writes the npm package `edgeguard` as build/npm/edgeguard-<version>.tgz: the CLI compiled to
# wasm32-wasip1 (the engine inside it) run by bin/edgeguard.mjs under Node's WASI, and the worker
# runtime (worker/: the engine and its shell, the same bytes `edgeguard build` writes).
# Needs the engine (scripts/build-engine.sh); installs the wasm32-wasip1 target when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk -F'"' '/^\[workspace.package\]/{w=1} w && /^version *=/{print $2; exit}' Cargo.toml)
npm_version=$(node -p 'require("./npm/package.json").version')
if [ "$version" != "$npm_version" ]; then
  echo "npm/package.json says $npm_version, the crates $version: make them the same" >&2
  exit 1
fi
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
cargo build -p edgeguard-cli --target wasm32-wasip1 --profile cli-wasm
pkg=build/npm/package
rm -rf "$pkg" && mkdir -p "$pkg/lib" "$pkg/worker"
cp -r npm/bin npm/package.json npm/README.md "$pkg/"
cp LICENSE "$pkg/"
cp target/wasm32-wasip1/cli-wasm/edgeguard.wasm "$pkg/lib/edgeguard.wasm"
cp crates/cli/engine/engine_bg.wasm crates/cli/engine/engine.js crates/cli/engine/shell.mjs "$pkg/worker/"
rm -f "build/npm/edgeguard-$version.tgz"
(cd "$pkg" && npm pack --silent --pack-destination .. >/dev/null)
echo "built build/npm/edgeguard-$version.tgz ($(wc -c < "build/npm/edgeguard-$version.tgz") bytes; CLI wasm $(wc -c < "$pkg/lib/edgeguard.wasm") bytes)"
