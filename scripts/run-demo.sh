#!/usr/bin/env bash
# The demo (`make run`): demo/upstream.py on 127.0.0.1:8081 and Envoy on 127.0.0.1:8080 with
# sso-filter in front, configured from envoy/plugin/demo.json (built-in users + the seed's
# jwt-param). Runs until Ctrl-C, then stops both.
#
# Secrets: envoy/plugin/demo.json is committed and clearly demo-only: its password hashes are of
# the demo passwords printed below (public anyway), and its session key spells "DEMO ONLY".
# This script never uses that key: it writes target/demo/filter.json with a fresh random session
# key at every start (so a cookie from one demo run does not open in another, and nobody can mint
# sessions from the repository's key), and envoy/demo.yaml rendered around it.
#
# Environment: SSO_DEMO_PORT (8080), SSO_DEMO_UPSTREAM_PORT (8081), SSO_DEMO_ADMIN_PORT (9901),
# SSO_DEMO_WASM (target/wasm32-wasip1/release/sso_filter.wasm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${SSO_DEMO_PORT:-8080}"
UPSTREAM_PORT="${SSO_DEMO_UPSTREAM_PORT:-8081}"
ADMIN_PORT="${SSO_DEMO_ADMIN_PORT:-9901}"
WASM="${SSO_DEMO_WASM:-$ROOT/target/wasm32-wasip1/release/sso_filter.wasm}"
ENVOY="$ROOT/.venv/bin/envoy"
OUT="$ROOT/target/demo"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

[ -f "$WASM" ] || { echo "missing $WASM: run 'make wasm' (or 'make run')" >&2; exit 1; }
[ -x "$ENVOY" ] || { echo "missing $ENVOY: run scripts/setup.sh" >&2; exit 1; }
for p in "$PORT" "$UPSTREAM_PORT" "$ADMIN_PORT"; do
  if "$PY" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null; then :; else
    echo "port 127.0.0.1:$p is in use (set SSO_DEMO_PORT / SSO_DEMO_UPSTREAM_PORT / SSO_DEMO_ADMIN_PORT)" >&2
    exit 1
  fi
done
mkdir -p "$OUT"

# Fresh session key + base_url for this run; the YAML template filled in.
"$PY" - "$ROOT" "$OUT" "$PORT" "$UPSTREAM_PORT" "$ADMIN_PORT" "$WASM" <<'PY'
import base64, json, secrets, sys
from pathlib import Path
root, out, port, upstream, admin, wasm = sys.argv[1:]
cfg = json.loads(Path(root, "envoy/plugin/demo.json").read_text())
cfg["base_url"] = f"http://127.0.0.1:{port}"
cfg["session"]["keys"] = [base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()]
text = json.dumps(cfg, ensure_ascii=False, indent=1)
Path(out, "filter.json").write_text(text + "\n")
yaml = Path(root, "envoy/demo.yaml").read_text()
for k, v in {"@LISTEN_PORT@": port, "@ADMIN_PORT@": admin, "@UPSTREAM_PORT@": upstream,
             "@WASM@": wasm, "@FILTER_CONFIG@": json.dumps(json.dumps(cfg, ensure_ascii=False))}.items():
    yaml = yaml.replace(k, v)
Path(out, "envoy.yaml").write_text(yaml)
PY

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" demo/upstream.py --port "$UPSTREAM_PORT" &
PIDS+=($!)
"$ENVOY" -c "$OUT/envoy.yaml" --disable-hot-restart --concurrency 2 -l info \
  --log-path "$OUT/envoy.log" </dev/null &
ENVOY_PID=$!
PIDS+=("$ENVOY_PID")

for _ in $(seq 1 300); do
  if ! kill -0 "$ENVOY_PID" 2>/dev/null; then
    echo "Envoy exited; last lines of $OUT/envoy.log:" >&2
    tail -n 30 "$OUT/envoy.log" >&2 || true
    exit 1
  fi
  if [ "$("$PY" -c 'import sys,urllib.request
try: print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/ready", timeout=1).read().decode().strip())
except Exception: print("")' "$ADMIN_PORT")" = LIVE ]; then break; fi
  sleep 0.2
done

SEED_URL="http://127.0.0.1:$PORT/?activeAuth=jwt-param&jwtParam=eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIzIiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBhZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmlld2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNlIn0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8O_Lw1vEtAQ"
cat <<EOF

  sso-filter demo is running.

  Open:              http://127.0.0.1:$PORT/
  Built-in users:    admin / admin-demo-password        (roles: system admin)
                     zhangsan / zhangsan-demo-password  (name 张三, sent RFC 8187-encoded)
  Seed JWT example:  $SEED_URL
  Tenant example:    add &tenantCode=tenant1 to the URL above
  Who am I:          http://127.0.0.1:$PORT/sso/userinfo      Log out: http://127.0.0.1:$PORT/sso/logout
  Upstream (direct): http://127.0.0.1:$UPSTREAM_PORT/   Envoy admin: http://127.0.0.1:$ADMIN_PORT/stats?filter=sso_
  Config / log:      $OUT/filter.json, $OUT/envoy.log   (grep 'wasm log' for the filter's lines)

  Ctrl-C stops Envoy and the upstream.
EOF
wait "$ENVOY_PID"
