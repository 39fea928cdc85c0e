"""The default upstream client: libcurl through pycurl, one easy handle per thread and upstream.

Measured on the proxy path (docs/gateway.md, "Measurements"), a libcurl call costs less CPU than
the `http.client` pool: libcurl writes the request and reads the answer's framing in C, where
`http.client` does both in Python. libcurl's callbacks are plain `list.append`s (each one takes
the GIL back, which costs more with every thread of the worker busy), and the header block is
checked in one pass after the transfer. Each gateway thread keeps its own handle per upstream,
and each handle its kept-alive connection, so threads never share a connection.

A handle holds three descriptors (its socket and two eventfds of libcurl's), so handles are
released as nginx's `keepalive`/`keepalive_timeout` release idle connections: a thread keeps
at most `max_origins` of them (the least recently used goes), one idle `idle_seconds` is closed,
and so is one to an upstream no route uses any more (`retain`). Each thread's table has a lock
the thread holds for its call, so another thread (a sweep, the worker's housekeeping tick) only
ever closes handles of a thread that is between calls: a libcurl handle is never used by two
threads at once.

What libcurl would do by itself that a gateway must not is switched off or checked here:
- the answer's header block is checked (RFC 9110 field syntax, `http.client`'s 65 536-byte and
  100-header limits, a status from 100 to 599, no unasked `101`): anything else is a malformed
  answer, a connection failure (502), and its connection is closed;
- a kept-alive connection the upstream closed while idle is never written to (libcurl itself
  checks only after a second of idleness);
- libcurl silently sends a request again, on a new connection, when a kept-alive one dies
  before any answer. It sends each request once here (`_OneSend`): a repeat is the
  route's retry to make, counted against its `retries` (API.md: idempotent methods only, at
  most `retries` times), not a send more behind its back;
- no proxy from the environment; no `Expect: 100-continue`, `Accept: */*`, form
  `Content-Type` or `User-Agent` of libcurl's own; HTTP/1.1 only (no HTTP/2 over TLS); the
  path as sent (no dot-segment squashing); http and https only; no redirects, no decoding.
"""

from __future__ import annotations

import io
import re
import select
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import pycurl

from apps.gateway.upstream import (
    DEFAULT_MAX_BODY_BYTES,
    FIELD_NAME,
    FIELD_VALUE,
    MAX_HEADER_LINE,
    MAX_HEADERS,
    framed_once,
    valid_fields,
)
from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.ports import StoredResponse, UpstreamFailure, UpstreamRequest

_EXPECTING_BODY = frozenset({"POST", "PUT", "PATCH"})  # http.client sends them Content-Length: 0
# One field line as libcurl hands it over, by the same rules as the http.client pool's.
_FIELD_LINE = re.compile(f"({FIELD_NAME.pattern}):({FIELD_VALUE.pattern})\r?\n".encode("latin-1"))
_BLANK = b" \t"
_NOT_IN_URL = re.compile(rb"[\x00-\x20\x7f]")  # controls and spaces (RFC 3986 has none)
_END_OF_BLOCK = (b"\r\n", b"\n")
_AFTER_STATUS = (b" ", b"\r", b"\n")  # the three digits of a status code end the code
DEFAULT_IDLE_SECONDS = 60.0  # nginx's keepalive_timeout
DEFAULT_MAX_ORIGINS = 16  # handles per thread: 3 descriptors each
_SWEEP_EVERY_SECONDS = 1.0  # a call sweeps every thread's table at most this often


def _final_answer(lines: list[bytes]) -> tuple[int, list[tuple[str, str]]] | None:
    """The final answer's status and fields from every header line libcurl handed over
    (interim 1xx blocks, the final block, then a chunked body's trailers, which are not passed
    on), or None when the block is malformed or never ended. libcurl has already refused what
    breaks HTTP/1.1's framing (a line without a colon, an invalid or conflicting
    Content-Length, a status line that does not start `HTTP/1.x NNN`) and joined folded lines;
    an answer framed both ways, which libcurl reads by its chunks, is refused here."""
    status, final = 0, False
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line in _END_OF_BLOCK:
            if final:  # anything after it is a trailer
                return (status, fields) if framed_once(fields) else None
            continue
        if line.startswith(b"HTTP/"):
            if line[12:13] not in _AFTER_STATUS:  # libcurl reads "2000" and "200OK" as 200
                return None
            status = int(line[9:12])
            if not 100 <= status <= 599 or status == 101:  # 101: no upgrade was asked for
                return None
            final, fields = status >= 200, []
            continue
        match = _FIELD_LINE.fullmatch(line)
        if match is None or len(line) > MAX_HEADER_LINE or len(fields) >= MAX_HEADERS:
            return None
        fields.append((match[1].decode("ascii"), match[2].strip(_BLANK).decode("latin-1")))
    return None  # closed inside the header block, or after interim answers alone


def _refuse_rewind(offset: int, origin: int) -> int:
    """libcurl asks to rewind a body it already wrote, to send it again: never (`_OneSend`)."""
    return pycurl.SEEKFUNC_CANTSEEK


