#!/usr/bin/env python3
"""Demo upstream for sso-filter, and the request recorder of the end-to-end suite.

Every request is recorded (method, path, headers in arrival order, body) and answered with a
page showing the identity headers the filter sent: HTML for browsers, JSON when the client asks
for `application/json`. Header values are decoded per docs/behaviour.md ("Identity headers to
the upstream"): a value starting with `UTF-8''` is an RFC 8187 ext-value (percent-encoded UTF-8),
`x-sso-roles`/`x-sso-groups` are comma-separated lists whose items may each be RFC 8187-encoded,
and `x-sso-attributes` is a JSON object.

Standard library only, so the demo runs with nothing installed:

    python3 demo/upstream.py --port 8081

The test suite imports this module and uses `make_server()` with its own `Recorder`.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Field name -> default header name (DESIGN.md §3 `identity_headers`, plus the assertion).
IDENTITY_HEADERS = {
    "login": "x-sso-login",
    "name": "x-sso-name",
    "email": "x-sso-email",
    "phone": "x-sso-phone",
    "roles": "x-sso-roles",
    "groups": "x-sso-groups",
    "org": "x-sso-org",
    "tenant": "x-sso-tenant",
    "tenant_name": "x-sso-tenant-name",
    "platform": "x-sso-platform",
    "method": "x-sso-method",
    "attributes": "x-sso-attributes",
    "assertion": "x-sso-assertion",
}
LIST_FIELDS = {"roles", "groups"}
EXT_PREFIX = "UTF-8''"


def decode_ext_value(value: str) -> str:
    """RFC 8187 ext-value `UTF-8''%E5%BC%A0` -> text; any other value is returned as is."""
    if value.startswith(EXT_PREFIX):
        return urllib.parse.unquote(value[len(EXT_PREFIX):], encoding="utf-8", errors="strict")
    return value


def decode_list(value: str) -> list[str]:
    """Comma-separated list whose items may each be RFC 8187-encoded."""
    return [decode_ext_value(item.strip()) for item in value.split(",") if item.strip() != ""]


def normalise_header_name(name: str) -> str:
    """Lower case with `_` equal to `-`, as the contract compares header names."""
    return name.lower().replace("_", "-")


def decode_identity(headers: list[tuple[str, str]]) -> dict:
    """Decoded identity from the default identity headers (only those present)."""
    by_name: dict[str, str] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), value)
    identity: dict = {}
    for field, header in IDENTITY_HEADERS.items():
        if header not in by_name:
            continue
        raw = by_name[header]
        try:
            if field in LIST_FIELDS:
                identity[field] = decode_list(raw)
            elif field == "attributes":
                identity[field] = json.loads(decode_ext_value(raw))
            elif field == "assertion":
                identity[field] = raw
            else:
                identity[field] = decode_ext_value(raw)
        except (ValueError, UnicodeDecodeError) as err:
            identity[field] = {"undecodable": raw, "error": str(err)}
    return identity


class Recorder:
    """Thread-safe list of the requests the upstream received, and of the request heads it
    received (recorded on arrival, before the body is read: a head whose body never completes
    still shows)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[dict] = []
        self._heads: list[dict] = []

    def add(self, entry: dict) -> None:
        with self._lock:
            self._requests.append(entry)

    def add_head(self, entry: dict) -> None:
        with self._lock:
            self._heads.append(entry)

    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    def heads(self) -> list[dict]:
        with self._lock:
            return list(self._heads)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._heads.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)


