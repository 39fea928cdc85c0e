"""The default upstream client: libcurl through pycurl, one easy handle per thread and upstream.

Measured on the proxy path (docs/gateway.md, "Fourth pass"), a libcurl call costs about half the
CPU of the `http.client` pool (80 against 165 µs per call in-process, ~140 µs less per proxied
request under load): libcurl writes the request and parses the answer's framing in C, where
`http.client` does both in Python. Each gateway thread keeps its own handle per upstream, and each
handle its kept-alive connection, so threads never share or lock a connection.

What libcurl would do by itself that a gateway must not is switched off or checked here:
- the answer's header block is checked line by line as it arrives (RFC 9110 field syntax,
  `http.client`'s 65 536-byte and 100-header limits, a status from 100 to 599, no unasked
  `101`): anything else is a malformed answer, a connection failure (502);
- a kept-alive connection the upstream closed while idle is never written to (libcurl itself
  checks only after a second of idleness);
- libcurl silently sends a request again, on a new connection, when a kept-alive one dies
  before any answer. That is the rule for idempotent methods. A request whose method is not
  idempotent is never sent twice: a body it carries cannot be rewound once written, and one
  without a body goes on a new connection of its own;
- no proxy from the environment; no `Expect: 100-continue`, `Accept: */*`, form
  `Content-Type` or `User-Agent` of libcurl's own; HTTP/1.1 only (no HTTP/2 over TLS); the
  path as sent (no dot-segment squashing); http and https only; no redirects, no decoding.
"""

from __future__ import annotations

import io
import select
import ssl
import threading
from functools import partial
from typing import Any

import pycurl

from apps.gateway.upstream import (
    DEFAULT_MAX_BODY_BYTES,
    FIELD_NAME,
    FIELD_VALUE,
    MAX_HEADER_LINE,
    MAX_HEADERS,
)
from core.domain.gateway.route import IDEMPOTENT_METHODS
from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.ports import StoredResponse, UpstreamFailure, UpstreamRequest

_EXPECTING_BODY = frozenset({"POST", "PUT", "PATCH"})  # http.client sends them Content-Length: 0
_BLANK = " \t"
_ABORT = -1  # from a header or write callback: libcurl stops the transfer and drops the connection


