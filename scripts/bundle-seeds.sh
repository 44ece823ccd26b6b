#!/usr/bin/env bash
# Writes the bundle_load fuzz target's bundle seeds (fuzz/corpus/bundle_load/) with the current
# compiler: run it whenever the bundle format (core's FORMAT_VERSION or the Bundle types) changes,
# or the seeds stop being bundles the engine loads.
#
#   scripts/bundle-seeds.sh
#
# Per policy, six seeds (b000–b029, b050–b055), each `\0` (the target's "as is" mode) then:
#   +0 the bundle   +1 its first half   +2 one trailing byte   +3 format version − 1
#   +4 format version + 1   +5 a wrong magic byte
# and b049, a bundle header with no body. The other seeds (b030–b048: edit records applied to
# the target's built-in fixture bundles, truncated magic, empty) do not depend on the format and
# are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus/bundle_load
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo build -q -p edgeguard-cli
cli=target/debug/edgeguard

# name, policy, environment ("" for the policy's own), first seed number
policies=(
  "quotekit fixtures/quotekit.toml '' 0"
  "minimal fixtures/minimal.toml '' 6"
  "helmet fixtures/helmet.toml '' 12"
  "quotekit-staging fixtures/quotekit.toml staging 18"
  "e2e tests/e2e/policy.toml '' 24"
  "strict fixtures/strict.toml '' 50"
)

seed() { printf '%s/b%03d' "$out" "$1"; }
# The 4 bytes of a u32, little-endian, as printf escapes.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

version=
for entry in "${policies[@]}"; do
  eval "set -- $entry"
  name=$1 policy=$2 env=$3 n=$4
  bundle="$tmp/$name.egb"
  # Warnings are the policies' own (docs/deploy.md); only a failure is shown.
  "$cli" compile "$policy" -o "$bundle" ${env:+--env "$env"} >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  size=$(wc -c <"$bundle")
  version=$(od -An -tu4 -j4 -N4 "$bundle" | tr -d ' ')
  { printf '\0'; cat "$bundle"; } >"$(seed "$n")"
  { printf '\0'; head -c $((size / 2)) "$bundle"; } >"$(seed $((n + 1)))"
  { printf '\0'; cat "$bundle"; printf '\0'; } >"$(seed $((n + 2)))"
  for k in 3 4; do
    v=$((k == 3 ? version - 1 : version + 1))
    { printf '\0'; head -c 4 "$bundle"; printf "$(le32 "$v")"; tail -c +9 "$bundle"; } >"$(seed $((n + k)))"
  done
  { printf '\0'; head -c 3 "$bundle"; printf '\x02'; tail -c +5 "$bundle"; } >"$(seed $((n + 5)))"
  echo "$name: $size bytes, format $version → $(seed "$n")…$(seed $((n + 5)))" >&2
done
{ printf '\0EGB\x01'; printf "$(le32 "$version")"; } >"$(seed 49)"
echo "header only → $(seed 49)" >&2
