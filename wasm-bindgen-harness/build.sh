#!/usr/bin/env bash
# Builds the edge module into pkg/: the engine for wasm32-unknown-unknown, then wasm-bindgen
# (--target web: an ES module with explicit initialisation, which Workers-style runtimes and
# Node 20 both load; worker.mjs passes it the compiled module).
# Needs: rustup target wasm32-unknown-unknown, and wasm-bindgen-cli at exactly the version of
# the wasm-bindgen crate in Cargo.lock (scripts/setup.sh installs both).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$have" != "$want" ]; then
  echo "build.sh: wasm-bindgen-cli ${have:-missing}, need $want:" >&2
  echo "  cargo install wasm-bindgen-cli --version $want   (or scripts/setup.sh)" >&2
  exit 1
fi

cargo build --release --target wasm32-unknown-unknown --lib
wasm-bindgen --target web --out-dir pkg --out-name sso_filter_edge \
  target/wasm32-unknown-unknown/release/sso_filter_edge.wasm
ls -l pkg/sso_filter_edge_bg.wasm

# dist/: the deployable worker, alone in its own directory: the entry for Workers runtimes and
# the modules it imports, under the names they import each other by. wrangler.toml uploads this
# directory as it is (no_bundle, base_dir = "dist") and sso-filter.capnp runs the same files in
# workerd, so what the end-to-end suite ran there is what `wrangler deploy` ships.
rm -rf dist
mkdir -p dist/pkg
cp cloudflare.mjs worker.mjs handler.mjs dist/
cp pkg/sso_filter_edge.js pkg/sso_filter_edge_bg.wasm dist/pkg/