def _render_html(entry: dict, identity: dict, count: int) -> str:
    esc = html.escape
    rows = []
    for field in IDENTITY_HEADERS:
        if field not in identity:
            continue
        value = identity[field]
        if isinstance(value, list):
            cell = "<ul>" + "".join(f"<li>{esc(str(v))}</li>" for v in value) + "</ul>"
        elif isinstance(value, dict):
            cell = f"<pre>{esc(json.dumps(value, ensure_ascii=False, indent=1))}</pre>"
        else:
            cell = f"<pre>{esc(str(value))}</pre>"
        rows.append(f'<tr><th>{esc(IDENTITY_HEADERS[field])}</th>'
                    f'<td id="sso-{esc(field)}">{cell}</td></tr>')
    if rows:
        who = identity.get("login", "(no login header)")
        heading = f'Signed in as <span id="login">{esc(str(who))}</span>'
        table = "<table>" + "".join(rows) + "</table>"
    else:
        heading = "No identity headers (public path, or the filter is not in front)"
        table = ""
    header_rows = "".join(
        f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in entry["headers"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sso-filter demo upstream</title>
<style>body{{font-family:sans-serif;margin:2em}} th{{text-align:left;padding-right:1em;vertical-align:top}}
td pre{{margin:0;white-space:pre-wrap}} td ul{{margin:0;padding-left:1.2em}} code{{word-break:break-all}}</style></head>
<body>
<h1>{heading}</h1>
<p>{esc(entry["method"])} <code>{esc(entry["path"])}</code> &middot; request #{count} seen by the upstream.
<a href="/sso/userinfo">/sso/userinfo</a> &middot; <a href="/sso/logout">log out</a></p>
<h2>Identity (decoded)</h2>
{table}
<h2>All request headers as received</h2>
<table>{header_rows}</table>
</body></html>
"""


EMBED_PATH = "/public/embed"


def _render_embed(query: str) -> str | None:
    """A dashboard page that embeds protected pages in iframes, as HENGSHI's host pages do:
    `/public/embed?frames=oidc:4,cas:4` gives four iframes of `/frame/oidc/N?activeAuth=oidc`
    and four of CAS, each starting its own login at once. `None` for a malformed list."""
    spec = urllib.parse.parse_qs(query).get("frames", [""])[0]
    frames = []
    for part in filter(None, spec.split(",")):
        method, _, count = part.partition(":")
        if not re.fullmatch(r"[a-z0-9-]{1,32}", method) or not count.isdigit():
            return None
        frames += [(method, i) for i in range(min(int(count), 24))]
    tags = "\n".join(
        f'<iframe id="f{n}" title="{m} {i}" src="/frame/{m}/{i}?activeAuth={m}" '
        'width="320" height="220"></iframe>' for n, (m, i) in enumerate(frames))
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dashboards'
            f"</title></head><body><h1>Dashboards</h1>\n{tags}\n</body></html>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: with Nagle the body waits for the proxy's delayed
    # ACK of the head, 40 ms on every forwarded request.
    disable_nagle_algorithm = True
    server_version = "sso-filter-demo-upstream/1"
    quiet = True

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        if not self.quiet:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        headers = [(k, v) for k, v in self.headers.items()]
        recorder: Recorder = self.server.recorder  # type: ignore[attr-defined]
        recorder.add_head({"method": self.command, "path": self.path, "headers": headers,
                           "at": time.monotonic()})
        body = self._read_body()
        entry = {"method": self.command, "path": self.path, "headers": headers,
                 "body": body.decode("utf-8", "replace"), "at": time.monotonic()}
        recorder.add(entry)
        identity = decode_identity(headers)
        path, _, query = self.path.partition("?")
        embed = _render_embed(query) if path == EMBED_PATH else None
        if self.path == "/healthz":
            payload, ctype, status = b"ok\n", "text/plain; charset=utf-8", 200
        elif embed is not None:
            payload, ctype, status = embed.encode(), "text/html; charset=utf-8", 200
        else:
            accept = self.headers.get("Accept", "")
            if "application/json" in accept and "text/html" not in accept:
                payload = json.dumps({"method": self.command, "path": self.path,
                                      "identity": identity, "headers": headers},
                                     ensure_ascii=False).encode()
                ctype, status = "application/json", 200
            else:
                payload = _render_html(entry, identity, len(recorder)).encode()
                ctype, status = "text/html; charset=utf-8", 200
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def make_server(host: str = "127.0.0.1", port: int = 0, recorder: Recorder | None = None,
                quiet: bool = True) -> ThreadingHTTPServer:
    """A threaded server (not yet serving); `server.recorder` holds what it receives."""
    handler = type("BoundHandler", (Handler,), {"quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.recorder = recorder if recorder is not None else Recorder()  # type: ignore[attr-defined]
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, quiet=not args.verbose)
    print(f"demo upstream listening on http://{args.host}:{server.server_address[1]}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
