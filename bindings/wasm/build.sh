#!/usr/bin/env bash
# Builds the npm package's two WebAssembly modules (wasm-bindgen's `web` target: one module for
# every runtime, loaded by bindings/wasm/npm/load/ as the package's `imports` map selects):
#   wasm/       the full module: Biscuit's authorizer for tickets beyond the captix vocabulary;
#   wasm-lean/  the lean one (the core's `datalog` feature off, about 60% of the size): such
#               tickets are refused; selected by the `captix-lean` export condition.
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at the exact version of the
# wasm-bindgen crate in Cargo.lock (scripts/setup-wasm installs both).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bindings/wasm/npm
for build in wasm wasm-lean; do
  features=()
  [ "$build" = wasm-lean ] && features=(--no-default-features)
  cargo build --locked -q -p captix-wasm --target wasm32-unknown-unknown --profile wasm "${features[@]}"
  rm -rf "$out/$build"
  wasm-bindgen --target web --out-dir "$out/$build" \
    --remove-name-section --remove-producers-section \
    target/wasm32-unknown-unknown/wasm/captix_wasm.wasm
  rm -f "$out/$build/.gitignore"
  # Where the module's bytes are, for the loaders (`#wasm-url` in the package's imports map).
  echo "export default new URL('./captix_wasm_bg.wasm', import.meta.url);" > "$out/$build/url.js"
done
