"""An identity provider that answers late, or never: every request it receives is held until the
test releases it (then answered 503 with an HTML page), or until `max_hold` seconds pass (then the
connection is closed without an answer: a silent IdP, whose callout times out at the filter).

The request lifecycle tests (test_lifecycle.py) point every callout of the filter here, to keep a
callout pending exactly as long as they need:

    idp = HeldIdp().start()
    idp.arm()                     # a new gate: requests from now on wait on it
    ...                           # the filter sends a callout
    idp.wait_request(5)           # it arrived (the callout is pending at the filter)
    ...                           # send the rest of the request, look at the upstream
    idp.release()                 # the IdP answers now: the filter decides

Any path and method is accepted: it stands for every provider's endpoints (discovery, token,
CAS validation, SAML metadata, the Chinese providers' token and user APIs).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a released request gets: an HTTP error with a page, as a proxy in front of a provider
# that is down would send (no provider-specific error code: every method judges it "bad answer").
ANSWER = b"<html><body><h1>503 Service Unavailable</h1></body></html>"


class HeldIdp:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_hold: float = 10.0):
        self.max_hold = max_hold
        self.cond = threading.Condition()
        self.gate = threading.Event()
        self.gates: list[threading.Event] = [self.gate]
        self.seen: list[dict] = []
        idp = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "held-idp/1"

            def log_message(self, fmt, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                with idp.cond:
                    gate = idp.gate
                    idp.seen.append({"method": self.command, "path": self.path,
                                     "at": time.monotonic()})
                    idp.cond.notify_all()
                if not gate.wait(idp.max_hold):
                    # Never answered: the filter's deadline has passed long ago.
                    self.close_connection = True
                    return
                body = ANSWER
                try:
                    self.send_response(503)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the filter gave up (stream closed, deadline passed)

            do_GET = do_POST = do_PUT = do_HEAD = _serve

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "HeldIdp":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release_all()
        self.server.shutdown()
        self.server.server_close()

    def arm(self) -> None:
        """A new closed gate; forgets the requests seen so far."""
        with self.cond:
            self.gate = threading.Event()
            self.gates.append(self.gate)
            self.seen = []

    def wait_request(self, timeout: float = 5.0) -> dict | None:
        """The first request seen since `arm()`, waiting up to `timeout` for it."""
        with self.cond:
            self.cond.wait_for(lambda: self.seen, timeout)
            return self.seen[0] if self.seen else None

    def requests(self) -> list[dict]:
        with self.cond:
            return list(self.seen)

    def release(self) -> float:
        """Opens the current gate: held requests are answered now. Returns the time."""
        with self.cond:
            self.gate.set()
        return time.monotonic()

    def release_all(self) -> None:
        with self.cond:
            for gate in self.gates:
                gate.set()
