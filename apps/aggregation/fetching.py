"""`SourceFetcher` on httpx: one pooled client per process, driven by a thread pool.

Gunicorn's gthread workers run views synchronously, so the fan-out happens on a process-wide
thread pool sharing one keep-alive `httpx.Client`. Each request has its own deadline, enforced
twice: inside the call (no socket operation waits past it, however the source trickles its
headers or body: `_DeadlineBackend`) and by the coordinator, which stops waiting for a call at
its deadline whatever the call does (a hanging DNS lookup included), so a hanging source never
holds the response. A per-origin bulkhead (`OriginBulkhead`) stands in front of the pool: at
most `max_calls_per_origin` calls to one origin hold its threads at once, so a hanging source
cannot take the threads every other source is called on.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx
import structlog
from prometheus_client import Counter

from core.domain.aggregation.budget import RunBudget
from core.domain.aggregation.runs import SourceFailure
from core.usecases.aggregation.ports import Fetched, FetchFailed, FetchResult, SourceRequest

log = structlog.get_logger(__name__)
USER_AGENT = "platform-aggregation/1.0"
# The call's own socket timeout fires this long after the coordinator's deadline, so at the
# deadline the coordinator answers alone instead of racing the call thread for the GIL.
SOCKET_TIMEOUT_SLACK_S = 0.05
# The content codings asked for, and decoded here (`_BoundedDecoder`), never httpx's list: a
# coding it learns when a package is installed (br, zstd) would reach us undecoded.
ACCEPT_ENCODING = "gzip, deflate"
# The most content codings an answer may list. One is what a source asked for `gzip, deflate`
# applies; two leaves room for a proxy that codes an answer again. Every coding listed is one
# more inflater (and its window) held while the body streams: 3000 listed `gzip`s took 75 MB
# before any byte was checked (urllib3 caps the chain at 5 for the same reason, CVE-2025-66418).
MAX_CONTENT_CODINGS = 2
# "Done, and nothing to send" (RFC 9110): a success whose JSON value is null.
NO_CONTENT = 204
ORIGIN_WAITS = Counter(
    "platform_aggregation_origin_waits_total",
    "Source calls that waited for a slot of their origin (AGGREGATION_MAX_CALLS_PER_ORIGIN).",
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
T = TypeVar("T")


def origin_of(url: str) -> str:
    """The origin a call to `url` is counted under: `scheme://host:port`, scheme and host in
    lower case, a default port written out. A URL that does not parse is its own origin (httpx
    refuses it at once)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + ("" if port is None else f":{port}")


class _Call(Generic[T]):
    """A call and the future it answers by (made here, as an executor makes its own)."""

    __slots__ = ("fn", "future", "origin")

    def __init__(self, origin: str, fn: Callable[[], T]) -> None:
        self.origin = origin
        self.fn = fn
        self.future: Future[T] = Future()


class OriginBulkhead:
    """Hands calls to `executor`, at most `limit` of one origin at a time (None: no limit).

    A call past its origin's limit waits in that origin's queue, first in first made, and is
    handed over when a call of its origin finishes, by the thread that ran that one: nobody
    ever blocks for a slot. A call cancelled while it waits (its deadline passed) is skipped,
    never made; it held no slot, so it frees none. One lock; O(1) a call.
    """

    def __init__(self, executor: Executor, *, limit: int | None) -> None:
        self._executor = executor
        self._limit = limit
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # calls handed to the executor, per origin
        self._waiting: dict[str, deque[_Call[Any]]] = {}

    def submit(self, origin: str, fn: Callable[[], T]) -> Future[T]:
        call = _Call(origin, fn)
        with self._lock:
            running = self._running.get(origin, 0)
            waits = self._limit is not None and running >= self._limit
            if waits:
                self._waiting.setdefault(origin, deque()).append(call)
            else:
                self._running[origin] = running + 1
        if waits:
            ORIGIN_WAITS.inc()
        elif not self._hand_over(call):
            self._release(origin)
        return call.future

    def _hand_over(self, call: _Call[Any]) -> bool:
        """Give `call` (holding a slot) to the executor; False when it refuses it, the call
        then failing with its error (a pool shut down: the interpreter is exiting)."""
        try:
            self._executor.submit(self._run, call)
        except RuntimeError as error:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(error)
            return False
        return True

    def _run(self, call: _Call[Any]) -> None:
        try:
            # False: cancelled while it waited for a thread; never made.
            if call.future.set_running_or_notify_cancel():
                try:
                    result = call.fn()
                except BaseException as error:  # the caller's, as ThreadPoolExecutor does
                    call.future.set_exception(error)
                else:
                    call.future.set_result(result)
        finally:
            self._release(call.origin)

    def _release(self, origin: str) -> None:
        """The slot of a finished call of `origin` passes to its next waiting call, if any."""
        while True:
            with self._lock:
                call = self._next_waiting(origin)
            if call is None or self._hand_over(call):
                return

    def _next_waiting(self, origin: str) -> _Call[Any] | None:
        """Under the lock: the origin's next waiting call not cancelled, keeping the slot;
        without one, the slot is freed."""
        queue = self._waiting.get(origin)
        while queue:
            call = queue.popleft()
            if not call.future.cancelled():
                return call
        if queue is not None:
            del self._waiting[origin]
        running = self._running[origin] - 1
        if running:
            self._running[origin] = running
        else:
            del self._running[origin]
        return None


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


