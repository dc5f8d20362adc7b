"""A bad configuration is refused by Envoy and by `sso-filter validate`, naming the JSON path
(docs/behaviour.md "Configuration"; security.md A3). Also the CLI's other subcommands."""

from __future__ import annotations

import json
import subprocess

import pytest

import harness
from harness import USERS, decode_identity_of, local_login, only_request


def _cli(*args, timeout=60) -> subprocess.CompletedProcess:
    if not harness.CLI.exists():
        pytest.fail(f"{harness.CLI} missing: `cargo build --release` (make test does it)",
                    pytrace=False)
    return subprocess.run([str(harness.CLI), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _typo_session(cfg):
    cfg["sesion"] = cfg.pop("session")
    return ["sesion"]


def _typo_verify(cfg):
    m = cfg["methods"]["jwt-param"]
    m["verfy"] = m.pop("verify")
    return ["methods.jwt-param", "verfy"]


def _bad_alg(cfg):
    cfg["methods"]["jwt-param"]["verify"]["alg"] = "HS257"
    return ["methods.jwt-param.verify.alg"]


def _short_secret(cfg):
    cfg["methods"]["jwt-param"]["verify"]["secret"] = "too-short"
    return ["methods.jwt-param.verify"]


def _insecure_cookie_on_https(cfg):
    cfg["base_url"] = "https://app.example.com"
    cfg["session"]["secure"] = False
    return ["session.secure"]


def _two_verify_keys(cfg):
    cfg["methods"]["jwt-param"]["verify"]["secret_base64"] = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    return ["methods.jwt-param.verify"]


def _unknown_user_field(cfg):
    cfg["methods"]["local"]["users"][0]["pasword_hash"] = "x"
    return ["methods.local.users", "pasword_hash"]


def _short_session_key(cfg):
    cfg["session"]["keys"] = [harness.b64url(b"0123456789")]
    return ["session.keys"]


BAD = {f.__name__.lstrip("_"): f for f in (
    _typo_session, _typo_verify, _bad_alg, _short_secret, _insecure_cookie_on_https,
    _two_verify_keys, _unknown_user_field, _short_session_key)}


def _config(base_url="http://127.0.0.1:8080"):
    return harness.base_config(base_url, keys=[harness.new_session_key()],
                               users=[USERS["admin"]])


def test_cli_accepts_the_good_config(tmp_path):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(_config()))
    proc = _cli("validate", str(path))
    assert proc.returncode == 0, proc


@pytest.mark.parametrize("bad", list(BAD))
def test_cli_validate_names_the_json_path(tmp_path, bad):
    cfg = _config()
    needles = BAD[bad](cfg)
    path = tmp_path / f"{bad}.json"
    path.write_text(json.dumps(cfg))
    proc = _cli("validate", str(path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}: {out}"
    for needle in needles:
        assert needle in out, f"{needle!r} not in the message: {out!r}"


def test_cli_validate_on_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"base_url": ')
    proc = _cli("validate", str(path))
    assert proc.returncode == 1, proc


@pytest.mark.parametrize("bad", ["typo_session", "typo_verify"])
def test_envoy_refuses_bad_config(envoys, recorder, bad):
    cfg = _config(base_url=None)
    needles = BAD[bad](cfg)
    port = harness.free_port()
    cfg["base_url"] = f"http://127.0.0.1:{port}"
    # Envoy, or the node worker (SSO_E2E_HOST=node), which answers 503 and logs the error.
    inst = envoys.cls(envoys.workdir, cfg, envoys.upstream_port, listen_port=port,
                      name=f"bad-{bad}")
    envoys.all.append(inst)
    state = inst.start_expecting_refusal()
    try:
        if state == "live":
            # Envoy is up: the listener must not serve anything through the filter.
            served = None
            try:
                resp = inst.client().get("/healthz", timeout=5)
                served = resp.status
            except OSError:
                pass
            assert served is None or served >= 500, \
                f"a refused config served {served} on {inst.base_url}"
            assert recorder.requests() == [], "a refused config forwarded a request"
        log = inst.log_text()
        for needle in needles:
            assert needle in log, f"{needle!r} not in Envoy's log ({state}):\n{inst.log_tail()}"
    finally:
        inst.stop()


def test_cli_clusters(tmp_path):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(_config()))
    proc = _cli("clusters", str(path))
    assert proc.returncode == 0, proc


def test_cli_clusters_and_validate_name_the_fleet_store(tmp_path):
    """Issue 16: `clusters` prints etcd's cluster (TLS with SNI for https) beside the IdPs';
    `validate` says which store holds single use and logouts."""
    cfg = _config()
    cfg["store"] = {"type": "etcd", "url": "https://etcd.internal:2379", "prefix": "app/",
                    "auth": {"username": "sso-filter", "password": "p"}}
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(cfg))
    proc = _cli("clusters", str(path))
    assert proc.returncode == 0, proc
    assert "# used by method store: https://etcd.internal:2379/" in proc.stdout, proc.stdout
    block = proc.stdout.split("- name: sso_etcd_internal_2379", 1)[1].split("\n- name:")[0]
    assert "port_value: 2379" in block and "sni: etcd.internal" in block, block
    # TLS that verifies: the chain against a CA bundle and the name against the certificate.
    assert "trusted_ca:" in block and 'exact: "etcd.internal"' in block, block
    # What it prints is a cluster list Envoy itself accepts.
    boot = tmp_path / "clusters.yaml"
    boot.write_text("static_resources:\n" + "".join(
        "  " + line + "\n" for line in proc.stdout.splitlines()))
    checked = subprocess.run([str(harness.ENVOY), "--mode", "validate", "-c", str(boot)],
                             capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    assert checked.returncode == 0 and "OK" in checked.stdout + checked.stderr, checked
    proc = _cli("validate", str(path))
    assert proc.returncode == 0, proc
    assert "store: etcd https://etcd.internal:2379 prefix app/" in proc.stdout, proc.stdout
    assert "p\"" not in proc.stdout + proc.stderr
    cfg["store"]["auth"]["password"] = ""
    path.write_text(json.dumps(cfg))
    proc = _cli("validate", str(path))
    assert proc.returncode != 0 and "store.auth.password" in proc.stderr, proc


def test_cli_hash_password_format_and_login(envoys, recorder):
    proc = _cli("hash-password", "cli-made-password")
    assert proc.returncode == 0 and proc.stdout.strip(), proc
    phc = proc.stdout.strip().splitlines()[-1].strip()
    assert harness.verify_password_hash("cli-made-password", phc), \
        f"not the documented $pbkdf2-sha256$i=...,l=32$salt$hash format: {phc!r}"
    iterations = int(phc.split("$")[2].split(",")[0][2:])
    assert iterations >= 100_000, phc
    cfg = harness.base_config(None, keys=[harness.new_session_key()], users=[])
    cfg["methods"]["local"]["users"] = [{"login": "cliuser", "password_hash": phc,
                                         "roles": ["data viewer"], "groups": []}]
    inst = envoys.get(cfg, name="cli-hash")
    c = inst.client()
    resp = local_login(c, "cliuser", "cli-made-password")
    assert resp.status == 303, resp
    assert c.get("/").status == 200
    assert decode_identity_of(only_request(recorder)).get("login") == "cliuser"