class _Answer:
    """Collects one answer from libcurl's callbacks and checks its header block as it comes.

    libcurl hands over every line of every header block: interim (1xx) answers' blocks, the
    final one, then a chunked body's trailers. Only the final block's fields are kept.
    """

    __slots__ = (
        "fields",
        "final",
        "headers_done",
        "limit",
        "malformed",
        "pieces",
        "size",
        "status",
        "too_large",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fields: list[tuple[str, str]] = []
        self.pieces: list[bytes] = []
        self.size = 0
        self.status = 0
        self.final = False
        self.headers_done = False
        self.malformed = False
        self.too_large = False

    def header(self, raw: bytes) -> int | None:
        if self.headers_done:
            return None  # a trailer after a chunked body: never passed on
        line = raw.decode("latin-1")
        if len(line) > MAX_HEADER_LINE:
            return self._malformed()
        if line in ("\r\n", "\n"):  # the end of a header block
            if self.final:
                self.headers_done = True
            return None
        if line.startswith("HTTP/"):
            return self._status_line(line)
        # libcurl has refused what breaks HTTP/1.1's framing (a line without a colon, an
        # invalid or conflicting Content-Length) and joined folded lines; the rest is checked
        # here, as http.client's pool checks it.
        name, _, value = line.rstrip("\r\n").partition(":")
        value = value.strip(_BLANK)
        if not FIELD_NAME.fullmatch(name) or not FIELD_VALUE.fullmatch(value):
            return self._malformed()
        if len(self.fields) >= MAX_HEADERS:
            return self._malformed()
        if self.final:
            if name.lower() == "content-length" and value.isdigit() and int(value) > self.limit:
                self.too_large = True
                return _ABORT
            self.fields.append((name, value))
        return None

    def _status_line(self, line: str) -> int | None:
        status = int(line.split(" ", 2)[1])  # libcurl has checked "HTTP/1.x NNN"
        if not 100 <= status <= 599 or status == 101:  # 101: no upgrade was asked for
            return self._malformed()
        self.status = status
        self.final = status >= 200
        self.fields = []
        return None

    def write(self, piece: bytes) -> int | None:
        self.size += len(piece)
        if self.size > self.limit:
            self.too_large = True
            return _ABORT
        self.pieces.append(piece)
        return None

    def _malformed(self) -> int:
        self.malformed = True
        return _ABORT


def _rewind(stream: io.BytesIO, offset: int, origin: int) -> int:
    """libcurl sends an idempotent request again after a kept-alive connection died."""
    stream.seek(offset, origin)
    return pycurl.SEEKFUNC_OK


def _refuse_rewind(offset: int, origin: int) -> int:
    """libcurl asks to rewind a body it already wrote, to send it again: not for this method."""
    return pycurl.SEEKFUNC_CANTSEEK


class CurlUpstream:
    """`Upstream` on libcurl; answers larger than `max_body_bytes` are refused
    (`UpstreamFailure.TOO_LARGE`).

    Each thread keeps one easy handle per upstream origin, and each handle one kept-alive
    connection: a thread sends one request at a time, so one connection per upstream is all it
    can use, and the handle's socket is the one its next request to that upstream would take.
    """

    def __init__(self, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._max_body = max_body_bytes
        self._local = threading.local()
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        verify = ssl.get_default_verify_paths()  # the CA store Python's ssl module trusts
        self._ca_file, self._ca_path = verify.cafile, verify.capath

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]:
        if timeout_seconds <= 0:
            return Err(UpstreamFailure.TIMEOUT)
        try:
            url = request.url.encode("ascii")
        except UnicodeEncodeError:
            return Err(UpstreamFailure.CONNECTION)
        curl = self._handle(_origin(request.url))
        # libcurl checks a kept-alive connection for a close by the upstream only once it has
        # been idle for a second; one closed sooner would be written to, fail, and cost a
        # request that may not be sent twice. Checked here before every request instead.
        stale = _closed_by_peer(curl.getinfo(pycurl.ACTIVESOCKET))
        answer = _Answer(self._max_body)
        self._prepare(curl, request, url, timeout_seconds, answer)
        if stale:
            curl.setopt(pycurl.FRESH_CONNECT, 1)  # the closed one is dropped after the call
        try:
            curl.perform()
        except pycurl.error as error:
            if answer.too_large:
                return Err(UpstreamFailure.TOO_LARGE)
            if error.args[0] == pycurl.E_OPERATION_TIMEDOUT:
                return Err(UpstreamFailure.TIMEOUT)
            return Err(UpstreamFailure.CONNECTION)
        if not answer.headers_done:  # closed inside the header block, or after 1xx alone
            return Err(UpstreamFailure.CONNECTION)
        return Ok(StoredResponse(answer.status, tuple(answer.fields), b"".join(answer.pieces)))

    def _prepare(
        self, curl: Any, request: UpstreamRequest, url: bytes, timeout: float, answer: _Answer
    ) -> None:
        curl.reset()  # every option back to its default; the kept-alive connection stays
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROXY, "")  # never a proxy from http_proxy & co.
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.PATH_AS_IS, 1)
        curl.setopt(pycurl.MAXCONNECTS, 1)
        if self._ca_file:
            curl.setopt(pycurl.CAINFO, self._ca_file)
        if self._ca_path:
            curl.setopt(pycurl.CAPATH, self._ca_path)
        curl.setopt(pycurl.TIMEOUT_MS, max(1, round(timeout * 1000)))
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.HEADERFUNCTION, answer.header)
        curl.setopt(pycurl.WRITEFUNCTION, answer.write)
        curl.setopt(pycurl.HTTPHEADER, _header_lines(request.headers))
        method, body = request.method, request.body
        if method == "HEAD":
            curl.setopt(pycurl.NOBODY, 1)
        elif method != "GET" or body is not None:
            curl.setopt(pycurl.CUSTOMREQUEST, method)
        if body is not None or method in _EXPECTING_BODY:
            payload = body or b""
            curl.setopt(pycurl.POST, 1)
            curl.setopt(pycurl.POSTFIELDSIZE_LARGE, len(payload))
            stream = io.BytesIO(payload)
            curl.setopt(pycurl.READFUNCTION, stream.read)
            rewind = partial(_rewind, stream) if method in IDEMPOTENT_METHODS else _refuse_rewind
            curl.setopt(pycurl.SEEKFUNCTION, rewind)
        if method not in IDEMPOTENT_METHODS and not body:
            # Nothing to refuse a rewind of: a new connection, which libcurl never resends on.
            curl.setopt(pycurl.FRESH_CONNECT, 1)

    def _handle(self, origin: str) -> Any:
        handles: dict[str, Any] | None = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        curl = handles.get(origin)
        if curl is None:
            curl = handles[origin] = pycurl.Curl()
            with self._lock:
                self._handles.append(curl)
        return curl

    def close(self) -> None:
        """Close every thread's handles and their connections; threads start new ones after."""
        with self._lock:
            handles, self._handles = self._handles, []
            self._local = threading.local()
        for curl in handles:
            curl.close()


def _origin(url: str) -> str:
    """`scheme://authority` of an absolute URL: what a handle's connection is bound to."""
    end = url.find("/", url.find("//") + 2)
    return url if end < 0 else url[:end]


def _closed_by_peer(fd: int) -> bool:
    """Whether a kept-alive connection is readable while idle: the upstream closed it (or sent
    what nobody asked for), so it cannot carry a request. One zero-timeout poll."""
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _header_lines(headers: tuple[tuple[str, str], ...]) -> list[bytes]:
    """The request's fields as libcurl takes them, and libcurl's own defaults switched off."""
    lines = []
    present = set()
    for name, value in headers:
        present.add(name.lower())
        # "Name:" would tell libcurl to leave a field out; "Name;" sends it with no value.
        line = f"{name}: {value}" if value else f"{name};"
        lines.append(line.encode("latin-1"))
    lines.append(b"Expect:")  # the whole body is here: nothing to wait for
    if "accept" not in present:
        lines.append(b"Accept:")
    if "content-type" not in present:
        lines.append(b"Content-Type:")
    if "user-agent" not in present:  # pycurl's own names libcurl's version and build
        lines.append(b"User-Agent:")
    return lines
