"""The upstream HTTP client pooled in Python: keep-alive HTTP/1.1 connections per upstream host.

The gateway's default client is libcurl (`apps/gateway/upstream_curl.py`), measured at half
the CPU per call. `HttpClientUpstream` is the pure-Python fallback: `http.client` connections
in a small per-host pool (GATEWAY_UPSTREAM_CLIENT=http.client; it costs about half the CPU of
urllib3 and a third of httpx per call, docs/gateway.md). Neither follows redirects or decodes
bodies; retries are the use case's business. The header-field rules and limits here are
shared with the libcurl client, and so are the idle connections' limits: at most `max_origins`
upstreams with idle connections (the least recently used go), none idle longer than
`idle_seconds`, none to an upstream no route uses any more (`retain`).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import re
import select
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.ports import StoredResponse, UpstreamFailure, UpstreamRequest

_Origin = tuple[str, str, int]
_Idle = tuple[float, http.client.HTTPConnection]  # when it was checked in, and the connection
_SWEEP_EVERY_SECONDS = 1.0  # a checkout sweeps the whole pool at most this often
# RFC 9110 field names and values, as gunicorn checks them before they reach the client: an
# upstream header that breaks them makes the answer malformed (502), not a server error.
FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")
MAX_HEADER_LINE = 65536  # http.client's limits on a header line and on the number of headers
MAX_HEADERS = 100
# Errors that mean a kept-alive connection was closed by the upstream. Before the request was
# written it cannot have been read: sent once on a fresh connection, still its first send.
# After, the upstream may have read it: a connection failure, which the use case retries only
# as the route allows (API.md: idempotent methods, at most `retries` times), as libcurl's client
# does; an idle connection the upstream closed is left out of the pool before it is used
# (`_closed_by_peer`), so that is rarely the case.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class _ResponseHeaders:
    """A response's header block as `http.client` reads it (`get`, `get_all`, `items`)."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self._items:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str, default: Any = None) -> Any:
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted] or default

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


def _read_header_block(fp: Any) -> _ResponseHeaders:
    """Header lines up to the blank line, with http.client's limits; obs-folded lines joined."""
    items: list[tuple[str, str]] = []
    while True:
        line = fp.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n"):
            return _ResponseHeaders(items)
        if not line:  # closed before the blank line: a broken answer, not an empty header block
            raise http.client.IncompleteRead(b"")
        if len(items) >= MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        text = line.decode("iso-8859-1")
        if text[0] in " \t":
            if items:  # obs-fold (RFC 9112 §5.2): a continuation of the previous value
                name, value = items[-1]
                items[-1] = (name, f"{value} {_field_value(text)}")
            continue
        name, colon, value = text.partition(":")
        if colon:
            if not FIELD_NAME.fullmatch(name):
                raise http.client.HTTPException("malformed header field name")
            items.append((name, _field_value(value)))


def _field_value(raw: str) -> str:
    value = raw.strip(" \t\r\n")
    if not FIELD_VALUE.fullmatch(value):
        raise http.client.HTTPException("malformed header field value")
    return value


class _ReadsByDeadline(io.RawIOBase):
    """A socket's reads, each waiting at most what is left until `deadline`.

    A timeout per read never runs out on an upstream that sends a byte now and then: a header
    line dripped for ever, or interim answers (102 Processing) one after another, held the
    call, and the request's thread, for as long as the upstream went on.
    """

    def __init__(self, raw: Any, sock: Any, deadline: float) -> None:
        self._raw, self._sock, self._deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer outlasted the call's deadline")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._raw.close()
        super().close()


class _LeanResponse(http.client.HTTPResponse):
    """`http.client`'s response with a lean header parser, read by the call's deadline.

    The standard one runs every response's headers through the `email` package's feed
    parser, which was the largest CPU cost of the proxy hop after the socket waits
    (docs/gateway.md). The rest of `begin` is the standard library's, unchanged.
    """

    def __init__(self, sock: Any, *args: Any, deadline: float | None = None, **kwargs: Any):
        super().__init__(sock, *args, **kwargs)
        if deadline is not None:
            self.fp = io.BufferedReader(_ReadsByDeadline(self.fp.detach(), sock, deadline))

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:  # skip interim answers (100 Continue, 103 Early Hints, ...)
            version, status, reason = self._read_status()
            if not 100 <= status < 200:
                break
            if status == http.client.SWITCHING_PROTOCOLS:  # never asked for: no Upgrade is sent
                raise http.client.HTTPException("unexpected 101 Switching Protocols")
            _read_header_block(self.fp)
        if status > 599:
            raise http.client.HTTPException("status code out of range")
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = _read_header_block(self.fp)  # type: ignore[assignment]
        transfer_encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(transfer_encoding and transfer_encoding.lower() == "chunked")
        self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        lengths = self.headers.get_all("content-length") or []
        if len({value.strip() for value in lengths}) > 1:  # RFC 9112 §6.3: unrecoverable
            raise http.client.HTTPException("conflicting Content-Length values")
        if transfer_encoding is not None and lengths:  # framed both ways (`framed_once`)
            raise http.client.HTTPException("Content-Length beside Transfer-Encoding")
        if transfer_encoding is not None and not is_chunked_alone(
            self.headers.get_all("transfer-encoding") or []
        ):  # a coding the gateway does not undo (`framed_once`)
            raise http.client.HTTPException("a transfer coding other than chunked")
        length = lengths[0] if lengths else None
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if status in (204, 304) or 100 <= status < 200 or self._method == "HEAD":  # type: ignore[attr-defined]
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True


