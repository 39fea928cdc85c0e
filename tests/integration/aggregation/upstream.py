"""A real HTTP upstream on a loopback ephemeral port, for composite sources in tests and bench.

Paths (all GET):
  /json?delay_ms=N&status=S&name=X  JSON `{"name", "path", "delay_ms", ...}` after N ms
  /echo/<anything>?...              JSON of the raw path, query and request headers
  /text                             200 text/plain (not JSON)
  /big?bytes=N&status=S             a JSON string of N bytes (Content-Length given), status S
                                    (default 200)
  /big-chunked?bytes=N              the same, chunked (no Content-Length)
  /drip?chunks=N&every_ms=M&status=S  chunked JSON array trickling one chunk every M ms, under
                                    status S (default 200)
  /gzip?bytes=N&codings=C           a JSON string of N bytes under Content-Encoding C (default
                                    `gzip`; `gzip, gzip` twice over; see `encoded`)
  /hang?ms=N                        answers only after N ms (default 30 s) or when stopped
  /gather?group=G&parties=N&name=X  answers 200 `{"name": X}` once N calls of group G are all
                                    waiting here: calls that do not overlap never gather, and
                                    get 504 once the first has waited `ms` (default 30 s)
  /redirect?to=PATH                 302 to PATH on this server
  /drip-headers?every_ms=M          a status line, then one header line every M ms for as long
                                    as the client listens (30 s at most): headers never end
  /nothing?status=S                 status S (default 204) with no body at all
  /raw?body=B&encoding=E            B as it is, labelled JSON (and Content-Encoding E if given)
  /layers?n=N                       `{"x":1}` gzipped N times, `Content-Encoding: gzip` listed N
                                    times over six header lines (see `layered`)
  /cut?length=N                     200 with Content-Length N, half the body, then a reset
  /objects?bytes=N&name=X           a JSON array of `{}`s of about N bytes (X ignored: it makes
                                    URLs differ)
Every call is counted by path in `calls`, and logged as it arrived (path and query) in
`arrivals`; `peak` is the most calls it was answering at once. `Upstream.start(tls=True)` serves
HTTPS with a self-signed certificate nobody trusts.
"""

from __future__ import annotations

import functools
import gzip
import json
import socket
import ssl
import struct
import tempfile
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.factories.tls import self_signed_loopback


@functools.cache
def encoded(size: int, codings: str = "gzip") -> bytes:
    """The `/gzip` answer: a JSON string of `size` bytes, content-coded by `codings` in order
    (computed once per pair, so a test can build it before it measures anything)."""
    body = json.dumps("x" * size).encode()
    for coding in (name.strip() for name in codings.split(",")):
        if coding == "gzip":
            body = gzip.compress(body, 9)
        elif coding == "raw-deflate":  # deflate without zlib's wrapper, as some servers send it
            packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = packer.compress(body) + packer.flush()
        else:
            body = zlib.compress(body, 9)
    return body