class HttpxSourceFetcher:
    """Calls sources concurrently; answers by each source's deadline."""

    def __init__(
        self,
        client: httpx.Client,
        executor: Executor,
        *,
        max_body_bytes: int,
        max_calls_per_origin: int | None = None,
    ) -> None:
        self._client = client
        self._calls = OriginBulkhead(executor, limit=max_calls_per_origin)
        self._max_body_bytes = max_body_bytes

    def fetch_all(
        self, requests: Sequence[SourceRequest], budget: RunBudget | None = None
    ) -> Mapping[str, FetchResult]:
        budget = budget or RunBudget(None)
        started = time.monotonic()
        deadlines: dict[Future[FetchResult], tuple[SourceRequest, float, _Progress]] = {}
        for request in requests:
            deadline = started + request.timeout_ms / 1000
            progress = _Progress()
            # Each call runs in a copy of this thread's context, so what the request set there
            # (its trace span above all) is the parent of the call's own span and headers.
            context = contextvars.copy_context()
            call = functools.partial(
                context.run, self._fetch_one, request, started, deadline, progress, budget
            )
            future = self._calls.submit(origin_of(request.url), call)
            deadlines[future] = (request, deadline, progress)
        results: dict[str, FetchResult] = {}
        pending = set(deadlines)
        while pending:
            now = time.monotonic()
            for future in [f for f in pending if deadlines[f][1] <= now and not f.done()]:
                request, _, progress = deadlines[future]
                # Still waiting (for its origin's slot or a thread): never made; running:
                # finishes on its own, by its socket deadline.
                future.cancel()
                results[request.key] = _timed_out(request, started, progress.status)
                pending.discard(future)
            done = {future for future in pending if future.done()}
            for future in done:
                results[deadlines[future][0].key] = future.result()
            pending -= done
            if pending:
                next_deadline = min(deadlines[future][1] for future in pending)
                wait(pending, timeout=max(0.0, next_deadline - now), return_when=FIRST_COMPLETED)
        return results

    def _fetch_one(
        self,
        request: SourceRequest,
        started: float,
        deadline: float,
        progress: _Progress,
        budget: RunBudget,
    ) -> FetchResult:
        left = deadline - time.monotonic()
        if left <= 0:
            return _timed_out(request, started)
        token = _call_deadline.set(deadline + SOCKET_TIMEOUT_SLACK_S)
        try:
            return self._call(request, started, deadline, left, progress, budget)
        finally:
            _call_deadline.reset(token)

    def _call(
        self,
        request: SourceRequest,
        started: float,
        deadline: float,
        left: float,
        progress: _Progress,
        budget: RunBudget,
    ) -> FetchResult:
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": USER_AGENT,
            **request.headers,
        }
        try:
            with self._client.stream(
                request.method,
                request.url,
                headers=headers,
                timeout=httpx.Timeout(left + SOCKET_TIMEOUT_SLACK_S),
            ) as response:
                progress.status = response.status_code  # the source answered, whatever follows
                # The status came with the headers: an error is known now, whatever its body
                # (which may trickle, or outgrow the limit) would have been.
                if not response.is_success:
                    return _http_error(response.status_code, started)
                if response.status_code == NO_CONTENT:
                    return Fetched(response.status_code, None, _elapsed_ms(started))
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self._max_body_bytes:
                    return self._too_large(response.status_code, started)
                codings = _codings(response.headers.get_list("Content-Encoding"))
                if isinstance(codings, str):  # before any inflater is built
                    return FetchFailed(
                        SourceFailure.INVALID_JSON,
                        codings,
                        _elapsed_ms(started),
                        response.status_code,
                    )
                decoder = _BoundedDecoder(codings, self._max_body_bytes)
                body = bytearray()
                for chunk in response.iter_raw():
                    body += decoder.decode(chunk)
                    if len(body) > self._max_body_bytes:
                        return self._too_large(response.status_code, started)
                    if time.monotonic() > deadline:
                        return _timed_out(request, started, response.status_code)
                body += decoder.decode(b"", final=True)
        # From here on, a source whose status line came in has its status in the error entry.
        except _TooLarge:
            return self._too_large(progress.status, started)
        except _UndecodableCoding as error:
            return FetchFailed(
                SourceFailure.INVALID_JSON,
                f"The source's answer is not in its content coding ({error}).",
                _elapsed_ms(started),
                progress.status,
            )
        except httpx.TimeoutException:
            return _timed_out(request, started, progress.status)
        except Exception as error:  # any failure is this source's error, never the run's 500
            if not isinstance(error, httpx.TransportError):
                log.warning("aggregation_source_call_failed", error=type(error).__name__)
            return FetchFailed(
                SourceFailure.UNREACHABLE,
                f"The source could not be reached ({type(error).__name__}).",
                _elapsed_ms(started),
                progress.status,
            )
        # Before parsing: a value takes up to ~45 times its bytes once parsed (`[{},{},…]`).
        if _containers(body) > MAX_JSON_CONTAINERS:
            return FetchFailed(
                SourceFailure.TOO_LARGE,
                f"The source's answer holds more than {MAX_JSON_CONTAINERS} arrays and objects.",
                _elapsed_ms(started),
                response.status_code,
            )
        if not budget.admit(len(body)):
            return FetchFailed(
                SourceFailure.TOO_LARGE,
                f"The run's answers together exceed {budget.limit} bytes.",
                _elapsed_ms(started),
                response.status_code,
            )
        took_ms = _elapsed_ms(started)
        try:  # NaN and Infinity are not JSON (RFC 8259), and could not be answered as JSON
            parsed = json.loads(body, parse_constant=_not_json_constant, parse_float=_finite_float)
        except (ValueError, RecursionError):  # not JSON, or nested past the recursion limit
            parsed = _NOT_JSON
        if parsed is _NOT_JSON or _unusable(parsed, MAX_JSON_DEPTH):
            return FetchFailed(
                SourceFailure.INVALID_JSON,
                "The source did not answer with JSON.",
                took_ms,
                response.status_code,
            )
        return Fetched(response.status_code, parsed, took_ms)

    def _too_large(self, status: int | None, started: float) -> FetchFailed:
        return FetchFailed(
            SourceFailure.TOO_LARGE,
            f"The source's answer exceeds {self._max_body_bytes} bytes.",
            _elapsed_ms(started),
            status,
        )


