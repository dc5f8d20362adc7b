"""A real OpenLDAP (Debian `slapd`) on loopback for the LDAP tests: a throwaway CA and server
certificate (localhost, 127.0.0.1), a slapd.conf with the memberof overlay, plain `ldap://` and
`ldaps://` listeners on free ports, and a test tree loaded through the protocol (so memberof
fills memberOf):

    dc=example,dc=org
      cn=svc          the service account (password svc-pw), reads the tree
      ou=people       alice (alice-pw, display name 张伟, in admins and analysts),
                      bob (bob-pw, in analysts), carol (carol-pw, no group)
      ou=groups       admins, analysts (groupOfNames)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=root,{SUFFIX}"
ROOT_PW = "root-pw"
SVC_DN = f"cn=svc,{SUFFIX}"
SVC_PW = "svc-pw"

PEOPLE = {
    "alice": ("alice-pw", "张伟", ["admins", "analysts"]),
    "bob": ("bob-pw", "Bob Builder", ["analysts"]),
    "carol": ("carol-pw", "Carol", []),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ldif() -> str:
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
           f"dn: {SVC_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n"
           f"cn: svc\nuserPassword: {SVC_PW}\n",
           f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
           f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"]
    for uid, (pw, name, _) in PEOPLE.items():
        out.append(f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                   f"cn: {uid}\nsn: {uid}\ndisplayName: {name}\nmail: {uid}@example.org\n"
                   f"userPassword: {pw}\n")
    for group in ("admins", "analysts"):
        members = [u for u, (_, _, gs) in PEOPLE.items() if group in gs]
        lines = "".join(f"member: uid={u},ou=people,{SUFFIX}\n" for u in members)
        out.append(f"dn: cn={group},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {group}\n"
                   + lines)
    return "\n".join(out)


def _conf(d: Path) -> str:
    return f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {d}/db
overlay memberof
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="{SVC_DN}" read
  by self read
  by * none
"""


def make_certs(d: Path) -> None:
    """A private test CA (`ca.pem`) and a server certificate for localhost and 127.0.0.1
    (`server.pem`, `server.key`) in `d`."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")


class Slapd:
    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.tls_port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.ca = self.dir / "ca.pem"

    def start(self) -> "Slapd":
        if not Path(SLAPD).exists():
            raise RuntimeError("slapd missing: run scripts/setup.sh (Debian slapd, ldap-utils)")
        (self.dir / "db").mkdir(exist_ok=True)
        if not self.ca.exists():
            make_certs(self.dir)
        (self.dir / "slapd.conf").write_text(_conf(self.dir))
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        log = open(self.dir / "slapd.log", "ab")
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(self.dir / "slapd.conf"), "-h", urls],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited:\n" + (self.dir / "slapd.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("slapd did not listen")
        (self.dir / "tree.ldif").write_text(_ldif())
        subprocess.run([LDAPADD, "-x", "-H", f"ldap://127.0.0.1:{self.port}", "-D", ROOT_DN,
                        "-w", ROOT_PW, "-f", str(self.dir / "tree.ldif")],
                       check=True, capture_output=True)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def method(self, tls: bool = False, **extra) -> dict:
        """A `type: ldap` method for this directory (search mode, memberOf groups)."""
        m = {
            "type": "ldap",
            "protocol": "ldaps" if tls else "ldap",
            # The certificate names 127.0.0.1 too (libldap and Node both verify it).
            "host": "127.0.0.1",
            "port": self.tls_port if tls else self.port,
            "bind_dn": SVC_DN, "bind_password": SVC_PW,
            "search_base": f"ou=people,{SUFFIX}",
            "user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))",
            "attributes": {"groups": "memberOf"},
            "max_failures": 3, "lockout_seconds": 60, "timeout_ms": 3000,
        }
        m.update(extra)
        return m
