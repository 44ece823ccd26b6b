#!/usr/bin/env bash
# Builds the browser playground into www/dist: the compiler and engine (Rust → wasm32,
# crates/playground) with their wasm-bindgen glue in www/dist/pkg, the page bundled by esbuild
# (CodeMirror 6 and the presets from fixtures/ inlined), and the static files. Installs the
# wasm target, the exact wasm-bindgen CLI and the npm packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=www/dist
source scripts/wasm-tools.sh
[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

cargo build -p edgeguard-playground --target wasm32-unknown-unknown --profile playground
rm -rf "$out" && mkdir -p "$out/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" target/wasm32-unknown-unknown/playground/edgeguard_playground.wasm

# The page: the editor and views (main.js), the worker that runs the wasm with its
# wasm-bindgen glue bundled in (worker.js), and a tiny classic script that starts the worker
# while the page is still parsing (boot.js). The presets are fixtures/*.toml, inlined as text.
node_modules/.bin/esbuild www/src/main.js www/src/worker.js --bundle --format=esm --minify --sourcemap \
  --target=es2022 --outdir="$out" --log-level=warning --loader:.toml=text
node_modules/.bin/esbuild www/src/boot.js --minify --target=es2017 --outfile="$out/boot.js" --log-level=warning
cp www/index.html www/style.css "$out/"
# The worker directory the page offers for download: the prebuilt engine and the entry and
# manifest `edgeguard build` writes (the page puts the policy's bundle and facts in).
[ -f crates/cli/engine/.built ] || ./scripts/build-engine.sh
cargo build -p edgeguard-cli
worker_tmp=$(mktemp -d)
target/debug/edgeguard build fixtures/minimal.toml -o "$worker_tmp/edge" > /dev/null
mkdir -p "$out/engine"
cp "$worker_tmp"/edge/{index.mjs,shell.mjs,engine.js,engine_bg.wasm,edgeguard.json} "$out/engine/"
rm -rf "$worker_tmp"
wasm_bytes=$(wc -c < "$out/pkg/edgeguard_playground_bg.wasm")
wasm_gzip=$(gzip -9 -c "$out/pkg/edgeguard_playground_bg.wasm" | wc -c)
js_bytes=$(cat "$out"/boot.js "$out"/main.js "$out"/worker.js | wc -c)
js_gzip=$(cat "$out"/boot.js "$out"/main.js "$out"/worker.js | gzip -9 | wc -c)
echo "built $out: wasm $wasm_bytes bytes ($wasm_gzip gzip), js $js_bytes bytes ($js_gzip gzip)"
