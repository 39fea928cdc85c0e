"""The proxy's HTTP entry points: a lean WSGI application and a Django view over one handler.

Production traffic reaches `GatewayApplication` straight from `config.wsgi`'s dispatcher,
without Django's middleware stack or DRF: it does the request id, body limit, problem
documents, metrics and the one access-log line itself. `proxy_view` serves the same handler
inside Django (test client, live_server, runserver) and marks its answers `passthrough`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from functools import cache, partial
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.common.authentication import BEARER_CHALLENGE
from apps.common.clientip import client_ip_from
from apps.common.exceptions import DATABASE_RETRY_AFTER_SECONDS
from apps.common.hosts import (
    HOST_NOT_ALLOWED,
    HostAllowList,
    absolute_form,
    absolute_target_host,
)
from apps.common.logging import bind_request, direct_logger
from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body
from apps.common.requestids import REQUEST_ID_HEADER, request_id_from
from apps.common.timeouts import BODY_TIMEOUT_DETAIL, REQUEST_TIMEOUT_CODE, socket_timed_out
from apps.gateway import wiring
from apps.gateway.errors import GATEWAY_ERRORS
from apps.gateway.route_table import RoutesUnavailable
from core.domain.gateway.route import is_platform_path
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.errors import ProxyError
from core.usecases.gateway.forward_request import ForwardRequest, ProxyRequest

log = structlog.get_logger("platform.gateway")

Headers = list[tuple[str, str]]
# Set by the server answering the client; the upstream's copies would be duplicates or leaks.
_DROPPED_FROM_UPSTREAM = frozenset({"date", "server", "content-length", "x-request-id"})
_NO_ROUTE = "-"
# Where the application leaves the matched route's name for the server span (tracing.py).
ROUTE_ENVIRON_KEY = "platform.gateway.route"
# The head of every answer the gateway gives itself. `nosniff`, as every Django answer has it
# (SECURE_CONTENT_TYPE_NOSNIFF): a browser must not read a problem document as something else.
# An upstream's answer passes as the upstream sent it.
_OWN_HEADERS = (("Content-Type", PROBLEM_CONTENT_TYPE), ("X-Content-Type-Options", "nosniff"))


def _precomputed() -> dict[ProxyError, tuple[int, bytes, Headers]]:
    # The gateway's own refusals have a fixed body and headers per code: build each once.
    answers = {}
    for error in ProxyError:
        problem = GATEWAY_ERRORS.problem(error)
        body = problem_body(problem.status_code, error.value, problem.problem_detail)
        headers = list(_OWN_HEADERS)
        if problem.status_code == 401:  # RFC 9110 §15.5.2: a 401 says which scheme to use
            headers.append(("WWW-Authenticate", BEARER_CHALLENGE))
        answers[error] = (problem.status_code, json.dumps(body).encode(), headers)
    return answers


_REFUSALS = _precomputed()


class Reply:
    """What goes back to the client, plus what the log line and metrics need."""

    __slots__ = ("body", "error", "headers", "route", "status", "user_id")

    def __init__(
        self,
        status: int,
        headers: Headers,
        body: bytes,
        route: str | None,
        user_id: str | None,
        error: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.route = route
        self.user_id = user_id
        self.error = error  # the code of the gateway's own problem answer; None: the upstream's


def _problem(
    status: int, code: str, detail: str | None = None, headers: Iterable[tuple[str, str]] = ()
) -> tuple[Headers, bytes]:
    body = json.dumps(problem_body(status, code, detail)).encode()
    return [*_OWN_HEADERS, *headers], body


def _incoming_headers(environ: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    headers = [
        (key[5:].replace("_", "-").title(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("Content-Type", environ["CONTENT_TYPE"]))
    return tuple(headers)


def _raw_target(environ: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The path and query as the request line sent them, and the authority of an absolute-form
    target (None in origin form). The query is None when it had no `?` and "" when it had an
    empty one (`/x?`), so the upstream gets the target as sent."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        # A fragment is no part of a request target (RFC 9112 §3.2): gunicorn leaves it out of
        # PATH_INFO, which the dispatcher and the access log read, so the route does too.
        raw = raw.partition("#")[0]
        if raw.startswith("/"):
            path, question, query = raw.partition("?")
            return path, query if question else None, None
        parts = absolute_form(raw)
        if parts is not None:  # `GET http://host/path`: the path as sent too
            asked = parts.query or "?" in raw  # no `?` can come before the query
            return parts.path or "/", parts.query if asked else None, parts.netloc
    # No request line (Django's test client, runserver): an empty query cannot be told from none.
    path = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=-._~%")
    return path, environ.get("QUERY_STRING") or None, None


def _without_body(method: str, status: int) -> bool:
    """Whether an answer carries no body whatever its headers say (RFC 9110 §6.4.1)."""
    return method == "HEAD" or status in (204, 304) or status < 200


def _max_body() -> int:
    return int(settings.GATEWAY_MAX_BODY_BYTES or settings.MAX_REQUEST_BODY_BYTES)


class GatewayHandler:
    """Turns a WSGI environ into a `ProxyRequest`, runs `ForwardRequest`, builds the reply."""

    def __init__(self, forward: Callable[[], ForwardRequest] = wiring.forward_request) -> None:
        self._make_forward = forward
        self._forward: ForwardRequest | None = None
        self._hosts = HostAllowList()

    def handle(self, environ: dict[str, Any], request_id: str) -> Reply:
        method = environ["REQUEST_METHOD"].upper()
        path, query, authority = _raw_target(environ)
        host = environ.get("HTTP_HOST")
        if authority is not None:  # RFC 9112 §3.2.2: the target names the host, not Host
            host = absolute_target_host(authority, host)
        elif host is None:  # HTTP/1.0 (gunicorn refuses a Host-less 1.1 request), a test client
            host = environ.get("SERVER_NAME", "")
        if not self._hosts.allows(host or ""):
            return self._error(400, "bad_request", HOST_NOT_ALLOWED)
        body = self._body(environ)
        trusted = settings.TRUSTED_PROXY_COUNT
        peer = environ.get("REMOTE_ADDR", "")
        scheme = environ.get("wsgi.url_scheme", "http")
        if trusted > 0 and environ.get("HTTP_X_FORWARDED_PROTO") in {"http", "https"}:
            scheme = environ["HTTP_X_FORWARDED_PROTO"]
        request = ProxyRequest(
            method=method,
            path=path,
            query=query,
            headers=_incoming_headers(environ),
            body=body if isinstance(body, bytes) else b"",
            peer_ip=peer,
            client_ip=client_ip_from(peer, environ.get("HTTP_X_FORWARDED_FOR"), trusted),
            scheme=scheme,
            host=host,
            request_id=request_id,
            trust_forwarded=trusted > 0,
        )
        if self._forward is None:
            self._forward = self._make_forward()
        if isinstance(body, Reply):  # refused here, before any route's checks
            body.headers.extend(self._rate_limit_headers(self._forward, request))
            return body
        try:
            result = self._forward.execute(request)
        except RoutesUnavailable:
            headers, payload = _problem(
                503,
                "service_unavailable",
                "The gateway's routes cannot be loaded right now; try again shortly.",
                (("Retry-After", str(DATABASE_RETRY_AFTER_SECONDS)),),
            )
            return Reply(503, headers, payload, None, None, "service_unavailable")
        match result:
            case Ok(answer):
                dropped = _DROPPED_FROM_UPSTREAM
                if _without_body(method, answer.status) and answer.status != 204:
                    # The upstream's Content-Length is the full answer's, which it may state.
                    dropped = dropped - {"content-length"}
                headers = [
                    (name, value) for name, value in answer.headers if name.lower() not in dropped
                ]
                return Reply(answer.status, headers, answer.body, answer.route, answer.user_id)
            case Err(rejection):
                status, payload, fixed = _REFUSALS[rejection.error]
                headers = [*fixed, *rejection.headers]
                return Reply(
                    status,
                    headers,
                    payload,
                    rejection.route,
                    rejection.user_id,
                    rejection.error.value,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _rate_limit_headers(forward: ForwardRequest, request: ProxyRequest) -> Headers:
        """API.md: every answer of a rate-limited route carries `RateLimit-*`, this entry
        point's own refusals (413, a broken body) too: the window as it stands, counting
        nothing. Without a route table there is no route, so none."""
        try:
            return list(forward.rate_limit_headers(request))
        except RoutesUnavailable:
            return []

    def _body(self, environ: dict[str, Any]) -> bytes | Reply:
        limit = _max_body()
        raw_length = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                return self._error(400, "malformed_request", "Content-Length is not a number.")
            if length < 0:
                return self._error(400, "malformed_request", "Content-Length is not a number.")
            if length > limit:
                return self._too_large(limit)
            if stream is None or not length:
                return b""
            body = self._read(stream, length)
            if isinstance(body, bytes) and len(body) < length:
                # The client stopped before its Content-Length: what came is not the request it
                # meant (`amount=1000` cut to `amount=10`), so nothing goes upstream.
                return self._error(
                    400, "malformed_request", "The request body ended before its Content-Length."
                )
            return body
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and stream is not None:
            body = self._read(stream, limit + 1)
            if isinstance(body, bytes) and len(body) > limit:
                return self._too_large(limit)
            return body
        return b""

    def _read(self, stream: Any, size: int) -> bytes | Reply:
        """Up to `size` bytes of the body. The server decodes it as it is read, so a chunked
        body that breaks the framing (a bad chunk size or extension) raises here: the client's
        400, not a 500; a body that stopped arriving for the server's timeout is 408. The
        server closes the connection after either (the framing is lost)."""
        try:
            return stream.read(size)  # type: ignore[no-any-return]
        except Exception as error:
            if socket_timed_out(error):
                return self._error(408, REQUEST_TIMEOUT_CODE, BODY_TIMEOUT_DETAIL)
            return self._error(400, "malformed_request", "The request body is not valid HTTP/1.1.")

    def _too_large(self, limit: int) -> Reply:
        return self._error(413, "payload_too_large", f"The request body exceeds {limit} bytes.")

    def _error(self, status: int, code: str, detail: str) -> Reply:
        headers, body = _problem(status, code, detail)
        return Reply(status, headers, body, None, None, code)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


class _Body(list[bytes]):
    """The response body. The WSGI server calls `close()` once the bytes are on the wire, so the
    access-log line (JSON rendering, ~65 µs) is written after the client has its answer."""

    __slots__ = ("_after",)

    def __init__(self, body: bytes, after: Callable[[], None]) -> None:
        super().__init__((body,))
        self._after: Callable[[], None] | None = after

    def close(self) -> None:
        after, self._after = self._after, None
        if after is not None:
            after()


class GatewayApplication:
    """The lean WSGI application that serves every non-platform path."""

    def __init__(self, handler: GatewayHandler | None = None) -> None:
        self._handler = handler or GatewayHandler()

    @staticmethod
    def keep_routes_current() -> None:
        """Load this worker's route table now and keep it current in the background, rather
        than on proxied requests only: a worker then serves the latest routes it could read
        through a later database outage, even if it was idle before it."""
        wiring.state().routes.start_refreshing()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        bind_request(request_id)
        try:
            reply = self._handler.handle(environ, request_id)
        except Exception:
            log.exception("gateway_unhandled_error")
            headers, body = _problem(
                500,
                "internal_error",
                "Something went wrong on our side; quote the X-Request-ID when reporting it.",
            )
            reply = Reply(500, headers, body, None, None, "internal_error")
        elapsed = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "GET")
        bodiless = _without_body(method, reply.status)
        body = b"" if bodiless else reply.body
        headers = reply.headers
        if not bodiless or (
            # RFC 9110 §8.6: a HEAD or 304 answer states the full answer's length or none (a
            # proxied one has the upstream's, if any; the gateway's own, the problem's); a 204
            # never does.
            reply.body
            and reply.status != 204
            and not any(name.lower() == "content-length" for name, _ in headers)
        ):
            headers.append(("Content-Length", str(len(reply.body))))
        headers.append((REQUEST_ID_HEADER, request_id))
        wiring.state().metrics.answered(reply.route or _NO_ROUTE, reply.status, elapsed)
        environ[ROUTE_ENVIRON_KEY] = reply.route
        start_response(_STATUS_LINES.get(reply.status) or _status_line(reply.status), headers)
        path = environ.get("PATH_INFO", "/")
        return _Body(body, partial(_log_access, reply, method, path, elapsed))


@cache
def _access_log() -> Any:
    return direct_logger("platform.access")


def _log_access(reply: Reply, method: str, path: str, elapsed: float) -> None:
    """The access-log line of one answered request (the same fields as Django's side, plus
    the route, and `error`: the code of the gateway's own problem answer, such as
    `bad_gateway` for a refused connection, None for an answer the upstream gave). WSGI's
    `PATH_INFO` is the path's bytes read as latin-1; the line spells them as UTF-8, as
    Django's `request.path` does (bytes that are not UTF-8 as U+FFFD)."""
    if not path.isascii():
        path = path.encode("latin-1", "replace").decode("utf-8", "replace")
    _access_log().info(
        "request",
        method=method,
        path=path,
        status=reply.status,
        duration_ms=round(elapsed * 1000, 2),
        user_id=reply.user_id,
        route=reply.route,
        error=reply.error,
    )