def _http_error(status: int, started: float) -> FetchFailed:
    return FetchFailed(
        SourceFailure.HTTP_ERROR, f"The source answered {status}.", _elapsed_ms(started), status
    )


def _timed_out(request: SourceRequest, started: float, status: int | None = None) -> FetchFailed:
    return FetchFailed(
        SourceFailure.TIMEOUT,
        f"The source did not answer within {request.timeout_ms} ms.",
        _elapsed_ms(started),
        status,
    )


class _Progress:
    """What a call has learnt so far, read by the coordinator when it stops waiting: the
    source's status once its status line is in (one attribute, set once)."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None


class _TooLarge(Exception):
    """A content coding's output passed the limit."""


class _UndecodableCoding(Exception):
    """The body is not in the content coding its header names."""


def _codings(values: Sequence[str]) -> list[str] | str:
    """The content codings of an answer's `Content-Encoding` lines, in the order applied
    (`identity` and empty members dropped), or why the answer is not usable: more than
    `MAX_CONTENT_CODINGS`, or one that was not asked for (`br`, `compress`: not decoded here,
    and not JSON as they are)."""
    codings: list[str] = []
    for value in values:
        for member in value.split(","):
            coding = member.strip().lower()
            if coding in {"", "identity"}:
                continue
            if len(codings) == MAX_CONTENT_CODINGS:
                return f"The source's answer lists more than {MAX_CONTENT_CODINGS} content codings."
            if coding not in _WBITS:
                return (
                    "The source's answer is in a content coding it was not asked for "
                    f"({coding[:40]})."
                )
            codings.append(coding)
    return codings