@functools.cache
def layered(layers: int) -> bytes:
    """The `/layers` answer: `{"x":1}` gzipped `layers` times (built once per count)."""
    body = b'{"x":1}'
    for _ in range(layers):
        body = gzip.compress(body, 1)
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        return

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.active += 1
            self.server.peak = max(self.server.peak, self.server.active)
        try:
            self._answer()
        finally:
            with self.server.lock:
                self.server.active -= 1

    def _answer(self) -> None:
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        with self.server.lock:
            self.server.calls[split.path] += 1
            self.server.arrivals.append(self.path)
        if split.path == "/json":
            delay = int(query.get("delay_ms", "0"))
            if delay:
                time.sleep(delay / 1000)
            body = {"name": query.get("name", "json"), "delay_ms": delay, "extra": True}
            self._send(int(query.get("status", "200")), json.dumps(body).encode())
        elif split.path.startswith("/echo"):
            body = {
                "path": split.path,
                "raw_query": split.query,
                "query": query,
                "headers": {key.lower(): value for key, value in self.headers.items()},
            }
            self._send(200, json.dumps(body).encode())
        elif split.path == "/raw":  # the `body` query value, as it is, labelled JSON
            coding = {"Content-Encoding": query["encoding"]} if "encoding" in query else {}
            self._send(200, query.get("body", "").encode(), headers=coding)
        elif split.path == "/layers":
            layers = int(query.get("n", "3000"))
            lines = [", ".join(["gzip"] * len(part)) for part in _sixths(layers)]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            for line in lines:
                self.send_header("Content-Encoding", line)
            self.send_header("Content-Length", str(len(layered(layers))))
            self.end_headers()
            try:
                self.wfile.write(layered(layers))
            except OSError:  # the client refused it at its headers
                self.close_connection = True
        elif split.path == "/cut":
            length = int(query.get("length", "1000"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(b"[" + b"1," * (length // 4))
            self.wfile.flush()
            # SO_LINGER 0: closing sends a reset, not the end of the stream.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif split.path == "/objects":
            count = max(1, (int(query.get("bytes", "1000")) - 1) // 3)
            self._send(200, b"[" + b"{}," * (count - 1) + b"{}]")
        elif split.path == "/nothing":
            status = int(query.get("status", "204"))
            self.send_response(status)
            if status != 204:  # a 204 has no length at all (RFC 9110)
                self.send_header("Content-Length", "0")
            self.end_headers()
        elif split.path == "/text":
            self._send(200, b"<html>not json</html>", "text/html")
        elif split.path == "/deep":
            levels = int(query.get("levels", "10"))
            self._send(200, b"[" * levels + b"]" * levels)
        elif split.path == "/big":
            body = json.dumps("x" * int(query.get("bytes", "1000"))).encode()
            try:
                self._send(int(query.get("status", "200")), body)
            except OSError:  # the client stopped reading: expected for answers it refuses
                self.close_connection = True
        elif split.path == "/gzip":
            codings = query.get("codings", "gzip")
            body = encoded(int(query.get("bytes", "1000")), codings)
            try:
                header = codings.replace("raw-deflate", "deflate")
                self._send(200, body, headers={"Content-Encoding": header})
            except OSError:  # the client stopped reading: expected for answers it refuses
                self.close_connection = True
        elif split.path == "/big-chunked":
            self._chunked([json.dumps("x" * int(query.get("bytes", "1000"))).encode()])
        elif split.path == "/drip":
            chunks = int(query.get("chunks", "10"))
            every = int(query.get("every_ms", "100")) / 1000
            parts = [b"[", *([b"1,"] * (chunks - 1)), b"1]"]
            self._chunked(parts, every=every, status=int(query.get("status", "200")))
        elif split.path == "/redirect":
            location = self.server_url(query.get("to", "/json"))
            self._send(302, b'{"moved": true}', headers={"Location": location})
        elif split.path == "/drip-headers":
            self._drip_headers(int(query.get("every_ms", "50")) / 1000)
        elif split.path == "/gather":
            gathering = self.server.gathering(query["group"], int(query["parties"]))
            try:
                gathering.wait(int(query.get("ms", "30000")) / 1000)
            except threading.BrokenBarrierError:  # timed out, or the server stopped
                self._send(504, b'{"gathered": false}')
                return
            self._send(200, json.dumps({"name": query.get("name", "gather")}).encode())
        elif split.path == "/hang":
            self.server.released.wait(int(query.get("ms", "30000")) / 1000)
            self._send(200, b"{}")
        else:
            self._send(404, b'{"error": "not found"}')

    def _drip_headers(self, every: float) -> None:
        self.close_connection = True
        ends = time.monotonic() + 30
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while time.monotonic() < ends and not self.server.released.wait(every):
                self.wfile.write(b"X-Drip: 1\r\n")
                self.wfile.flush()
        except OSError:  # the client hung up: what a client with a deadline does
            return

    def server_url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def _chunked(self, parts: list[bytes], every: float = 0.0, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for part in parts:
                if every:
                    time.sleep(every)
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client gave up: expected for drips past a deadline
            self.close_connection = True


def _sixths(count: int) -> list[range]:
    """`range(count)` in six parts (fewer when shorter)."""
    step = max(1, -(-count // 6))
    return [range(start, min(count, start + step)) for start in range(0, count, step)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        return  # clients that give up early (timeouts, oversized bodies) are expected here

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: Counter[str] = Counter()
        self.arrivals: list[str] = []
        self.active = self.peak = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.gatherings: dict[str, threading.Barrier] = {}

    def gathering(self, group: str, parties: int) -> threading.Barrier:
        with self.lock:
            return self.gatherings.setdefault(group, threading.Barrier(parties))


class Upstream:
    """Start with `Upstream.start()`; `url(path)` builds URLs; `stop()` releases hangs."""

    def __init__(self, *, tls: bool = False) -> None:
        self._server = _Server()
        self.scheme = "https" if tls else "http"
        self.certificate = ""  # PEM, with tls
        if tls:
            context, self.certificate = _self_signed()
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @classmethod
    def start(cls, *, tls: bool = False) -> Upstream:
        upstream = cls(tls=tls)
        upstream._thread.start()
        return upstream

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def calls(self) -> Counter[str]:
        return self._server.calls

    @property
    def arrivals(self) -> list[str]:
        with self._server.lock:
            return list(self._server.arrivals)

    @property
    def peak(self) -> int:
        return self._server.peak

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.released.set()
        for gathering in list(self._server.gatherings.values()):
            gathering.abort()
        self._server.shutdown()
        self._server.server_close()


def _self_signed() -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and that
    certificate (PEM)."""
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = self_signed_loopback(Path(folder))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context, cert_file.read_text()
