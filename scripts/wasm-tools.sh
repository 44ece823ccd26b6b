# Sourced by the scripts that build wasm with wasm-bindgen (build-engine.sh, build-playground.sh):
# the wasm32 target and the wasm-bindgen CLI at the exact version of the library in Cargo.lock
# (they must match), installed when missing.
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$want"
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
