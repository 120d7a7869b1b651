#!/usr/bin/env bash
# Builds the npm package's WebAssembly module into bindings/wasm/npm/wasm/ (wasm-bindgen's `web`
# target: one module for every runtime, loaded by bindings/wasm/npm/load/ as the package's
# `imports` map selects).
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at the exact version of the
# wasm-bindgen crate in Cargo.lock (scripts/setup-wasm installs both).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked -q -p captix-wasm --target wasm32-unknown-unknown --profile wasm
rm -rf bindings/wasm/npm/wasm
wasm-bindgen --target web --out-dir bindings/wasm/npm/wasm \
  --remove-name-section --remove-producers-section \
  target/wasm32-unknown-unknown/wasm/captix_wasm.wasm
rm -f bindings/wasm/npm/wasm/.gitignore
