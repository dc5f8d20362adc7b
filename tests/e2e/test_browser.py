"""A real browser (Debian chromium, driven by playwright-core from Node) logs in through
Envoy and the filter with the built-in login form and lands on the upstream page."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import harness
from harness import USERS, decode_identity_of

BROWSER_DIR = harness.REPO / "tests" / "e2e" / "browser"


@pytest.mark.browser
def test_browser_login(main_envoy, recorder, tmp_path):
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").exists(), \
        "playwright-core missing: scripts/setup.sh runs npm ci in tests/e2e/browser"
    user = USERS["browser"]
    target = main_envoy.base_url + "/private/dashboard?tab=1"
    shot = tmp_path / "after-login.png"
    args = {"url": target, "username": user.login, "password": user.password,
            "screenshot": str(shot)}
    proc = subprocess.run([node, str(BROWSER_DIR / "login.mjs"), json.dumps(args)],
                          cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from login.mjs (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert out.get("ok"), f"browser run failed: {out.get('error')}\nsteps: {out.get('steps')}"
    assert out["login_page_url"].startswith(main_envoy.base_url + "/login"), out
    assert out["final_url"] == target, out
    assert out["login"] == user.login, out
    session = [ck for ck in out["cookies"] if ck["name"] == "sso_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Lax", out
    hits = [e for e in recorder.requests() if e["path"] == "/private/dashboard?tab=1"]
    assert hits, recorder.requests()
    assert decode_identity_of(hits[-1]).get("login") == user.login
    assert shot.exists()