class _BoundedDecoder:
    """Undoes an answer's `Content-Encoding` (gzip, deflate, in any stack), no layer ever
    producing more than `limit` bytes: a small compressed answer that expands a thousandfold
    (64 KB of gzip read at once is 64 MB) is refused at the limit instead of being expanded in
    memory first, as httpx's own decoders (`iter_bytes`) would. `codings` are those `_codings`
    let through: at most `MAX_CONTENT_CODINGS`, each one asked for."""

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        self._layers = [_Inflater(name, limit) for name in reversed(codings)]

    def decode(self, data: bytes, *, final: bool = False) -> bytes:
        for layer in self._layers:
            data = layer.decode(data, final=final)
        return data


# zlib's window bits per coding: gzip has its own header; HTTP's deflate is zlib-wrapped,
# though some servers send it raw (tried when the wrapped form fails at once, as httpx does).
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class _Inflater:
    """One content coding, decoded at most `limit` bytes in total (zlib's `max_length`)."""

    def __init__(self, coding: str, limit: int) -> None:
        self._inflater = zlib.decompressobj(_WBITS[coding])
        self._may_be_raw = coding == "deflate"
        self._left = limit

    def decode(self, data: bytes, *, final: bool = False) -> bytes:
        try:
            out = self._inflater.decompress(data, self._left + 1)  # one past: over the limit
            if final and not self._inflater.unconsumed_tail:
                out += self._inflater.flush()  # no input is left: only what zlib still holds
        except zlib.error as error:
            if not (self._may_be_raw and data):
                raise _UndecodableCoding(str(error)) from error
            self._may_be_raw = False
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.decode(data, final=final)
        if data:
            self._may_be_raw = False
        self._left -= len(out)
        if self._left < 0:
            raise _TooLarge
        return out


def source_client(*, max_connections: int) -> httpx.Client:
    """The client sources are called with: keep-alive, no redirects, nothing from the
    environment (proxies, .netrc), no socket operation past the call's deadline."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30,
    )
    return httpx.Client(
        follow_redirects=False, trust_env=False, transport=_DeadlineTransport(limits)
    )


# When the running call must be over (monotonic seconds); unset outside a call.
_call_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "aggregation_call_deadline", default=None
)


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout`, cut to what is left of the running call's time; `expired` once none is."""
    deadline = _call_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("The call's deadline has passed.")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the running call's
    deadline. A socket timeout alone bounds each read, not the call: a source sending one
    header line (or body byte) per interval would hold the call's thread for as long as it
    liked. Pooled connections are read by one call at a time, each with its own deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets (`SyncBackend`), as `_DeadlineStream`s."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport over an httpcore pool on `_DeadlineBackend` (httpx offers no way to
    choose the network backend, so the pool it builds is replaced by one that does)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )


_shared: HttpxSourceFetcher | None = None
_shared_lock = threading.Lock()


def shared_fetcher(
    *, threads: int, max_connections: int, max_body_bytes: int, max_calls_per_origin: int
) -> HttpxSourceFetcher:
    """The process-wide fetcher (created on first use, so after gunicorn forks)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            client = source_client(max_connections=max_connections)
            executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aggregation")
            _shared = HttpxSourceFetcher(
                client,
                executor,
                max_body_bytes=max_body_bytes,
                max_calls_per_origin=max_calls_per_origin,
            )
        return _shared


# A source's answer nested deeper than this is refused as not JSON: merging and rendering it
# would recurse as deep again, inside a request that is already some frames down.
MAX_JSON_DEPTH = 100
# A source's answer may hold at most this many arrays and objects. Parsed, `[{},{},…]` is some
# 130 bytes of Python objects per 3 bytes of JSON: 1 MiB of it took 45 MB. At this many, about
# 2.6 MB a source. Counted as `[` and `{` bytes (C speed; those inside strings count too, an
# upper bound).
MAX_JSON_CONTAINERS = 20_000
_NOT_JSON = object()


def _containers(body: bytes | bytearray) -> int:
    """At least as many as the arrays and objects in a JSON text."""
    return body.count(b"[") + body.count(b"{")


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to infinity
        raise ValueError(f"{text} is out of range")
    return value


def _unusable(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests containers more than `limit` levels, or holds a string
    with a lone surrogate (`"\\ud800"` parses, but is no text and cannot be answered as UTF-8).
    Walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            if _lone_surrogate(node):
                return True
            continue
        if isinstance(node, dict):
            if any(_lone_surrogate(key) for key in node):
                return True
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        pending.extend(
            (child, depth + 1) for child in children if isinstance(child, str | dict | list)
        )
    return False


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