class _OneSend:
    """`PREREQFUNCTION`, called before each send of a transfer on its connection: the first
    goes; a second is libcurl resending after a kept-alive connection died before any answer,
    and is refused (a connection failure the use case may retry). Holds no reference to the
    handle: the callback would make a cycle that only the garbage collector breaks, and a
    thread that ends would leave its connections open until it ran."""

    __slots__ = ("sends",)

    def __init__(self) -> None:
        self.sends = 0

    def __call__(self, *_addresses: Any) -> int:
        self.sends += 1
        return pycurl.PREREQFUNC_OK if self.sends == 1 else pycurl.PREREQFUNC_ABORT


class _Handle:
    """A libcurl easy handle, whether it holds only the options every request shares, the
    count of its transfer's sends, and when its last call started (the owner's clock)."""

    __slots__ = ("clean", "curl", "one_send", "used")

    def __init__(self, curl: Any, now: float) -> None:
        self.curl = curl
        self.clean = False
        self.one_send = _OneSend()
        self.used = now


class _Table:
    """One thread's handles by origin, and the lock that thread holds while it calls."""

    __slots__ = ("__weakref__", "handles", "lock")

    def __init__(self) -> None:
        self.handles: dict[str, _Handle] = {}
        self.lock = threading.Lock()


class CurlUpstream:
    """`Upstream` on libcurl; answers larger than `max_body_bytes` are refused
    (`UpstreamFailure.TOO_LARGE`).

    Each thread keeps one easy handle per upstream origin, and each handle one kept-alive
    connection: a thread sends one request at a time, so one connection per upstream is all it
    can use, and the handle's socket is the one its next request to that upstream would take.
    A thread keeps at most `max_origins` handles, none idle longer than `idle_seconds` on
    `monotonic`'s clock (module docstring).
    """

    def __init__(
        self,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        max_origins: int = DEFAULT_MAX_ORIGINS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_body = max_body_bytes
        self._max_origins = max_origins
        self._idle = idle_seconds
        self._monotonic = monotonic
        self._local = threading.local()
        # Weak: a thread that ends drops its handles and their connections with its table.
        self._tables: weakref.WeakSet[_Table] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wanted: frozenset[str] | None = None  # None: no route table seen yet
        self._next_sweep = 0.0
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
        if _NOT_IN_URL.search(url):  # libcurl refuses them, a NUL with a ValueError
            return Err(UpstreamFailure.CONNECTION)
        fields = _header_lines(request.headers)
        if fields is None:
            return Err(UpstreamFailure.CONNECTION)
        origin = _origin(request.url)
        table = self._table()
        with table.lock:  # held for the call: no sweep closes this thread's handles meanwhile
            return self._call(table, origin, url, request, fields, timeout_seconds)

    def _call(
        self,
        table: _Table,
        origin: str,
        url: bytes,
        request: UpstreamRequest,
        fields: list[bytes],
        timeout_seconds: float,
    ) -> Result[StoredResponse, UpstreamFailure]:
        handle = self._handle(table, origin)
        curl = handle.curl
        lines: list[bytes] = []
        pieces: list[bytes] = []
        try:
            # Inside the try too: a handle closed from under this thread refuses every option
            # (a connection failure for this call; the thread starts afresh).
            self._prepare(handle, request, fields, timeout_seconds)
            handle.one_send.sends = 0
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.HEADERFUNCTION, lines.append)
            curl.setopt(pycurl.WRITEFUNCTION, pieces.append)
            curl.perform()
        except pycurl.error as error:
            if error.args[0] == pycurl.E_FILESIZE_EXCEEDED:
                return Err(UpstreamFailure.TOO_LARGE)
            if error.args[0] == pycurl.E_OPERATION_TIMEDOUT:
                return Err(UpstreamFailure.TIMEOUT)
            return Err(UpstreamFailure.CONNECTION)
        answer = _final_answer(lines)
        if answer is None:  # malformed: its connection may not carry another request
            _close(table, origin, handle)
            return Err(UpstreamFailure.CONNECTION)
        status, fields = answer
        return Ok(StoredResponse(status, tuple(fields), b"".join(pieces)))

    def _prepare(
        self, handle: _Handle, request: UpstreamRequest, fields: list[bytes], timeout: float
    ) -> None:
        """Every option but the URL and the callbacks. A GET without a body, nearly every
        proxied request, sets only what differs from the last one on a clean handle."""
        curl = handle.curl
        # libcurl checks a kept-alive connection for a close by the upstream only once it has
        # been idle for a second; one closed sooner would be written to, fail, and cost a
        # request that may not be sent twice. Checked here before every request instead.
        stale = _closed_by_peer(curl.getinfo(pycurl.ACTIVESOCKET))
        method, body = request.method, request.body
        plain = method == "GET" and body is None and not stale
        if not (plain and handle.clean):
            curl.reset()  # every option back to its default; the kept-alive connection stays
            self._shared_options(curl, head=method == "HEAD")
            curl.setopt(pycurl.PREREQFUNCTION, handle.one_send)
        handle.clean = plain
        curl.setopt(pycurl.TIMEOUT_MS, max(1, round(timeout * 1000)))
        curl.setopt(pycurl.HTTPHEADER, fields)
        if plain:
            return
        if stale:
            curl.setopt(pycurl.FRESH_CONNECT, 1)  # the closed one is dropped after the call
        if method == "HEAD":
            # Content in a HEAD has no meaning (RFC 9110 §9.3.2) and is not sent: told of a
            # body, libcurl sends a POST (CURLOPT_POST undoes NOBODY), or, as a custom "HEAD",
            # waits for the body the answer's Content-Length states.
            curl.setopt(pycurl.NOBODY, 1)
            return
        if method != "GET" or body is not None:
            curl.setopt(pycurl.CUSTOMREQUEST, method)
        if body is not None or method in _EXPECTING_BODY:
            payload = body or b""
            stream = io.BytesIO(payload)
            curl.setopt(pycurl.POST, 1)
            curl.setopt(pycurl.POSTFIELDSIZE_LARGE, len(payload))
            curl.setopt(pycurl.READFUNCTION, stream.read)
            curl.setopt(pycurl.SEEKFUNCTION, _refuse_rewind)

    def _shared_options(self, curl: Any, *, head: bool) -> None:
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROXY, "")  # never a proxy from http_proxy & co.
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.PATH_AS_IS, 1)
        curl.setopt(pycurl.MAXCONNECTS, 1)
        if not head:  # a HEAD answer's Content-Length states a body that never comes
            # Past the limit libcurl stops: at once on a Content-Length, else as the body comes.
            curl.setopt(pycurl.MAXFILESIZE_LARGE, self._max_body)
        if self._ca_file:
            curl.setopt(pycurl.CAINFO, self._ca_file)
        if self._ca_path:
            curl.setopt(pycurl.CAPATH, self._ca_path)

    def _table(self) -> _Table:
        table: _Table | None = getattr(self._local, "table", None)
        if table is None:
            table = self._local.table = _Table()
            with self._lock:
                self._tables.add(table)
        return table

    def _handle(self, table: _Table, origin: str) -> _Handle:
        """This thread's handle for `origin` (its lock held): the one it has, unless that sat
        idle too long; else a new one, the least recently used going past `max_origins`. At
        most once a second, first a sweep of every thread's table."""
        now = self._monotonic()
        if now >= self._next_sweep:
            self._sweep(now, held=table)
        handle = table.handles.get(origin)
        if handle is not None and now - handle.used < self._idle:
            handle.used = now
            return handle
        if handle is not None:
            _close(table, origin, handle)
        elif len(table.handles) >= self._max_origins:
            oldest = min(table.handles.items(), key=lambda item: item[1].used)
            _close(table, *oldest)
        handle = table.handles[origin] = _Handle(pycurl.Curl(), now)
        return handle

    def retain(self, upstream_urls: Iterable[str]) -> None:
        """Keep handles only to the origins of these upstream URLs (the route table's, on each
        reload): the others are closed now, or, in a thread mid-call, at a later sweep."""
        self._wanted = frozenset(_origin(url) for url in upstream_urls)
        self.sweep()

    def sweep(self) -> None:
        """Close the handles idle past the timeout, or to an origin no route uses, of every
        thread between calls (the worker's housekeeping tick)."""
        self._sweep(self._monotonic(), held=None)

    def _sweep(self, now: float, held: _Table | None) -> None:
        self._next_sweep = now + _SWEEP_EVERY_SECONDS
        with self._lock:
            tables = list(self._tables)
        for table in tables:
            if table is held:  # the caller's own: its lock is already held
                self._expire(table, now)
            elif table.lock.acquire(blocking=False):  # a thread mid-call is left alone
                try:
                    self._expire(table, now)
                finally:
                    table.lock.release()

    def _expire(self, table: _Table, now: float) -> None:
        wanted = self._wanted
        for origin, handle in list(table.handles.items()):
            if now - handle.used >= self._idle or (wanted is not None and origin not in wanted):
                _close(table, origin, handle)

    def close(self) -> None:
        """Close every thread's handles and their connections; threads start new ones after."""
        with self._lock:
            tables, self._tables = list(self._tables), weakref.WeakSet()
            self._local = threading.local()
        for table in tables:
            # A thread mid-call keeps its old table until the call ends; the table, no longer
            # the thread's, is then dropped and its handles closed with it.
            if table.lock.acquire(blocking=False):
                try:
                    for origin, handle in list(table.handles.items()):
                        _close(table, origin, handle)
                finally:
                    table.lock.release()


def _close(table: _Table, origin: str, handle: _Handle) -> None:
    """Close `handle`, and with it its connection, taking it out of `table` (its lock held)."""
    if table.handles.get(origin) is handle:
        del table.handles[origin]
    handle.curl.close()


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


def _header_lines(headers: tuple[tuple[str, str], ...]) -> list[bytes] | None:
    """The request's fields as libcurl takes them, and libcurl's own defaults switched off; None
    when a field breaks RFC 9110 (a CR or LF would end the field early and start another, so
    libcurl, which sends fields as given, must never see one)."""
    if not valid_fields(headers):
        return None
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