def dispatcher(
    django_app: Callable[..., Any], gateway_app: Callable[..., Any]
) -> Callable[..., Any]:
    """One WSGI application: platform paths to Django, everything else to the gateway."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if is_platform_path(environ.get("PATH_INFO", "/")):
            return django_app(environ, start_response)
        return gateway_app(environ, start_response)

    return application


_view_handler = GatewayHandler()


@csrf_exempt
def proxy_view(request: HttpRequest, **_: Any) -> HttpResponse:
    """The same proxy inside Django (test client, live_server); the middleware does the rest."""
    request_id = getattr(request, "request_id", None) or request_id_from(
        request.META.get("HTTP_X_REQUEST_ID")
    )
    started = time.perf_counter()
    reply = _view_handler.handle(request.META, request_id)
    wiring.state().metrics.answered(
        reply.route or _NO_ROUTE, reply.status, time.perf_counter() - started
    )
    if reply.user_id:
        request.platform_user_id = reply.user_id  # type: ignore[attr-defined]
    response = HttpResponse(reply.body, status=reply.status)
    del response["Content-Type"]
    for name, value in reply.headers:
        if name.lower() == "content-type":
            response["Content-Type"] = value
        elif name.lower() == "set-cookie":
            response.cookies.load(value)
        elif name.lower() != "content-length":
            response[name] = value
    response.passthrough = True  # type: ignore[attr-defined]
    return response
