# edgeguard — every target installs what it needs, idempotently, on a fresh machine.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false

.PHONY: monitoring-test test run setup-rust node-deps lint unit core-wasm-test check-wasm bench-build engine cli edges e2e deploy-dry-run bench fuzz-smoke soak playground serve-playground chromium playground-test npm-package npm-test dist publish-dry-run release-test

## Every test: unit, property, integration, clippy's no-panic policy, the engine's unit tests and build as wasm32,
## end-to-end tests in workerd in front of a real origin, and the deploy artifact.
test: setup-rust engine lint unit core-wasm-test check-wasm fuzz-smoke e2e deploy-dry-run npm-test release-test playground-test monitoring-test
	@echo "edgeguard: all checks passed"

## The edge in workerd in front of the demo QuoteKit origin (POLICY=, ENV=, ORIGIN=, PORT=, PROTOCOL=).
run: cli node-deps
	./scripts/run-edge.sh

setup-rust:
	rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	rustup component list --installed | grep -q '^clippy' || rustup component add clippy

## npm packages (wrangler/workerd, csp_evaluator, ajv…), reinstalled when the lock file changes.
node-deps:
	[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

## Clippy with the runtime crates' no-panic policy (unwrap/expect/panic/indexing denied).
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

## The engine's unit tests again as wasm32 in Node (wasm-bindgen-test), as the worker runs it:
## 32-bit usize, wasm floats, no threads. Property tests stay native.
core-wasm-test: setup-rust
	./scripts/test-core-wasm.sh

## core and compiler must build for the browser and the Workers runtime.
check-wasm:
	$(CARGO) build -p edgeguard-core -p edgeguard-compiler --target $(WASM_TARGET) --release

## Benchmarks are type-checked by `lint` (clippy --all-targets); this builds them fully.
bench-build:
	$(CARGO) bench --workspace --no-run

## The engine: the worker's wasm, its glue and the JS shell — the same bytes for every policy —
## in crates/cli/engine, where the CLI embeds it. Built once; policies are bundles beside it.
engine: setup-rust
	./scripts/build-engine.sh

## The CLI with the engine inside (target/debug/edgeguard): what writes every worker below.
cli: engine
	$(CARGO) build -p edgeguard-cli

## A worker directory per policy the end-to-end tests serve: the one engine and that policy's
## bundle, written by `edgeguard build` (QuoteKit; short timeouts, IP rules and a dead origin;
## [observe]; strict CSP; fleet statistics, SLOs and alerts).
EDGEGUARD := target/debug/edgeguard
edges: cli
	$(EDGEGUARD) build fixtures/quotekit.toml -o build/edge > /dev/null
	$(EDGEGUARD) build tests/e2e/policy.toml -o build/edge-test > /dev/null
	$(EDGEGUARD) build tests/e2e/observe.toml -o build/edge-observe > /dev/null
	$(EDGEGUARD) build tests/e2e/strict.toml -o build/edge-strict > /dev/null
	$(EDGEGUARD) build tests/e2e/cache.toml -o build/edge-cache > /dev/null
	$(EDGEGUARD) build tests/e2e/operate.toml -o build/edge-operate > /dev/null
	$(EDGEGUARD) build tests/e2e/shield.toml -o build/edge-shield > /dev/null

e2e: node-deps edges chromium
	node --test --test-concurrency=1 tests/e2e/ demo/ tests/csp-parity/ tests/sarif/ tests/observatory/

## Proves the deploy artifact builds; prints its size (docs/benchmarks.md).
deploy-dry-run: node-deps edges
	node_modules/.bin/wrangler deploy --dry-run --outdir build/dist 2>&1 | grep -E "Total Upload|error" || true
	test -f build/dist/index.js && ls build/dist | grep -q 'policy.egb$$' 

## The npm package `edgeguard` in build/npm/edgeguard-<version>.tgz: the CLI compiled to
## wasm32-wasip1 (run by Node's WASI) and the worker runtime.
npm-package: engine
	./scripts/npm-package.sh

## The npm CLI against the native one on the fixtures, and both outside the repository with no
## Rust on PATH: build, wrangler deploy --dry-run, wrangler dev; the GitHub Action's steps.
npm-test: npm-package cli node-deps
	node --test --test-concurrency=1 tests/npm/

## The release artifacts in build/release: CLI binary (linux x86_64), npm tarball, engine wasm
## and its SHA-256, this version's CHANGELOG entry.
dist: npm-package
	./scripts/dist.sh

## The crates as crates.io would take them (core, compiler, and cli carrying the engine).
publish-dry-run: engine
	# cargo verifies each crate against the others packaged into a temporary registry, treats
	# what it extracts and builds from there as immutable (by version), and keeps the sources in
	# CARGO_HOME: an earlier run of another commit would hand this one stale crates. So each run
	# starts from nothing (never a crates.io copy: those live under registry/src/index.crates.io-*).
	rm -rf target/publish "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/-*/edgeguard-* "$${CARGO_HOME:-$$HOME/.cargo}"/registry/cache/-*/edgeguard-*
	$(CARGO) publish --dry-run --allow-dirty --target-dir target/publish -p edgeguard-core -p edgeguard-compiler -p edgeguard-cli

## What `make dist` wrote, checked; and the crates packaged.
release-test: dist publish-dry-run
	node --test tests/release/

bench:
	$(CARGO) bench -p edgeguard-core -p edgeguard-compiler

## Every fuzz target for 10 s (cargo-fuzz on stable via RUSTC_BOOTSTRAP; docs/security.md).
fuzz-smoke:
	./scripts/fuzz.sh 10

## The browser playground (crates/playground + www/) built into www/dist: wasm, page, presets.
playground: setup-rust node-deps engine
	./scripts/build-playground.sh

## Build the playground and serve it on http://127.0.0.1:8788/ (PORT=N to change; loopback only).
serve-playground: playground
	node scripts/serve-playground.mjs

## Debian's Chromium for the browser test (driven by npm playwright-core; no browser download).
chromium:
	[ -x /usr/bin/chromium ] || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

## The playground in headless Chromium, and its decisions against `edgeguard explain`.
playground-test: playground chromium
	node --test --test-concurrency=1 tests/playground/

## The Prometheus rules in docs/monitoring: `promtool check rules` and their unit tests
## (a breach pages, an SLO within budget does not). promtool comes with Debian's `prometheus`.
monitoring-test:
	command -v promtool >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }
	promtool check rules docs/monitoring/edgeguard-rules.yml
	(cd docs/monitoring && promtool test rules edgeguard-rules.test.yml)
	node -e 'JSON.parse(require("fs").readFileSync("docs/monitoring/grafana-dashboard.json","utf8"))'

## Load through `workerd serve`: wrk sends from each of 1 000 000 client addresses, then 60 s with
## origin faults (~6 min on 2 quiet cores, ~10 busy; SOAK_SWEEP=60: a 60 s sweep; not part of `test`; docs/security.md).
soak: cli node-deps
	command -v wrk >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }
	$(EDGEGUARD) build tests/soak/policy.toml -o build/edge-soak > /dev/null
	node tests/soak/soak.mjs
