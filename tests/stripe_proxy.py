"""A thin proxy in front of a fake Stripe server (localstripe), for tests: it logs every request with
the moment it arrived, and honours ``Idempotency-Key`` as Stripe documents it, which localstripe does
not:

- a POST with a key already used by this API key, with the same endpoint and parameters, gets the first
  response again (with ``Idempotent-Replayed: true``), and nothing reaches the server;
- the same key with other parameters gets a 400 ``idempotency_error``;
- the same key while the first request is still running gets a 409 ``idempotency_error``;
- a result is kept only once the endpoint ran (a 409 or 429 is not kept); GET and DELETE ignore keys.

It listens on 127.0.0.1 at a free port, on threads of the test process. ``hold`` keeps each request
in flight that long before it reaches the server; ``latency`` holds each reply back after the server
has answered (and the request is logged), so that a client killed meanwhile loses a reply to a
request that took effect.
"""

import dataclasses
import http.client
import http.server
import json
import threading
import time
import urllib.parse

FORWARDED_HEADERS = ("Authorization", "Content-Type", "Stripe-Version", "Idempotency-Key", "User-Agent")


class _QuietServer(http.server.ThreadingHTTPServer):
    block_on_close = False  # a reply held back for a client that was killed is not waited for

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request (the crash tests do that on purpose)


@dataclasses.dataclass(frozen=True)
class Logged:
    at: float  # time.time() when the request arrived
    method: str
    path: str
    query: dict
    idempotency_key: str
    status: int
    replayed: bool = False
    response: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)


def _error(status: int, message: str) -> tuple[int, dict, bytes]:
    body = json.dumps({"error": {"type": "idempotency_error", "message": message}}).encode()
    return status, {"Content-Type": "application/json"}, body


class StripeProxy:
    def __init__(self, upstream: str, *, idempotency: bool = True, hold: float = 0.0, latency: float = 0.0):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.idempotency, self.hold, self.latency = idempotency, hold, latency
        self.log: list[Logged] = []  # each request once its reply is sent
        self.answered: list[tuple[str, str]] = []  # (method, path) as soon as the server has answered
        self._saved: dict[tuple[str, str], tuple[tuple, tuple[int, dict, bytes]]] = {}
        self._running: dict[tuple[str, str], tuple] = {}
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "StripeProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self, method: str | None = None, path: str | None = None) -> list[Logged]:
        with self._lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    # One request.

    def _forward(self, method: str, target: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(method, target, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "request-id")}
            return response.status, kept, payload
        finally:
            conn.close()

    def _forward_slowly(self, method: str, target: str, headers: dict, body: bytes):
        if self.hold:
            time.sleep(self.hold)  # the server is still working on it
        response = self._forward(method, target, headers, body)
        with self._lock:
            self.answered.append((method, urllib.parse.urlsplit(target).path))
        return response

    def handle(self, method: str, target: str, headers, body: bytes) -> tuple[int, dict, bytes, bool]:
        key = headers.get("Idempotency-Key", "")
        forwarded = {name: headers[name] for name in FORWARDED_HEADERS if headers.get(name)}
        if not (self.idempotency and key and method == "POST"):
            return (*self._forward_slowly(method, target, forwarded, body), False)
        scope = (headers.get("Authorization", ""), key)
        request = (
            method,
            urllib.parse.urlsplit(target).path,
            tuple(sorted(urllib.parse.parse_qsl(body.decode()))),
        )
        with self._lock:
            if scope in self._running:
                return (
                    *_error(
                        409,
                        "There is currently another in-progress request using this Stripe "
                        "API key and idempotency key. Please try again later.",
                    ),
                    False,
                )
            if scope in self._saved:
                first, response = self._saved[scope]
                if first != request:
                    return (
                        *_error(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            f"parameters they were first used with. Try using a key other "
                            f"than '{key}' if you meant to execute a different request.",
                        ),
                        False,
                    )
                status, kept, payload = response
                return status, {**kept, "Idempotent-Replayed": "true"}, payload, True
            self._running[scope] = request
        try:
            status, kept, payload = self._forward_slowly(method, target, forwarded, body)
        except Exception:
            with self._lock:
                del self._running[scope]
            raise
        with self._lock:
            del self._running[scope]
            if status not in (409, 429):
                self._saved[scope] = (request, (status, kept, payload))
        return status, kept, payload, False

    def _handler(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, headers, payload, replayed = proxy.handle(
                        self.command, self.path, self.headers, body
                    )
                except OSError:
                    status, headers, payload, replayed = 502, {}, b"", False
                parts = urllib.parse.urlsplit(self.path)
                try:
                    response = json.loads(payload) if payload else {}
                except ValueError:
                    response = {}
                with proxy._lock:
                    proxy.log.append(
                        Logged(
                            at=arrived,
                            method=self.command,
                            path=parts.path,
                            query=dict(urllib.parse.parse_qsl(parts.query or body.decode(errors="replace"))),
                            idempotency_key=self.headers.get("Idempotency-Key", ""),
                            status=status,
                            replayed=replayed,
                            response=response if isinstance(response, dict) else {},
                        )
                    )
                if proxy.latency:
                    time.sleep(proxy.latency)  # the server has answered; the reply is on its way
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

        return Handler


def most_in_one_second(moments: list[float]) -> int:
    """The most requests that arrived within any one second ([t, t + 1) from any arrival t)."""
    moments = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moments[first] <= moment - 1:
            first += 1
        most = max(most, last - first + 1)
    return most
