"""Routes for tests: a valid route with overridable fields, and upstream servers on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from core.domain.gateway.route import AuthMode, BreakerPolicy, RateLimitPolicy, Route


def route(**fields: Any) -> Route:
    defaults: dict[str, Any] = {
        "name": "orders",
        "path_prefix": "/orders",
        "upstream_url": "http://127.0.0.1:9/",
        "methods": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
        "auth": AuthMode.NONE,
        "timeout_ms": 2000,
        "circuit_breaker": BreakerPolicy(failure_threshold=3, recovery_seconds=30),
    }
    defaults.update(fields)
    if isinstance(defaults.get("rate_limit"), tuple):
        defaults["rate_limit"] = RateLimitPolicy(*defaults["rate_limit"])
    return Route(**defaults)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: UpstreamServer

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.calls[parts.path] += 1
        self.server.seen.append(
            {"method": self.command, "path": self.path, "headers": list(self.headers.items())}
        )
        behaviour = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if behaviour == "drop":  # read, then closed without an answer (it crashed mid-request)
            self.close_connection = True
            return
        if behaviour == "slow":
            time.sleep(float(query.get("ms", ["500"])[0]) / 1000)
        if behaviour == "slowfill":
            time.sleep(0.2)
        if behaviour in {"big", "bigchunked"}:
            self._big(int(query.get("bytes", ["4096"])[0]), chunked=behaviour == "bigchunked")
            return
        if behaviour == "notmodified":  # a 304 states the length of the full answer
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", "4096")
            self.end_headers()
            return
        if behaviour == "unsized" and self.command == "HEAD":  # its GET would come chunked
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            return
        status = 200
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        if behaviour == "fail":
            status = 500
        elif behaviour == "status":  # the status the caller asks for (?code=NNN)
            status = int(query.get("code", ["200"])[0])
        elif behaviour == "nostore":
            headers.append(("Cache-Control", "no-store"))
        elif behaviour == "private":
            headers.append(("Cache-Control", "private, max-age=60"))
        elif behaviour == "nocache":
            headers.append(("Cache-Control", "no-cache"))
        elif behaviour == "vary":
            headers.append(("Vary", "Accept-Encoding"))
        elif behaviour == "varyon":  # an answer made for the field `?on=` names
            headers.append(("Vary", query["on"][0]))
        elif behaviour == "varyall":
            headers.append(("Vary", "*"))
        elif behaviour == "varycreds":  # an answer made for the caller's own credentials
            headers.append(("Vary", "Authorization, Cookie"))
        elif behaviour == "cookie":
            headers += [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")]
        elif behaviour == "platformcookies":  # the Django admin's own cookie names
            headers += [
                ("Set-Cookie", "sessionid=upstream-chosen; Path=/admin/"),
                ("Set-Cookie", "csrftoken=upstream-chosen; Path=/admin/"),
                ("Set-Cookie", "b=2; Path=/"),
            ]
        elif behaviour == "aged":  # held 40 s by a cache behind it
            headers.append(("Age", "40"))
        elif behaviour == "claims":  # what only the gateway may say of an answer
            headers += [("X-Cache", "HIT"), ("RateLimit-Remaining", "999")]
        elif behaviour == "hop":
            headers += [("Connection", "X-Secret-Hop"), ("X-Secret-Hop", "1"), ("X-End", "yes")]
        if behaviour == "flaky" and self.server.calls[parts.path] % 2 == 1:
            status = 503
        payload = json.dumps(
            {
                "method": self.command,
                "path": parts.path,
                "query": parts.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "call": self.server.calls[parts.path],
                "served_by": self.server.name,
            }
        ).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _big(self, size: int, *, chunked: bool) -> None:
        """`size` bytes of body, with a Content-Length or in 1 000-byte chunks."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if not chunked:
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(b"x" * size)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, size, 1000):
            piece = b"x" * min(1000, size - start)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


class UpstreamServer(ThreadingHTTPServer):
    """A real HTTP server on a loopback ephemeral port; behaviour chosen by the last segment."""

    daemon_threads = True

    def __init__(self, name: str = "upstream") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.calls: Counter[str] = Counter()
        self.seen: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> UpstreamServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def gunicorn_environ(raw_uri: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it: the request target as sent in RAW_URI, PATH_INFO
    and QUERY_STRING split from it (fragment dropped), the rest wsgiref's test defaults."""
    from wsgiref.util import setup_testing_defaults

    parts = urlsplit(raw_uri)
    environ = {
        "REQUEST_METHOD": method,
        "RAW_URI": raw_uri,
        "PATH_INFO": unquote(parts.path),
        "QUERY_STRING": parts.query,
        **extra,
    }
    setup_testing_defaults(environ)
    return environ


def refusing_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
