# edgeguard — every target installs what it needs, idempotently, on a fresh machine.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown

.PHONY: test setup-rust check-wasm lint unit bench bench-build

## Every test: unit, property, integration, lints, and the wasm32 build of core + compiler.
test: setup-rust lint unit check-wasm bench-build
	@echo "edgeguard: all checks passed"

setup-rust:
	rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	rustup component list --installed | grep -q '^clippy' || rustup component add clippy

## Clippy with the runtime crates' no-panic policy (unwrap/expect/panic/indexing denied).
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

## core and compiler must build for the browser and the Workers runtime.
check-wasm:
	$(CARGO) build -p edgeguard-core -p edgeguard-compiler --target $(WASM_TARGET) --release

## Benchmarks compile in CI; run them with `make bench` (results: docs/benchmarks.md).
bench-build:
	$(CARGO) bench --workspace --no-run

bench:
	$(CARGO) bench -p edgeguard-core -p edgeguard-compiler