class _Connection(http.client.HTTPConnection):
    response_class = _LeanResponse


class _TLSConnection(http.client.HTTPSConnection):
    response_class = _LeanResponse


DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_READ_PIECE = 64 * 1024


def valid_fields(headers: tuple[tuple[str, str], ...]) -> bool:
    """Whether every request field keeps to RFC 9110: a CR or LF in one would end it early and
    start a field of the client's choosing upstream; a client never sends one through gunicorn,
    but what reaches a client is checked here, whoever built it."""
    return all(
        FIELD_NAME.fullmatch(name) and FIELD_VALUE.fullmatch(value) for name, value in headers
    )


def framed_once(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether an answer is framed one way only, and a way the gateway reads.

    `Transfer-Encoding` beside `Content-Length` may be an attempt at response splitting (RFC
    9112 §6.1). Read by its chunks, the rest of what the upstream framed by its length would
    stay on the kept-alive connection and become the next caller's answer. A coding other than
    `chunked` alone (`gzip`, `identity`, `chunked` twice) is read until the close (§6.3) and
    would reach the client still coded, with `Transfer-Encoding` dropped as hop-by-hop. Either
    answer is malformed (502), as nginx has it, and its connection is closed."""
    names, codings = set(), []
    for name, value in headers:
        lowered = name.lower()
        names.add(lowered)
        if lowered == "transfer-encoding":
            codings.append(value)
    return not codings or ("content-length" not in names and is_chunked_alone(codings))


def is_chunked_alone(codings: list[str]) -> bool:
    """Whether the `Transfer-Encoding` lines of an answer name `chunked` and nothing else."""
    return len(codings) == 1 and codings[0].strip().lower() == "chunked"


class _TooLarge(Exception):
    """The answer's body exceeds the limit (the connection is dropped, not reused)."""


def _read_body(response: http.client.HTTPResponse, limit: int, sock: Any, deadline: float) -> bytes:
    """The whole body by the deadline, or `_TooLarge` past `limit` bytes (known from
    Content-Length at once). Each read waits at most what is left of the call's budget, so an
    upstream that sends its body slowly, a byte at a time, still times out at the deadline."""
    if response.length is not None and response.length > limit:
        raise _TooLarge
    pieces, size = [], 0
    while response.length != 0 and not response.isclosed():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the body outlasted the call's deadline")
        if sock is not None:
            sock.settimeout(remaining)
        piece = response.read1(_READ_PIECE)
        if not piece:
            break
        size += len(piece)
        if size > limit:
            raise _TooLarge
        pieces.append(piece)
    body = b"".join(pieces)
    if response.length:  # the upstream closed before its Content-Length was read
        raise http.client.IncompleteRead(body, response.length)
    response.close()  # done: the connection may carry the next request
    return body


class HttpClientUpstream:
    """`Upstream` on `http.client` with a LIFO pool of idle connections per origin; answers
    larger than `max_body_bytes` are refused (`UpstreamFailure.TOO_LARGE`). Idle connections
    are kept for at most `max_origins` origins and `idle_seconds` on `monotonic`'s clock."""

    def __init__(
        self,
        pool_size: int = 16,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        max_origins: int = 16,
        idle_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool_size = pool_size
        self._max_body = max_body_bytes
        self._max_origins = max_origins
        self._idle_seconds = idle_seconds
        self._monotonic = monotonic
        self._idle: dict[_Origin, deque[_Idle]] = {}
        self._lock = threading.Lock()
        self._wanted: frozenset[_Origin] | None = None  # None: no route table seen yet
        self._next_sweep = 0.0
        self._tls = ssl.create_default_context()

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]:
        if not valid_fields(request.headers):
            return Err(UpstreamFailure.CONNECTION)
        parts = urlsplit(request.url)
        origin = _origin(parts)
        target = parts.path or "/"
        if parts.query or "?" in request.url:  # an empty query (`/x?`) is sent as it came
            target += "?" + parts.query
        headers = dict(_joined(request.headers))
        deadline = time.monotonic() + timeout_seconds
        for attempt in range(2):
            # A request a stale kept-alive connection never took goes on a new connection: the
            # other idle ones are as old and may have been closed by the upstream too.
            left = deadline - time.monotonic()
            if left <= 0:
                return Err(UpstreamFailure.TIMEOUT)
            connection, reused = self._checkout(origin, left, reuse=attempt == 0)
            written = False
            try:
                connection.request(request.method, target, body=request.body, headers=headers)
                written = True
                connection.response_class = functools.partial(  # type: ignore[misc]
                    _LeanResponse, deadline=deadline
                )
                response = connection.getresponse()
                body = _read_body(response, self._max_body, connection.sock, deadline)
            except _TooLarge:
                connection.close()
                return Err(UpstreamFailure.TOO_LARGE)
            except _STALE:
                connection.close()
                if reused and not written:
                    continue  # the upstream closed a kept-alive connection: never sent yet
                return Err(UpstreamFailure.CONNECTION)
            except TimeoutError:
                connection.close()
                return Err(UpstreamFailure.TIMEOUT)
            except (OSError, http.client.HTTPException, UnicodeError):  # UnicodeError: a bad host
                connection.close()
                return Err(UpstreamFailure.CONNECTION)
            if response.will_close:
                connection.close()
            else:
                self._checkin(origin, connection)
            return Ok(StoredResponse(response.status, tuple(response.headers.items()), body))
        return Err(UpstreamFailure.CONNECTION)

    def _checkout(
        self, origin: _Origin, timeout: float, *, reuse: bool = True
    ) -> tuple[http.client.HTTPConnection, bool]:
        while reuse:
            now = self._monotonic()
            with self._lock:
                expired = self._expire(now) if now >= self._next_sweep else []
                idle = self._idle.get(origin)
                used, connection = idle.pop() if idle else (0.0, None)
            _close_all(expired)
            if connection is None:
                break
            if (
                now - used < self._idle_seconds
                and connection.sock is not None
                and not _closed_by_peer(connection.sock)
            ):
                connection.sock.settimeout(timeout)
                return connection, True
            connection.close()
        scheme, host, port = origin
        if scheme == "https":
            return _TLSConnection(host, port, timeout=timeout, context=self._tls), False
        fresh = _Connection(host, port, timeout=timeout)
        return fresh, False

    def _checkin(self, origin: _Origin, connection: http.client.HTTPConnection) -> None:
        now = self._monotonic()
        evicted: list[_Idle] = []
        with self._lock:
            idle = self._idle.get(origin)
            if idle is None:
                if len(self._idle) >= self._max_origins:  # the least recently used goes
                    oldest = min(self._idle, key=lambda key: _last_use(self._idle[key]))
                    evicted.extend(self._idle.pop(oldest))
                idle = self._idle[origin] = deque()
            kept = len(idle) < self._pool_size
            if kept:
                idle.append((now, connection))
        _close_all(evicted)
        if not kept:
            connection.close()

    def retain(self, upstream_urls: Iterable[str]) -> None:
        """Keep idle connections only to the origins of these upstream URLs (the route
        table's, on each reload); the others are closed."""
        wanted = set()
        for url in upstream_urls:
            # A stored URL that bypassed the route checks must not fail the table's reload.
            with contextlib.suppress(ValueError):
                wanted.add(_origin(urlsplit(url)))
        self._wanted = frozenset(wanted)
        self.sweep()

    def sweep(self) -> None:
        """Close the idle connections past the timeout, or to an origin no route uses (the
        worker's housekeeping tick)."""
        now = self._monotonic()
        with self._lock:
            expired = self._expire(now)
        _close_all(expired)

    def _expire(self, now: float) -> list[_Idle]:
        """Take out what `sweep` closes (the lock held); the caller closes it outside."""
        self._next_sweep = now + _SWEEP_EVERY_SECONDS
        expired: list[_Idle] = []
        for origin in list(self._idle):
            idle = self._idle[origin]
            if self._wanted is not None and origin not in self._wanted:
                expired.extend(idle)
                idle.clear()
            while idle and now - idle[0][0] >= self._idle_seconds:  # oldest first (LIFO)
                expired.append(idle.popleft())
            if not idle:
                del self._idle[origin]
        return expired

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            _close_all(idle)


def _origin(parts: SplitResult) -> _Origin:
    return (parts.scheme, parts.hostname or "", parts.port or _default_port(parts.scheme))


def _last_use(idle: deque[_Idle]) -> float:
    return idle[-1][0] if idle else float("-inf")


def _close_all(idle: Iterable[_Idle]) -> None:
    for _, connection in idle:
        connection.close()


def _closed_by_peer(sock: Any) -> bool:
    """Whether an idle connection is readable: the upstream closed it (or sent what nobody
    asked for), so it cannot carry a request. One zero-timeout poll."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _joined(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Request headers with repeated names folded into one comma-separated value."""
    merged: dict[str, tuple[str, str]] = {}
    for name, value in headers:
        key = name.lower()
        if key in merged:
            merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
        else:
            merged[key] = (name, value)
    return list(merged.values())
