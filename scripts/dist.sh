#!/usr/bin/env bash
# The release artifacts of this version, in build/release/:
#   edgeguard-<v>-x86_64-unknown-linux-gnu.tar.gz   the CLI (release build, the engine inside), LICENSE, README
#   edgeguard-<v>.tgz                                the npm package (scripts/npm-package.sh)
#   edgeguard-engine-<v>.wasm (+ .sha256)            the engine every worker of this version runs
#   CHANGELOG-<v>.md                                 this version's CHANGELOG.md entry (the release notes)
#   SHA256SUMS                                       every artifact's SHA-256
# Fails when CHANGELOG.md has no entry for the version. Needs the engine and the npm package.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk -F'"' '/^\[workspace.package\]/{w=1} w && /^version *=/{print $2; exit}' Cargo.toml)
out=build/release
target=x86_64-unknown-linux-gnu
notes=$(awk -v v="$version" '
  $0 ~ "^## \\[" v "\\]" { on = 1 }
  on && /^## \[/ && $0 !~ "^## \\[" v "\\]" { exit }
  on { print }' CHANGELOG.md)
if [ -z "$notes" ]; then
  echo "CHANGELOG.md has no \"## [$version]\" entry: write the release notes first" >&2
  exit 1
fi
cargo build -p edgeguard-cli --release --target "$target"
rm -rf "$out" && mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cli="edgeguard-$version-$target"
mkdir "$stage/$cli"
cp "target/$target/release/edgeguard" LICENSE README.md "$stage/$cli/"
tar -C "$stage" -czf "$out/$cli.tar.gz" "$cli"
cp "build/npm/edgeguard-$version.tgz" "$out/"
cp crates/cli/engine/engine_bg.wasm "$out/edgeguard-engine-$version.wasm"
(cd "$out" && sha256sum "edgeguard-engine-$version.wasm" > "edgeguard-engine-$version.wasm.sha256")
printf '%s\n' "$notes" > "$out/CHANGELOG-$version.md"
(cd "$out" && sha256sum "$cli.tar.gz" "edgeguard-$version.tgz" "edgeguard-engine-$version.wasm" "CHANGELOG-$version.md" > SHA256SUMS)
ls -l "$out"
