"""The gunicorn worker the platform runs: gthread, plus keep-alive lingering and deadlines.

Slow clients (slowloris) take no thread: gthread gave a connection a thread at its first byte,
and the thread read the rest of the request with no timeout. Here a plain-TCP HTTP/1.x
connection gets a thread only once its request head and its body (as the head frames it:
`Content-Length`, or chunked to the end of its trailer section) have all arrived
(`RequestScan`): until then the poller holds it and reads what comes into `conn.head_bytes`
(read, not peeked at: bytes left in the socket would close its receive window at ~128 KB, and
the poller would find it readable with nothing new), and the parser gets those bytes with the
connection. A head not complete `GUNICORN_REQUEST_HEAD_TIMEOUT` (10 s) after its first byte, or
a body with nothing more for `GUNICORN_REQUEST_BODY_TIMEOUT` (30 s), is answered 408
`request_timeout` from the main thread. A client that sent `Expect: 100-continue` is told to go
on when the poller starts waiting for its body (gunicorn's own 100 is then not sent; when the
socket takes none of it, the connection goes to a thread, whose gunicorn sends it; when it takes
part, the thread sends the rest). A chunked body whose chunk sizes pass the platform's largest
body limit, or whose framing passes twice that and 64 KiB, is answered 413 `payload_too_large`
by the poller, which then closes the connection (a thread would read it to its end); one whose
framing cannot become valid (a bare LF or CR, a size that is not one) is answered 400 by the
poller as soon as the bytes prove it (gunicorn, on a thread, would wait for a CRLF). A
`Content-Length` over that limit, a head gunicorn refuses from what it holds (no Host in
HTTP/1.1, a field name that is not a token, too many fields, a control character, Host or
Content-Type twice), bodies past MAX_HELD_BODY_BYTES held by the worker in all, and whatever
does not frame a body the usual way go to a thread at once, without a 100, as before (it
refuses them: 400, 413 without reading the body, 431, 501). Once a request is on a thread, the
socket's receive and send timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`: `GUNICORN_REQUEST_BODY_TIMEOUT`)
bound each wait for the client: the rest of a body that was not held, an answer the client
stops reading. TLS and HTTP/2 connections are gthread's as before.

A gthread worker hands every kept-alive connection back to its main thread's poller after each
response, and the next request on it comes back through the poller and the thread pool: three
thread wake-ups per request (measured ~0.3-0.5 ms on 2 cores, about the time the gateway itself
takes; docs/gateway.md). `LingeringThreadWorker` lets the pool thread that just answered keep
serving its connection, waiting up to `GUNICORN_KEEPALIVE_LINGER_MS` (default 1000; 0 switches
it off) for the next request, for as long as every other connection has a thread: as soon as a
connection is queued with no thread free to take it, the thread that has lingered longest hands
its connection back to the poller and takes the queued one. Requests gunicorn
cannot parse (a malformed `Content-Length`, an oversized request line or header block) are
refused with a problem document, like every other error of the platform, instead of gunicorn's
HTML page, and so is an HTTP/1.1 request without a Host header (RFC 9112 §3.2), which gunicorn
lets through (two Host lines it refuses itself), and so is a transfer coding besides `chunked`
(501), which gunicorn accepts without decoding. `close` among other `Connection` options ends
the connection after the answer, as a bare `close` does (gunicorn heard only the latter). A
stopping worker wakes its lingering threads,
so they hand their connections back at once; a connection's keep-alive timeout starts when it
is back in the poller (after up to one linger). A connection the server ends is drained and
closed by the poller, not by gthread's blocking `close_graceful` on the main thread, which
stopped the whole worker for up to 2 s whenever a client kept its end open after a
`Connection: close` answer. A stopping worker that owns its listening socket (`reuse_port`)
hands it over as soon as another worker's socket listens on the same address: it accepts what is
queued on it, serves that, and closes it, so the kernel gives every new connection to the
others. gthread kept it open until the worker had finished (up to the graceful timeout), and the
connections the kernel kept queuing on it waited that long and were then reset. Everything else
(limits, graceful shutdown, HTTP/2) is gthread's own.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import re
import select
import selectors
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.body import CHUNK_EXT_RE
from gunicorn.http.message import (
    DEFAULT_MAX_HEADERFIELD_SIZE,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    TOKEN_RE,
)
from gunicorn.http.parser import _DRAIN_MAX_BYTES
from gunicorn.http2.negotiation import prior_knowledge_allowed
from gunicorn.workers.gthread import (
    DEFAULT_WORKER_DATA_TIMEOUT,
    STOP_KEEPALIVE_LINGER,
    ThreadWorker,
)

from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body
from apps.common.requestids import request_id_from, request_id_of
from apps.common.timeouts import BODY_TIMEOUT_DETAIL, REQUEST_TIMEOUT_CODE, socket_timed_out
from config.env import (
    env_float,
    env_gateway_max_body_bytes,
    env_max_request_body_bytes,
)

# gunicorn's refusals of a request it could not parse: (error, status, problem code). The order
# matters (first match wins); any other request-side parse error is a 400 `malformed_request`.
PARSE_REFUSALS: tuple[tuple[type[Exception], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "uri_too_long"),
    (http_errors.LimitRequestHeaders, 431, "headers_too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "not_implemented"),
    (http_errors.ExpectationFailed, 417, "expectation_failed"),
    (http_errors.ForbiddenProxyRequest, 403, "permission_denied"),
)
# Parse errors that are not the client's fault: gunicorn answers these (500) and logs them.
_NOT_THE_CLIENTS = (
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
    http_errors.ConfigurationProblem,
)
_MAX_DETAIL = 200
# How long a thread that just answered waits for the next request on its kept-alive connection
# (measured: docs/gateway.md, "Measurements"); any connection that needs a thread cuts it short.
DEFAULT_LINGER_MS = 1000
MAX_LINGER_MS = 60_000
# A connection the server ends: how long, and how many bytes, it reads what the client still sends
# before closing, so that unread bytes do not turn the close into a reset that cuts off the
# answer (gunicorn's `util.close_graceful`, whose limits these are).
CLOSE_DRAIN_SECONDS = 2.0
CLOSE_DRAIN_BYTES = 65536
# How long a stopping worker waits at most for another worker's socket on its address (a new
# worker binds right after the fork, before it loads the application), looking this often from
# its event loop; past it, its own socket stays open until it has finished, as gthread has it.
HANDOVER_SECONDS = 5.0
HANDOVER_POLL_SECONDS = 0.01
_TCP_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}
_LISTEN = "0A"  # a listening socket's state in those tables
# Parse errors whose argument gunicorn gives as a field's name (upper-cased once it parsed it).
_NAMING_A_FIELD = (http_errors.InvalidHeader, http_errors.ObsoleteFolding)
_PARSED_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]{1,64}")
# A request's head and body. A connection gets a thread once its head has all arrived: the
# blank line that ends it is there, or gunicorn refuses it from what is there (a bare LF; more
# bytes than its limits allow, `head_limit`). What waits is read HEAD_READ_BYTES at a time.
HEAD_END = b"\r\n\r\n"
_BARE_LF = re.compile(rb"(?<!\r)\n")
# The one empty line RFC 9112 §2.2 allows before a request line (gunicorn skips it), or its start.
EMPTY_LINE = (b"\r", b"\r\n")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")  # gunicorn's VERSION_RE
HEAD_READ_BYTES = 65536  # a read of a head (the parser's first read, ahead of it)
MAX_HEAD_BYTES = 1 << 20
DEFAULT_HEAD_TIMEOUT_S = 10  # from the head's first byte; several retransmissions of a segment
DEFAULT_BODY_TIMEOUT_S = 30  # per wait for the client: a read of the body, a send of the answer
MAX_REQUEST_TIMEOUT_S = 3600
HEAD_TIMEOUT_REFUSAL = (408, REQUEST_TIMEOUT_CODE)
# A request's body, framed by its head, is waited for in the poller too, up to the platform's
# largest body limit (`MAX_REQUEST_BODY_BYTES`, `GATEWAY_MAX_BODY_BYTES`, read as
# config/settings reads them) and, over all the connections a worker holds, MAX_HELD_BODY_BYTES:
# past the latter, the connection gets a thread at once, as it did before. A Content-Length
# past the former goes to a thread at once too, whose application answers 413 without reading
# the body; a chunked body whose chunks pass it, or whose framing (size lines, extensions) takes
# more than twice it and FRAMING_SLACK_BYTES, is answered 413 by the poller itself: a thread
# would read it to its end, however slowly it came.
MAX_HELD_BODY_BYTES = 64 * 1024 * 1024
FRAMING_SLACK_BYTES = 64 * 1024
TOO_LARGE_CODE = "payload_too_large"  # the platform's 413 (apps/common/middleware.py, gateway)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# The fields of a head that frame its body (or ask for a 100 Continue first); a field gunicorn
# would refuse (a space before its colon, a bare LF) is not matched, and is its to refuse.
_FRAMING_FIELD = re.compile(rb"\r\n(content-length|transfer-encoding|expect):([^\r\n]*)", re.I)
_REQUEST_ID_FIELD = re.compile(rb"\r\nx-request-id:([^\r\n]*)", re.I)
_ODD_LINE = re.compile(rb"(?<!\r)\n|\r\n[ \t]")  # a bare LF, a folded line: gunicorn refuses
# A control character gunicorn refuses anywhere in a head: in a field value (RFC 9110 §5.5), a
# request line (its method and target checks); a bare CR included. HTAB is allowed in values.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
_HEX = re.compile(rb"[0-9A-Fa-f]+")  # gunicorn: `int(size, 16)` of any number of hex digits
# What a chunked body's framing (a chunk-size line, a trailer line) never holds, whatever follows:
# an LF without its CR, a CR without its LF (the byte after it is there), a control character
# besides HTAB (RFC 9112 §7.1, RFC 9110 §5.5). gunicorn refuses each once it has the whole line,
# but waits for that line's CRLF, which may never come.
_ODD_FRAMING = re.compile(rb"(?<!\r)\n|\r[^\n]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BWS = re.compile(rb"[ \t]+")  # the BWS a chunk-size line allows before a `;`
_DIGITS = re.compile(rb"[0-9]+")  # RFC 9110's 1*DIGIT; gunicorn: `int()` of any number of them
# Fields gunicorn refuses to see twice (RFC 9110 §5.3; Content-Length is framing, checked apart).
_SINGLETONS = (b"host", b"content-type")
_TOKEN = re.compile(TOKEN_RE.pattern.encode())  # a field name gunicorn takes (RFC 9110 §5.6.2)
_HTTP_1 = (b"HTTP/1.1", b"HTTP/1.0")
_TCP = (socket.AF_INET, socket.AF_INET6)
_TIMEVAL = struct.Struct("@ll")  # struct timeval, for SO_RCVTIMEO / SO_SNDTIMEO


class MissingHost(http_errors.ParseException):  # type: ignore[misc]
    """An HTTP/1.1 request without a Host header, which RFC 9112 §3.2 says to refuse with 400."""

    def __str__(self) -> str:
        return "an HTTP/1.1 request needs a Host header"


def require_host(req: Any) -> None:
    """Raise `MissingHost` for an HTTP/1.1 request that lacks a Host header.

    Before this, Django and the gateway took such a request for one to the address the server
    binds (`SERVER_NAME`, in ALLOWED_HOSTS by default). HTTP/1.0 needs no Host (§3.2 is an
    HTTP/1.1 rule); HTTP/2 requests (`:authority`) never come through here.
    """
    if req.version >= (1, 1) and not any(name == "HOST" for name, _ in req.headers):
        raise MissingHost()


def require_chunked_only(req: Any) -> None:
    """Raise `UnsupportedTransferCoding` for a request with a transfer coding besides `chunked`.

    gunicorn takes the chunks off `gzip, chunked` (or `deflate`, `compress`, `identity` before
    them) but leaves the other coding on, so the body the proxy read and forwarded with a
    Content-Length was still gzip-coded, announced as plain content. RFC 9112 §6.1 has a server
    answer 501 to a coding it does not understand; nginx (so Kong) accepts `chunked` alone.
    """
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING" and value.strip(" \t").lower() != "chunked":
            raise http_errors.UnsupportedTransferCoding(value)


def parse_refusal(exc: BaseException) -> tuple[int, str, str] | None:
    """(status, code, detail) for a request gunicorn could not parse; None for other errors."""
    if not isinstance(exc, http_errors.ParseException) or isinstance(exc, _NOT_THE_CLIENTS):
        return None
    status, code = next(
        ((status, code) for kind, status, code in PARSE_REFUSALS if isinstance(exc, kind)),
        (400, "malformed_request"),
    )
    detail = f"The request is not valid HTTP/1.1: {exc}"[:_MAX_DETAIL]
    return status, code, detail


def loggable(exc: BaseException) -> str:
    """What the log says of a refused request: the kind of error, and the field it concerns
    when gunicorn names one. Never gunicorn's own message, which quotes the request line, a
    header line without its colon or an invalid name as sent: a token in a query, or an
    `Authorization Bearer …` line missing its colon, went to the log. The client gets the
    whole message in its problem document."""
    kind = type(exc).__name__
    field = getattr(exc, "hdr", None)
    if (
        isinstance(exc, _NAMING_A_FIELD)
        and isinstance(field, str)
        and _PARSED_NAME.fullmatch(field)
    ):
        return f"{kind}: {field}"
    return kind


def problem_answer(status: int, code: str, detail: str, request_id: str | None = None) -> bytes:
    """A complete HTTP/1.1 answer carrying a problem document; the connection closes after it.
    `request_id` is the request's (`request_id_of`), else a new one."""
    body = json.dumps(problem_body(status, code, detail)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id or request_id_from(None)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def linger_seconds() -> float:
    """`GUNICORN_KEEPALIVE_LINGER_MS` in seconds (0: hand every connection back at once)."""
    return (
        env_float(
            "GUNICORN_KEEPALIVE_LINGER_MS", DEFAULT_LINGER_MS, minimum=0, maximum=MAX_LINGER_MS
        )
        / 1000
    )


def request_head_timeout() -> float:
    """`GUNICORN_REQUEST_HEAD_TIMEOUT`: seconds a request head may take from its first byte (0:
    no limit, and a connection gets a thread at its first byte, as in gthread)."""
    return env_float(
        "GUNICORN_REQUEST_HEAD_TIMEOUT",
        DEFAULT_HEAD_TIMEOUT_S,
        minimum=0,
        maximum=MAX_REQUEST_TIMEOUT_S,
    )


def request_body_timeout() -> float:
    """`GUNICORN_REQUEST_BODY_TIMEOUT`: seconds a thread waits for the client once the head is
    parsed, per read of the body and per send of the answer (0: no limit, as in gthread)."""
    return env_float(
        "GUNICORN_REQUEST_BODY_TIMEOUT",
        DEFAULT_BODY_TIMEOUT_S,
        minimum=0,
        maximum=MAX_REQUEST_TIMEOUT_S,
    )


def head_limit(cfg: Any) -> int:
    """How many bytes of a head, its end still missing, gunicorn's parser refuses (414, 431)
    without reading more: the request line's and the header block's limits as it computes them
    (gunicorn/http/message.py), plus an optional empty line first; at most 1 MiB (a limit of 0,
    unlimited, counts as that)."""
    line = cfg.limit_request_line
    if line <= 0 or line >= MAX_REQUEST_LINE:
        line = MAX_REQUEST_LINE
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > MAX_HEADERS:
        fields = MAX_HEADERS
    field_size = cfg.limit_request_field_size
    if field_size <= 0:
        field_size = DEFAULT_MAX_HEADERFIELD_SIZE
    block = fields * (field_size + 2) + 4
    return int(min(MAX_HEAD_BYTES, 2 + line + 2 + block + 1))


def head_is_in(data: bytes | bytearray, limit: int, start: int = 0) -> bool:
    """Whether a thread can parse the request that `data` starts without waiting for more:
    the blank line ending its head is there, or gunicorn refuses it from these bytes alone (a
    bare LF, which it never takes for a line end; `limit` bytes and no end). Searched from
    `start` (the lookbehind still sees the byte before it)."""
    return (
        data.find(HEAD_END, start) >= 0
        or len(data) >= limit
        or _BARE_LF.search(data, start) is not None
        or request_line_refused(data)
    )


def request_line_refused(data: bytes | bytearray) -> bool:
    """Whether `data` starts with a whole request line (after the empty line allowed before it)
    that gunicorn refuses before it reads a header: not three parts with a version last, such
    as HTTP/0.9's `GET /`, which no header block follows. Laxer than gunicorn's own check, never
    stricter, so a request it would take still waits for its whole head. The line's end is
    looked for only as far as gunicorn's longest request line: a head trickling in is looked at
    on every arrival, and the search must not grow with it (a line that long waits)."""
    begin = 2 if data[:2] == b"\r\n" else 0
    end = data.find(b"\r\n", begin, begin + MAX_REQUEST_LINE + 2)
    if end < 0:
        return False
    parts = bytes(data[begin:end]).split(b" ", 2)
    return len(parts) != 3 or _VERSION.fullmatch(parts[2]) is None


def request_body_limit() -> int:
    """The platform's largest request body: `MAX_REQUEST_BODY_BYTES` (the API's, 1 MiB) or
    `GATEWAY_MAX_BODY_BYTES` (the proxy's; the former when unset), read as config/settings reads
    them. A larger body is refused (413) by whoever reads it, on a thread."""
    return max(env_max_request_body_bytes(), env_gateway_max_body_bytes() or 0)


@dataclass(frozen=True)
class RequestLimits:
    """What the poller waits for at most: a head's bytes (`head_limit`), a chunk-size line's
    and a trailer section's (gunicorn's own, gunicorn/http/body.py), a body's; and how many
    fields gunicorn takes in a head (`limit_request_fields`)."""

    head: int
    chunk_line: int
    body: int
    trailer: int
    fields: int

    @property
    def framed(self) -> int:
        """The most bytes a chunked body may take as sent, framing included, before its
        trailer section: twice the body limit and FRAMING_SLACK_BYTES."""
        return 2 * self.body + FRAMING_SLACK_BYTES


def request_limits(cfg: Any) -> RequestLimits:
    """The limits as gunicorn computes them for a request (gunicorn/http/message.py)."""
    field_size = cfg.limit_request_field_size
    if field_size <= 0:
        field_size = DEFAULT_MAX_HEADERFIELD_SIZE
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > MAX_HEADERS:
        fields = MAX_HEADERS
    return RequestLimits(
        head=head_limit(cfg),
        chunk_line=field_size,
        body=request_body_limit(),
        trailer=fields * (field_size + 2) + 4,  # its `max_buffer_headers`
        fields=fields,
    )


def chunk_size_or_refusal(line: bytes | bytearray) -> int | http_errors.ParseException:
    """The size a chunk-size line (without its CRLF) gives, read as gunicorn reads it (any
    number of hex digits, leading zeros included), or the error gunicorn refuses it with
    (gunicorn/http/body.py, `parse_chunk_size`, in its order)."""
    size, semicolon, extension = bytes(line).partition(b";")
    if semicolon:
        if b"\r" in extension:
            return http_errors.InvalidChunkExtension("bare CR not allowed")
        size = size.rstrip(b" \t")
    if not _HEX.fullmatch(size):
        return http_errors.InvalidChunkSize(size)
    if semicolon and not CHUNK_EXT_RE.fullmatch(b";" + extension):
        return http_errors.InvalidChunkExtension("invalid chunk extension")
    return int(size, 16)


class RequestScan:
    """How far the poller has looked at the bytes that arrived for one request, between their
    arrivals: `is_in` says whether a thread can serve it without waiting for the client.

    The head's end is searched for where the bytes grew. Once it is there, the head's framing
    fields are looked at, and for a head that frames a body, what refuses it cheaply
    (`head_refused`; gunicorn's parser still parses all of it, on a thread): a `Content-Length`
    body is in once that many bytes follow the head; a chunked body once its last chunk and its
    trailer section have, each chunk-size line looked at once and each chunk's data skipped.
    Whatever does not frame a body the usual way (no body; several framing fields; a length
    that is not digits, or over the body limit; a coding besides chunked; chunked in HTTP/1.0;
    a bare LF or a folded line; a head gunicorn refuses; a chunk-size line or a trailer section
    past gunicorn's limit; an `Expect` besides 100-continue) counts as in: a thread gets it at
    once, and answers as it did (400, 413, 417, 431, 501). A chunked body past the limits counts
    as in with `too_large` set: the poller answers it 413 itself. So does a chunked framing
    error, as soon as the bytes prove it, with `refusal` set (the error gunicorn refuses it
    with, once it has the whole line): the poller answers it 400 itself, as a thread would,
    since gunicorn waits for a line's CRLF, which a bare LF, a bare CR, a control character, or
    a size that no byte to come makes one (`zz`, `5 5`) never turns into a valid line. A bad
    extension is refused once its line ends (or passes gunicorn's limit)."""

    __slots__ = (
        "at",
        "body_at",
        "chunk_end",
        "end",
        "expects_continue",
        "extension",
        "limits",
        "refusal",
        "searched",
        "sizes",
        "too_large",
        "trailer",
    )

    def __init__(self, limits: RequestLimits) -> None:
        self.limits = limits
        self.searched = 0  # where the search for the head's (or the trailer section's) end resumes
        self.body_at = -1  # where the body starts, once the head is in and frames one
        self.end = -1  # a Content-Length body: where it ends
        self.at = -1  # a chunked body: where its next chunk-size line (or trailer section) starts
        self.chunk_end = -1  # a chunked body: where the data of the chunk being read ends
        self.sizes = 0  # a chunked body: its chunks' sizes so far
        self.trailer = False  # a chunked body: its last chunk is in
        self.expects_continue = False  # the client waits for a 100 Continue before its body
        self.too_large = False  # a chunked body past the limits: the poller answers 413
        # a chunked body: where the extensions of the size line start, once seen
        self.extension = -1
        # a chunked body that cannot become valid: the poller answers 400, refusing it with this
        self.refusal: http_errors.ParseException | None = None

    @property
    def poller_refuses(self) -> bool:
        """Whether the poller answers the request itself: a chunked body past the limits
        (`too_large`, 413) or whose framing cannot become valid (`refusal`, 400), which a
        thread would read to its end, or wait on for a line's end that never comes."""
        return self.too_large or self.refusal is not None

    @property
    def awaits_body(self) -> bool:
        """Whether the head is in and frames a body that is still to come."""
        return self.body_at >= 0

    def is_in(self, data: bytes | bytearray) -> bool:
        """Whether `data`, the bytes that arrived so far (only ever grown between calls), hold
        the whole request, or what a thread refuses without waiting for more."""
        if self.body_at < 0:
            end = data.find(HEAD_END, self.searched)
            if end < 0:
                if head_is_in(data, self.limits.head, self.searched):
                    return True
                self.searched = max(0, len(data) - len(HEAD_END) + 1)
                return False
            if not self._frames_a_body(data, end):
                return True
        return len(data) >= self.end if self.end >= 0 else self._chunks_in(data)

    def _frames_a_body(self, data: bytes | bytearray, end: int) -> bool:
        """Whether the head (ending at `end`) frames a body the poller can wait for; if so, set
        where it starts and how it ends. The hot path: a head without a framing field costs one
        search through it."""
        fields = _FRAMING_FIELD.findall(data, 0, end + 2)
        if not fields:
            return False
        expect: list[bytes] = []
        framing: list[tuple[bytes, bytes]] = []
        for name, value in fields:
            if name.lower() == b"expect":
                expect.append(value.strip(b" \t").lower())
            else:
                framing.append((name.lower(), value.strip(b" \t")))
        if len(framing) != 1 or any(value != b"100-continue" for value in expect):
            return False
        begin = 2 if data[:2] == b"\r\n" else 0
        line_end = data.find(b"\r\n", begin)
        version = bytes(data[line_end - len(b"HTTP/1.1") : line_end])
        if version not in _HTTP_1 or _ODD_LINE.search(data, 0, end + 2):
            return False
        name, value = framing[0]
        if name == b"content-length":
            length = content_length(value)
            if length is None or not 0 < length <= self.limits.body:
                return False  # a thread's: 400, or 413 without reading the body
            self.end = end + len(HEAD_END) + length
        elif value.lower() == b"chunked" and version == b"HTTP/1.1":
            self.at = end + len(HEAD_END)
        else:
            return False
        if head_refused(data, line_end, end, version, self.limits.fields):
            return False  # refused from the head alone: at once, without a 100 (RFC 9110 §10.1.1)
        self.body_at = end + len(HEAD_END)
        self.expects_continue = bool(expect) and version == b"HTTP/1.1"
        return True

    def _chunks_in(self, data: bytes | bytearray) -> bool:
        """Whether a chunked body is in, to the end of its trailer section; also True for what
        gunicorn refuses from a whole line (a chunk-size line, a trailer section past its
        limit), with `too_large` for a body past the limits (`_too_large`), and with `refusal`
        for framing no byte to come makes valid. Each byte of framing is looked at once, in the
        arrival that brought it (and a CR once more, with the byte after it)."""
        while not self.trailer:
            if self.chunk_end >= 0:
                terminator = bytes(data[self.chunk_end : self.chunk_end + 2])
                if terminator != b"\r\n"[: len(terminator)]:
                    return self._refuse(http_errors.ChunkMissingTerminator(terminator))
                if len(terminator) < 2:
                    return self._too_large(len(data))
                self.at, self.chunk_end = self.chunk_end + 2, -1
            start = max(self.at, self.searched)
            # Searched to the end of what is there: gunicorn, handed all of it at once, takes a
            # line longer than its limit when its end is there too.
            line_end = data.find(b"\n", start)
            odd = _ODD_FRAMING.search(data, start, len(data) if line_end < 0 else line_end + 1)
            if odd is not None:
                return self._refuse(http_errors.InvalidChunkSize(bytes(data[self.at : odd.end()])))
            if line_end < 0:
                if self._size_refused(data, start):
                    return True
                self.searched = max(self.at, len(data) - 1)  # a CR at the end: its LF to come
                return len(data) - self.at > self.limits.chunk_line or self._too_large(len(data))
            size = chunk_size_or_refusal(data[self.at : line_end - 1])
            if not isinstance(size, int):
                return self._refuse(size)
            self.sizes += size
            self.extension = -1
            if self.sizes > self.limits.body or self._too_large(line_end + 1):
                self.too_large = True
                return True
            if size:
                self.chunk_end = line_end + 1 + size
            else:
                self.trailer, self.at = True, line_end + 1
        if data[self.at : self.at + 2] == b"\r\n":
            return True  # no trailer field
        start = max(self.at, self.searched)
        end = data.find(HEAD_END, start)
        odd = _ODD_FRAMING.search(data, start, len(data) if end < 0 else end + len(HEAD_END))
        if odd is not None:
            bare_lf = odd.group().endswith(b"\n")
            reason = "bare LF as line terminator" if bare_lf else "bare CR or control character"
            return self._refuse(http_errors.InvalidHeader(reason))  # gunicorn's, for a bare LF
        if end >= 0:
            return True
        self.searched = max(self.at, len(data) - len(HEAD_END) + 1)
        return len(data) - self.at > self.limits.trailer  # gunicorn refuses it, on a thread

    def _size_refused(self, data: bytes | bytearray, start: int) -> bool:
        """Whether the start of a chunk-size line whose end is still to come, looked at from
        `start` on, can no longer become a size: hex digits, then BWS and a `;` (and its
        extensions) or the line's end; `refusal` says why."""
        if self.extension >= 0:
            return False  # an extension is refused, if it is, once its line is whole
        at = start
        if (at == self.at or data[at - 1] not in b" \t") and (digits := _HEX.match(data, at)):
            at = digits.end()
        if blank := _BWS.match(data, at):
            at = blank.end()
        if at == len(data):
            return False
        sized = _HEX.match(data, self.at, self.at + 1) is not None
        if data[at : at + 1] == b";" and sized:
            self.extension = at
            return False
        if data[at : at + 1] == b"\r":  # the line ends here, or is refused for a bare CR
            if sized and data[at - 1 : at] not in (b" ", b"\t"):
                return False
            return self._refuse(http_errors.InvalidChunkSize(bytes(data[self.at : at])))
        return self._refuse(http_errors.InvalidChunkSize(bytes(data[self.at : at + 1])))

    def _refuse(self, refusal: http_errors.ParseException) -> bool:
        """The chunked body cannot become valid: the poller refuses it (400) for `refusal`."""
        self.refusal = refusal
        return True

    def _too_large(self, sent_to: int) -> bool:
        """Whether the chunked body as sent, up to `sent_to`, takes more than `limits.framed`
        (many tiny chunks, long extensions): the poller refuses it as too large, rather than
        hand a thread a body whose rest is still to come (`too_large`). Deciding by the bytes up
        to the last chunk's size line gives one answer however the bytes arrive."""
        self.too_large = sent_to - self.body_at > self.limits.framed
        return self.too_large


def content_length(value: bytes) -> int | None:
    """A Content-Length value as gunicorn reads it: RFC 9110's `1*DIGIT`, leading zeros
    included; None for one it refuses (not digits alone; more digits than Python's `int` reads,
    `sys.get_int_max_str_digits`)."""
    if not _DIGITS.fullmatch(value):
        return None
    most = sys.get_int_max_str_digits()
    if 0 < most < len(value):
        return None
    digits = value.lstrip(b"0")
    if len(digits) > 19:  # past any limit: its value does not matter, only that it is large
        return 1 << 64
    return int(digits or b"0")


def head_refused(
    data: bytes | bytearray, line_end: int, end: int, version: bytes, most_fields: int
) -> bool:
    """Whether a thread refuses the head in `data` (its request line ending at `line_end`, its
    fields at `end`) from the head alone, for what is cheap to tell: a control character; a
    field line without a name before its colon, or a name that is not a token (gunicorn's
    `strip_header_spaces` off, its default); more fields than `limit_request_fields` (those
    with an underscore in their name gunicorn drops, uncounted); Host or Content-Type twice;
    an HTTP/1.1 request without Host (`require_host`). Only heads that frame a body pay for it:
    the refusal then comes at once, not after a body (or a 100 Continue) waited for."""
    if _CONTROL.search(data, 0, end + 2):
        return True
    fields = 0
    seen: set[bytes] = set()
    for line in bytes(data[line_end + 2 : end]).split(b"\r\n"):
        if fields >= most_fields:
            return True
        name, colon, _ = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return True
        if b"_" not in name:
            fields += 1
        name = name.lower()
        if name in _SINGLETONS:
            if name in seen:
                return True
            seen.add(name)
    return version == b"HTTP/1.1" and b"host" not in seen


def request_id_in(head: bytes | bytearray) -> str:
    """`request_id_from` the one `X-Request-ID` field of an unparsed head (a new id for none,
    several or a malformed one), as `request_id_of` reads parsed ones."""
    sent = _REQUEST_ID_FIELD.findall(head)
    value = sent[0].strip(b" \t").decode("latin-1") if len(sent) == 1 else None
    return request_id_from(value)


def tell_to_continue(conn: Any) -> bool:
    """Send the client the `100 Continue` it expects before its body, without waiting; whether
    the socket took all of it (a client that reads nothing may have left no room for it).

    gunicorn sends its own as the request reaches the application: once any of the poller's is
    sent, `conn.continued` leaves gunicorn's out, and `conn.continue_rest` is what the thread
    sends instead (a second whole 100 after part of one would corrupt the stream). When the
    socket took none of it, gunicorn's goes out from the thread as before."""
    try:
        sent = conn.sock.send(CONTINUE, socket.MSG_DONTWAIT)
    except OSError:  # no room, or a reset: the thread tries, or finds out
        return False
    if sent:
        conn.continued = True
        conn.continue_rest = CONTINUE[sent:]
    return sent == len(CONTINUE)


def read_ahead(conn: Any) -> bytes:
    """What gunicorn's parser already read from the connection and holds (pipelined bytes)."""
    parser = getattr(conn, "parser", None)
    return parser.unreader.buf.getvalue() if parser is not None else b""


def take_bytes(conn: Any) -> bytes | None:
    """Read what waits in the connection's socket, without waiting, onto `conn.head_bytes`:
    the bytes (b"" once the client closed), or None when nothing has arrived. Raises OSError."""
    try:
        data = conn.sock.recv(HEAD_READ_BYTES, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    conn.head_bytes += data
    return data


def closes_for_its_body(req: Any) -> bool:
    """gunicorn's `should_close` for a request, also true when gunicorn will close the
    connection for the request's body, so that the answer says so (`Connection: close`):
    - a read of the body failed (the body timeout, a reset): where the next request starts is
      unknown (a 408 for the timeout, RFC 9110 §15.5.9);
    - more of a Content-Length body is unread than gunicorn drains to reuse the connection
      (64 KiB), as for a 413, which refuses a body without reading it.
    gunicorn closed it either way, after an answer that said keep-alive.
    Also true when the client asked for the close among other options (`asks_to_close`)."""
    if type(req).should_close(req) or asks_to_close(req):
        return True
    body = req.body
    if body is None:
        return False
    unread = getattr(body.reader, "length", 0)  # a LengthReader's; chunked: not known
    return bool(
        body.failed or (isinstance(unread, int) and unread + body.buf.tell() >= _DRAIN_MAX_BYTES)
    )


def asks_to_close(req: Any) -> bool:
    """Whether a `Connection` field lists `close` (RFC 9110 §7.6.1: a list of options, any of
    which may be `close`). gunicorn looks at the first field only and takes a bare `close`
    alone, so `Connection: X-Trace, close` kept the connection open."""
    return any(
        name == "CONNECTION"
        and "close" in value.lower()
        and any(option.strip(" \t").lower() == "close" for option in value.split(","))
        for name, value in req.headers
    )


def set_io_timeouts(sock: socket.socket, seconds: float) -> None:
    """Bound each blocking read and send on `sock` (0: no bound). Kernel timeouts, not Python's
    `settimeout`: they survive gthread's `setblocking`, cost no `poll` per call, and a send
    times out only when the client took nothing for that long, not when a large answer takes
    longer than that in all (Python's timeout bounds a whole `sendall`). A read that times out
    raises BlockingIOError."""
    whole = int(seconds)
    value = _TIMEVAL.pack(whole, int((seconds - whole) * 1_000_000))
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def serve_while_kept_alive(
    handle: Callable[[Any], Any], conn: Any, next_request: Callable[[Any], bool]
) -> Any:
    """Run `handle(conn)`, then again for each next request `next_request(conn)` waits for.

    Stops at the first answer that does not keep the connection alive, on HTTP/2, or when
    `next_request` gives up (nothing arrived in time, or a thread is needed elsewhere); the
    last `handle` result goes back to gthread, which parks the connection in its poller.
    """
    keepalive = handle(conn)
    while keepalive is True and not conn.is_http2 and next_request(conn):
        keepalive = handle(conn)
    return keepalive


def next_request_arrives(conn: Any, seconds: float, wake_fd: int | None = None) -> bool:
    """Whether the connection has (or gets within `seconds`) bytes of a next request.

    With `wake_fd`, the wait also ends, with False, as soon as that descriptor turns readable:
    the worker's signal that another connection needs a thread, or that it is stopping. A
    wake-up wins over a request that arrives with it: the connection goes back to the poller,
    which queues it again at once, behind the connection that was waiting.
    """
    parser = getattr(conn, "parser", None)
    if parser is not None and parser.unreader.buf.getvalue():
        return True  # already read ahead (pipelined)
    # poll, not select: a busy worker's descriptors pass select's limit of 1 024.
    poller = select.poll()
    try:
        sock_fd = conn.sock.fileno()
        poller.register(sock_fd, select.POLLIN)
        if wake_fd is not None:
            poller.register(wake_fd, select.POLLIN)
        events = poller.poll(seconds * 1000)
    except (OSError, ValueError, OverflowError):
        return False
    ready = {fd for fd, _ in events}
    return sock_fd in ready and wake_fd not in ready


def listening_peers(family: int, inode: int) -> set[int] | None:
    """Inodes of the other sockets listening on the address of the socket `inode` listens on
    (Linux's /proc/net/tcp or tcp6); None when that cannot be read, or the socket is not there."""
    own, listening = None, []
    try:
        with open(_TCP_TABLES[family]) as table:
            next(table)  # the header
            for row in table:
                fields = row.split()
                if fields[3] != _LISTEN:
                    break  # listening sockets come first; the rest can be many
                if int(fields[9]) == inode:
                    own = fields[1]
                else:
                    listening.append((fields[1], int(fields[9])))
    except (OSError, LookupError, ValueError, StopIteration):
        return None
    if own is None:
        return None
    return {peer for address, peer in listening if address == own}


def mark(name: str) -> socket.socket:
    """A Unix socket bound to the abstract address `name`, which other processes (of the network
    namespace) see as long as it is open: with the process, at the latest."""
    marker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        marker.bind("\0" + name)
    except OSError:
        marker.close()
        raise
    return marker


def marked(name: str) -> bool:
    """Whether a process holds the mark `name` (False when that cannot be asked: out of
    descriptors, say; a stopping worker must not fail on its main thread for it)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            probe.connect("\0" + name)
    except OSError:
        return False
    return True


def _leaving_socket(inode: int) -> str:
    return f"gunicorn-handover socket {inode}"


def _peer(conn: Any) -> str:
    """The client's address, for a log line."""
    return conn.client[0] if isinstance(conn.client, tuple) else ""


def _wake(wake_fd: int) -> None:
    with contextlib.suppress(BlockingIOError):  # full: it is readable, which is enough
        os.write(wake_fd, b"!")


class LingeringThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker; a thread keeps a busy kept-alive connection (see module).

    A lingering thread waits on its connection and on a pipe of its own. When a connection is
    queued for the pool and no thread is free to take it, `enqueue_req` writes to the pipe of
    the thread that has lingered longest, which hands its connection back to the poller and so
    frees itself; a stopping worker wakes them all.

    A stopping worker hands over its sockets from its stop loop (gthread's, which runs while the
    worker has connections: the hand-over counts as one). It marks itself and each of its
    sockets as leaving first (`mark`), then closes each socket as soon as another socket that is
    not leaving listens on its address, after accepting what is queued on it. Marking before
    looking means that of two workers that stop at once, at least one sees the other leaving:
    they never both close counting on each other, leaving the address with no socket, whose
    connections would be refused until a new worker binds. A socket is left open until the end,
    as gthread does, when no other socket turns up within HANDOVER_SECONDS, or when no other
    worker of the master that is not leaving remains (one that could still bind: the master
    forks the new workers of a reload before it stops the old ones).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linger_seconds = linger_seconds()
        self.head_timeout = request_head_timeout()
        self.body_timeout = request_body_timeout()
        self.head_limit = head_limit(self.cfg)
        self.limits = request_limits(self.cfg)
        self._heads: deque[Any] = deque()  # connections waiting for the rest of a head, by deadline
        # Connections waiting for the rest of a body: (deadline, wait, connection), a heap. A
        # deadline moves with each arrival (`body_arrival`), and is looked at again when due.
        self._bodies: list[tuple[float, int, Any]] = []
        self._waits = itertools.count(1)  # tells one wait for a body from the next
        self._held = 0  # bytes held for the connections waiting for a body
        self._queued = 0  # connections submitted to the pool that no thread has picked up yet
        self._active = 0  # pool threads in `handle`: serving a connection or lingering on it
        self._yielding = 0  # lingering threads woken to free themselves, not yet out
        self._lingering: dict[int, int] = {}  # lingering thread → its wake pipe (oldest first)
        self._queued_lock = threading.Lock()
        self._wake_pipes = threading.local()
        self._closing: deque[Any] = deque()  # connections draining before their close, by deadline
        self._handover: dict[Any, int] | None = None  # listener → its inode, while handing over
        self._handover_began = False
        self._handover_deadline = 0.0
        self._worker_mark = ""
        self._marks: list[socket.socket] = []  # held until the process exits

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        # gthread stops accepting when the worker stops, and while it is at `worker_connections`.
        if not enabled and not self.alive and not self._handover_began:
            self._handover_began = True
            self._begin_handover()

    def _begin_handover(self) -> None:
        # A shared socket (no `reuse_port`) is the live workers' to accept from, and closing it
        # here changes nothing for them.
        if not self.cfg.reuse_port:
            return
        listeners = {}
        try:
            for listener in self.sockets:
                if listener.family in _TCP_TABLES:
                    listeners[listener] = os.fstat(listener.fileno()).st_ino
            if not listeners:
                return
            host, port = next(iter(listeners)).getsockname()[:2]
            self._worker_mark = f"gunicorn-handover worker {host} {port}"
            self._marks.append(mark(f"{self._worker_mark} {self.pid}"))
            self._marks.extend(mark(_leaving_socket(inode)) for inode in listeners.values())
        except OSError:
            return  # each socket is closed at the end, as gthread does
        self._handover = listeners
        self._handover_deadline = time.monotonic() + HANDOVER_SECONDS
        self.nr_conns += 1  # keeps gthread's stop loop running until the hand-over ends
        self._hand_over(listeners)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # gthread waits up to a second, then expires what is due (`murder_pending`): the wait
        # ends at the nearest head or body deadline instead, so a 408 goes out on time.
        if self._heads:
            timeout = min(timeout, max(0.0, self._heads[0].head_deadline - time.monotonic()))
        if self._bodies:
            timeout = min(timeout, max(0.0, self._bodies[0][0] - time.monotonic()))
        if self._handover is None:
            super().wait_for_and_dispatch_events(timeout)
            return
        super().wait_for_and_dispatch_events(min(timeout, HANDOVER_POLL_SECONDS))
        self._hand_over(self._handover)

    def _hand_over(self, listeners: dict[Any, int]) -> None:
        """Close each socket that another socket, not leaving, listens beside, once what is
        queued on it is accepted; end when none is left, at the deadline, or when no other
        worker could still take over (the rest then close at the end)."""
        for listener, inode in list(listeners.items()):
            peers = listening_peers(listener.family, inode)
            if peers is None:  # cannot tell
                del listeners[listener]
            elif any(not marked(_leaving_socket(peer)) for peer in peers):
                queued = self._accept_queued(listener)
                self.log.debug("Handed over %s (%d connections were queued)", listener, queued)
                listener.close()
                del listeners[listener]
        if listeners and time.monotonic() < self._handover_deadline and self._successor():
            return
        self._handover = None
        self.nr_conns -= 1

    def _accept_queued(self, listener: Any) -> int:
        """Accept what is queued on a socket about to close (gthread's accept; a stopping worker
        answers with `Connection: close`); how many."""
        before = self.nr_conns
        poller = select.poll()
        poller.register(listener.fileno(), select.POLLIN)
        try:
            while poller.poll(0):
                self.accept(listener)
        except OSError:  # out of descriptors: the rest are reset at the close, as before
            self.log.warning("Could not accept every connection queued on %s", listener)
        return self.nr_conns - before

    def _successor(self) -> bool:
        """Whether the master has another worker that is not leaving (it may not listen yet);
        True when its workers cannot be read."""
        try:
            with open(f"/proc/{self.ppid}/task/{self.ppid}/children") as children:
                pids = children.read().split()
        except OSError:
            return True
        return any(
            pid != str(self.pid) and not marked(f"{self._worker_mark} {pid}") for pid in pids
        )

    def enqueue_req(self, conn: Any) -> None:
        # Every connection comes to the pool through here, on the main thread: one whose request
        # head or body is not all there yet waits in the poller instead (`_heads`, `_bodies`).
        if self._guards_head(conn):
            if not self._request_arrived(conn):
                return  # the poller holds it until the rest comes
            conn.data_ready = True  # gthread's thread need not wait for a first byte
        self._submit(conn)

    def _submit(self, conn: Any) -> None:
        """Queue the connection for a pool thread, waking a lingering one if none is free."""
        with self._queued_lock:
            self._queued += 1
            if self._lingering and self._queued > self._free_threads():
                thread = next(iter(self._lingering))
                self._yielding += 1
                _wake(self._lingering.pop(thread))
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        with self._queued_lock:
            self._queued -= 1
            self._active += 1
        try:
            return serve_while_kept_alive(super().handle, conn, self._next_request)
        finally:
            with self._queued_lock:
                self._active -= 1

    def finish_request(self, conn: Any, fs: Any) -> None:
        # gthread closes an ended connection with `close_graceful`, which waits on the main
        # thread (up to 2 s) for the client to close its end: the poller does the waiting here.
        # Kept alive, deferred, failed (gthread closes at once) or TLS: gthread's own way.
        ended = fs.cancelled() or (fs.exception() is None and not fs.result())
        if self.cfg.is_ssl or not ended:
            super().finish_request(conn, fs)
            return
        self._end(conn)

    def _end(self, conn: Any) -> None:
        """Close a connection the server ended, from the poller: the FIN after the answer, then
        what the client still sends is read (`_drain`) until its end, or the caps."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # the FIN after the answer
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))
        except (OSError, ValueError):
            self._close(conn)
            return
        conn.timeout = time.monotonic() + CLOSE_DRAIN_SECONDS
        conn.drained = 0
        self._closing.append(conn)

    def _drain(self, conn: Any, _sock: Any = None) -> None:
        """Read what an ending connection's client still sends; close at its end or the cap."""
        try:
            while conn.drained < CLOSE_DRAIN_BYTES:
                data = conn.sock.recv(4096)
                if not data:
                    break
                conn.drained += len(data)
        except BlockingIOError:
            return  # nothing more for now: the poller calls again
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: Any) -> None:
        with contextlib.suppress(ValueError):
            self._closing.remove(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """gthread's expiry of deferred connections, of ending ones that drained too long, and
        of heads and bodies that did not arrive in time."""
        super().murder_pending()
        now = time.monotonic()
        while self._closing and self._closing[0].timeout <= now:
            self._close(self._closing[0])
        while self._heads and self._heads[0].head_deadline <= now:
            self._timed_out(self._heads[0])
        while self._bodies and self._bodies[0][0] <= now:
            _, wait, conn = heapq.heappop(self._bodies)
            if conn.body_wait != wait:
                continue  # that wait is over
            due = conn.body_arrival + self.body_timeout
            if due > now:  # bytes came meanwhile
                heapq.heappush(self._bodies, (due, wait, conn))
            else:
                self._timed_out(conn)

    def _cap_keepalive(self, deadline: float) -> None:
        # A stopping worker's idle new connections wait in `pending_conns` from their accept
        # (`_defer`), no longer in a thread that gave up after 5 s: capped like kept-alive ones.
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)

    def _guards_head(self, conn: Any) -> bool:
        """Whether the connection waits for its whole request, head and body, in the poller:
        plain TCP, HTTP/1.x (TLS bytes cannot be read for a head; an h2c preface is gunicorn's
        to read)."""
        return (
            self.head_timeout > 0
            and not self.cfg.is_ssl
            and not conn.is_http2
            and conn.sock.family in _TCP
            and not prior_knowledge_allowed(self.cfg, conn.client)
        )

    def _request_arrived(self, conn: Any) -> bool:
        """Whether the connection's request, head and body, is all there for a thread to read;
        if not, the poller holds it (as gthread's deferred ones, when it has sent nothing yet).

        What arrived is read here, not peeked at: bytes left in the socket would fill its
        receive buffer, and once the window closed (a head of ~128 KB) the poller would see it
        readable with nothing new. The request gathers in `conn.head_bytes` and goes to
        gunicorn's parser with the connection (`_hand_bytes`)."""
        buffered = read_ahead(conn)
        scan = RequestScan(self.limits)
        if buffered and scan.is_in(buffered):
            if scan.poller_refuses:
                self._refuse_body(conn, scan, buffered[: scan.body_at])
                return False
            return True  # pipelined: the next request is in the parser's buffer already
        try:
            data = self._gather(conn, buffered)
        except OSError:
            return self._hand_bytes(conn)  # reset: the thread finds out, as in gthread
        if data == b"":
            return self._hand_bytes(conn)  # closed: the thread finds out
        if scan.is_in(conn.head_bytes):
            if scan.poller_refuses:
                self._refuse_body(conn, scan, conn.head_bytes[: scan.body_at])
                return False
            return self._hand_bytes(conn)  # a whole request, or one a thread refuses at once
        if bytes(conn.head_bytes) in EMPTY_LINE:
            self._idle(conn)
            return False
        if not conn.head_bytes:
            if conn.initialized:  # readable yet empty: gthread's way
                return True
            self._defer(conn)
            return False
        if self._await(conn, scan):
            return False  # the poller holds it until the rest comes
        return self._hand_bytes(conn)

    @staticmethod
    def _gather(conn: Any, buffered: bytes) -> bytes | None:
        """Start `conn.head_bytes` with what the parser holds (`buffered`, taken from it), then
        read what waits in the socket onto it (`take_bytes`)."""
        if buffered:
            conn.parser.unreader.read()  # what it holds (no read from the socket)
        conn.head_bytes = bytearray(buffered)
        return take_bytes(conn)

    def _hand_bytes(self, conn: Any) -> bool:
        """Give the bytes gathered for a head to the connection's parser (made here for a new
        connection: plain TCP, HTTP/1.x, so it reads nothing), which reads them first."""
        gathered = getattr(conn, "head_bytes", None)
        if gathered:
            conn.init()
            conn.parser.unreader.unread(bytes(gathered))
        conn.head_bytes = bytearray()
        return True

    def _defer(self, conn: Any) -> None:
        """Park a new connection that has sent nothing yet, as gthread does after its thread
        waited 5 s for a first byte (and for as long in all: those 5 s, then the keep-alive; a
        stopping worker's, as its kept-alive ones, 2 s at most)."""
        wait = DEFAULT_WORKER_DATA_TIMEOUT + self.cfg.keepalive
        if not self.alive:
            wait = min(wait, STOP_KEEPALIVE_LINGER)
        conn.timeout = time.monotonic() + wait
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def _idle(self, conn: Any) -> None:
        """Park a connection that sent only the empty line allowed before a request line (old
        clients send one after a POST body): no request has begun, so it waits as an idle one,
        kept alive or new, not against the head's deadline. The parser gets the line."""
        kept_alive = conn.initialized
        self._hand_bytes(conn)
        if not kept_alive:
            self._defer(conn)
            return
        conn.set_timeout()  # gthread's keep-alive, as in its `finish_request`
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
        self.keepalived_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
        )

    def _await(self, conn: Any, scan: RequestScan) -> bool:
        """Hold a connection whose request is partly there in the poller until more arrive: a
        head up to its deadline, a body up to the body timeout between two arrivals. False when
        it cannot be held."""
        try:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._more, conn))
        except (OSError, ValueError, KeyError):
            return False
        conn.scan = scan
        conn.body_wait = None
        if scan.awaits_body:
            if self._await_body(conn):
                return True
            self._release(conn)
            return False
        conn.head_deadline = time.monotonic() + self.head_timeout
        self._heads.append(conn)
        return True

    def _await_body(self, conn: Any) -> bool:
        """Wait for the rest of a body whose head is in, unless the bytes held for bodies would
        pass MAX_HELD_BODY_BYTES; a client that expects it is told to go on (100 Continue), or
        the connection goes to a thread, when the socket does not take all of it at once."""
        held = len(conn.head_bytes)
        if self._held + held > MAX_HELD_BODY_BYTES:
            return False
        if conn.scan.expects_continue and not tell_to_continue(conn):
            return False
        self._held += held
        conn.held = held
        conn.body_wait = next(self._waits)
        conn.body_arrival = time.monotonic()
        if self.body_timeout > 0:
            deadline = conn.body_arrival + self.body_timeout
            heapq.heappush(self._bodies, (deadline, conn.body_wait, conn))
        return True

    def _more(self, conn: Any, _sock: Any = None) -> None:
        """More of a waiting request arrived, or the client closed: a thread, or wait on."""
        try:
            data = take_bytes(conn)
        except OSError:
            data = b""  # reset: the thread finds out
        if data is None:
            return  # woken with nothing to read
        if data:
            waited_for_body = conn.body_wait is not None
            if waited_for_body:
                conn.held += len(data)
                self._held += len(data)
                conn.body_arrival = time.monotonic()
            # Only the new bytes are searched: a trickled request costs no more per byte.
            if conn.scan.is_in(conn.head_bytes):
                if conn.scan.poller_refuses:
                    scan, head = conn.scan, conn.head_bytes[: conn.scan.body_at]
                    self._release(conn)
                    self._refuse_body(conn, scan, head)
                    return
            else:
                if waited_for_body:
                    if self._held <= MAX_HELD_BODY_BYTES:
                        return
                elif not conn.scan.awaits_body:
                    return  # the head is not all there
                else:  # the head is, its body is on its way
                    with contextlib.suppress(ValueError):
                        self._heads.remove(conn)
                    if self._await_body(conn):
                        return
        self._release(conn)
        self._hand_bytes(conn)
        conn.data_ready = True
        self._submit(conn)

    def _release(self, conn: Any) -> None:
        """The poller no longer holds the connection for its request."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if conn.body_wait is None:
            with contextlib.suppress(ValueError):
                self._heads.remove(conn)
        else:
            self._held -= conn.held
            conn.held = 0
            conn.body_wait = None  # its entry in `_bodies` is dropped when due
        conn.scan = None

    def _timed_out(self, conn: Any) -> None:
        """Answer 408 to a connection whose head did not arrive in time, or whose body stopped
        arriving for the body timeout, and end it."""
        if conn.body_wait is None:
            seconds, request_id = self.head_timeout, request_id_from(None)
            message = "Request head not complete within %g s from ip=%s request_id=%s"
            detail = f"The request head did not arrive within {seconds:g} s."
        else:  # its head is in: the client's id, as a thread's 408 keeps it
            seconds = self.body_timeout
            request_id = request_id_in(conn.head_bytes[: conn.scan.body_at])
            message = "Request body stopped arriving for %g s from ip=%s request_id=%s"
            detail = BODY_TIMEOUT_DETAIL
        self._release(conn)
        self.log.warning(message, seconds, _peer(conn), request_id)
        self._refuse(conn, *HEAD_TIMEOUT_REFUSAL, detail, request_id)

    def _refuse_body(self, conn: Any, scan: RequestScan, head: bytes | bytearray) -> None:
        """Answer a connection whose chunked body the poller refuses (`scan.poller_refuses`),
        413 or 400, and end it."""
        if scan.refusal is None:
            self._refuse_too_large(conn, head)
        else:
            self._refuse_malformed(conn, scan.refusal, head)

    def _refuse_malformed(
        self, conn: Any, refusal: http_errors.ParseException, head: bytes | bytearray
    ) -> None:
        """Answer 400 to a connection whose chunked framing cannot become valid (`RequestScan`),
        as a thread answers a request gunicorn could not parse (`handle_error`: the same
        document and log line, the client's `X-Request-ID`), and end it."""
        request_id = request_id_in(head)
        self.log.warning(
            "Invalid request from ip=%s: %s request_id=%s",
            _peer(conn),
            loggable(refusal),
            request_id,
        )
        status, code, detail = parse_refusal(refusal) or (400, "malformed_request", "")
        self._refuse(conn, status, code, detail, request_id)

    def _refuse_too_large(self, conn: Any, head: bytes | bytearray) -> None:
        """Answer 413 to a connection whose chunked body passed the limits (`RequestScan`), the
        platform's own document (apps/common/middleware.py, the gateway's), and end it. The
        limit it names is the largest the poller waits for (`limits.body`): which one applies,
        the API's or the proxy's, the application decides by the path, not known here."""
        request_id = request_id_in(head)
        limit = self.limits.body
        self.log.warning(
            "Request body over %d bytes refused from ip=%s request_id=%s",
            limit,
            _peer(conn),
            request_id,
        )
        self._refuse(
            conn, 413, TOO_LARGE_CODE, f"The request body exceeds {limit} bytes.", request_id
        )

    def _refuse(self, conn: Any, status: int, code: str, detail: str, request_id: str) -> None:
        """Answer a connection the poller holds with a problem document, without waiting for
        the client to read it, and end the connection."""
        with contextlib.suppress(OSError):
            conn.sock.setblocking(False)
            conn.sock.send(problem_answer(status, code, detail, request_id))
        self._end(conn)

    def handle_exit(self, sig: Any, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._end_lingers()

    def handle_quit(self, sig: Any, frame: Any) -> None:
        self.alive = False  # before the wake-ups, so no thread starts a linger after them
        self._end_lingers()
        super().handle_quit(sig, frame)

    def _end_lingers(self) -> None:
        """Wake every lingering thread (a stopping worker); takes no lock, for signal handlers."""
        for wake_fd in list(self._lingering.values()):
            _wake(wake_fd)

    def _next_request(self, conn: Any) -> bool:
        """Wait for the connection's next request while no other connection needs a thread."""
        if self.linger_seconds <= 0:
            return False
        try:
            wake_r, wake_w = self._wake_pipe()
        except OSError:  # out of descriptors: serve on, without lingering
            return False
        thread = threading.get_ident()
        with self._queued_lock:
            if not self._nobody_waits():
                return False
            self._lingering[thread] = wake_w
        try:
            # Checked again once registered: a stop signal's wake-ups (no lock) either see this
            # thread registered, or come after `alive` turned False and this check sees it.
            return (
                bool(self.alive)
                and next_request_arrives(conn, self.linger_seconds, wake_r)
                and self._request_in(conn)
            )
        finally:
            with self._queued_lock:
                if self._lingering.pop(thread, None) is None:  # `enqueue_req` took it
                    self._yielding -= 1
            with contextlib.suppress(BlockingIOError):  # empty, unless this thread was woken
                os.read(wake_r, 64)

    def _request_in(self, conn: Any) -> bool:
        """In a lingering thread: whether the next request, head and body, is all there (or the
        thread takes the connection as gthread would); a partial one goes back to the poller.

        The bytes are read, not peeked, and handed to the parser, which then reads them from
        its buffer: the usual request costs no system call more than in gthread (a peek was
        one more, with the GIL released and taken back around it, on every request)."""
        if not self._guards_head(conn):
            return True
        buffered = read_ahead(conn)
        scan = RequestScan(self.limits)
        if buffered and scan.is_in(buffered):
            # Pipelined: the next request is in the parser's buffer already. A body past the
            # limits, or badly framed, goes back to the poller (`finish_request` queues it),
            # which refuses it.
            return not scan.poller_refuses
        try:
            data = self._gather(conn, buffered)
        except OSError:
            data = b""  # a reset: the thread finds out, as in gthread
        whole = (
            data == b""  # closed: likewise
            or (data is None and not conn.head_bytes)  # woken with nothing: gthread's way
            or (scan.is_in(conn.head_bytes) and not scan.poller_refuses)
        )
        self._hand_bytes(conn)  # back to the parser: a thread reads them, or the poller holds
        return whole

    def _nobody_waits(self) -> bool:
        """Whether the worker runs and every queued connection has a free thread to take it."""
        return bool(self.alive) and self._queued <= self._free_threads()

    def _free_threads(self) -> int:
        """Pool threads outside `handle`, or woken to leave it (under `_queued_lock`)."""
        return int(self.cfg.threads) - self._active + self._yielding

    def _wake_pipe(self) -> tuple[int, int]:
        """This pool thread's own wake pipe (read end, write end), made on its first linger."""
        pipe: tuple[int, int] | None = getattr(self._wake_pipes, "pipe", None)
        if pipe is None:
            pipe = os.pipe()
            for fd in pipe:
                os.set_blocking(fd, False)
            self._wake_pipes.pipe = pipe
        return pipe

    def handle_request(self, req: Any, conn: Any) -> Any:
        # Raised here, they reach `handle_error` as a parse error would.
        require_host(req)
        require_chunked_only(req)
        rest = b""
        if getattr(conn, "continued", False):  # the poller sent it, all or part (`continue_rest`)
            conn.continued = False
            req._expected_100_continue = False
            rest, conn.continue_rest = conn.continue_rest, b""
        if self.body_timeout > 0 and not self.cfg.is_ssl and not getattr(conn, "timeouts", False):
            set_io_timeouts(conn.sock, self.body_timeout)  # once per connection: they stay
            conn.timeouts = True
        req.should_close = partial(closes_for_its_body, req)
        try:
            if rest:  # what the socket did not take of the poller's 100: never a second one
                conn.sock.sendall(rest)
            return super().handle_request(req, conn)
        except OSError as error:
            if not socket_timed_out(error):
                raise
            # Mostly a send of the answer that waited `body_timeout` for a client reading none
            # of it (a body read that timed out, the application answers: 408). gthread would
            # log it with a traceback as a socket error; the connection closes either way.
            self.log.warning(
                "Timed out after %g s waiting for the client, ip=%s",
                self.body_timeout,
                _peer(conn),
            )
            raise StopIteration from None
        finally:
            # The override holds the request: dropped here, so that no request is left in a
            # reference cycle for the garbage collector to find (one per request otherwise).
            req.__dict__.pop("should_close", None)
            if not self.alive:  # `max_requests` reached: the worker stops after this request
                self._end_lingers()

    def handle_h2c_upgrade(self, conn: Any, req: Any, settings: Any) -> Any:
        # HTTP/2 is gthread's: a connection that served HTTP/1.1 requests first loses the
        # timeouts they set (an idle HTTP/2 connection's read would time out, logged as a crash).
        if getattr(conn, "timeouts", False):
            set_io_timeouts(conn.sock, 0)
            conn.timeouts = False
        return super().handle_h2c_upgrade(conn, req, settings)

    def handle_http2_request(self, req: Any, conn: Any, h2_conn: Any) -> Any:
        try:
            return super().handle_http2_request(req, conn, h2_conn)
        finally:
            if not self.alive:  # `max_requests` reached on an HTTP/2 stream
                self._end_lingers()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        refusal = parse_refusal(exc)
        if refusal is None:
            # gunicorn's "Error handling request <method> <uri>" would quote the query too,
            # and a query may carry a token: the log gets the path alone.
            if isinstance(getattr(req, "path", None), str):
                req.uri = req.path
            super().handle_error(req, client, addr, exc)
            return
        peer = addr[0] if addr else ""
        # A request refused once its head was parsed (no Host, a transfer coding) keeps the id
        # it sent; one gunicorn could not parse gets a new one. The log line names it either way.
        request_id = request_id_of(getattr(req, "headers", None) or ())
        self.log.warning(
            "Invalid request from ip=%s: %s request_id=%s", peer, loggable(exc), request_id
        )
        try:
            util.write_nonblock(client, problem_answer(*refusal, request_id))
        except OSError:
            self.log.debug("Failed to send error message.")
