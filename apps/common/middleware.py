"""Cross-cutting HTTP middleware: request ids, the access log, the session user's id in it,
body limits, problem documents.

Nothing here knows a bounded context. Responses that must reach the client untouched (the
gateway's proxied answers) set `response.passthrough = True` and are left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.utils.cache import add_never_cache_headers
from django.utils.functional import SimpleLazyObject

from apps.common.hosts import absolute_form, absolute_target_host
from apps.common.logging import bind_request, bind_user
from apps.common.problems import problem_response
from apps.common.requestids import REQUEST_ID_HEADER, request_id_from
from apps.common.timeouts import BODY_TIMEOUT_DETAIL, REQUEST_TIMEOUT_CODE, socket_timed_out

log = structlog.get_logger("platform.access")

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Echo or mint `X-Request-ID` and bind it into every log line of the request."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        bind_request(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class AccessLogMiddleware:
    """One structured line per request: method, path, status, duration_ms, user id if known."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            user_id=getattr(request, "platform_user_id", None),
        )
        return response


class LoggingAuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's `AuthenticationMiddleware` (the admin's session sign-in), whose user, once
    something loads it, is named in the access-log line and every later line by id, as a
    bearer token's user is. A request that never asks for `request.user` loads nothing."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _logged(request, auth_middleware.get_user(request)))


def _logged(request: HttpRequest, user: Any) -> Any:
    if user.is_authenticated:
        bind_user(request, str(user.pk))  # the id only: never the email or the session key
    return user


class BodySizeLimitMiddleware:
    """Refuse bodies larger than `MAX_REQUEST_BODY_BYTES` with 413 before anything reads them."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return problem_response(400, "malformed_request", "Content-Length is not a number.")
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return _too_large()
        return self.get_response(request)


class NulByteMiddleware:
    """Refuse a NUL character in the path or the query string (`%00`) with 400 before any view
    or admin filter hands it to the database, whose text columns cannot hold one (a 500)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return problem_response(
                400, "malformed_request", "The path or the query holds a NUL character."
            )
        return self.get_response(request)


class AbsoluteTargetHostMiddleware:
    """Make the authority of an absolute-form target (`GET http://host/path`) the request's
    host, in place of its Host header (RFC 9112 §3.2.2), before anything reads the host: the
    allow-list judges it (`DisallowedHost`, 400 `bad_request`) and absolute URLs are built
    with it, as the gateway does. Only a request line tells the form (gunicorn's `RAW_URI`)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        parts = absolute_form(meta.get("RAW_URI") or meta.get("REQUEST_URI") or "/")
        if parts is not None:
            host = absolute_target_host(parts.netloc, meta.get("HTTP_HOST"))
            if host is None:
                raise DisallowedHost(f"Invalid HTTP_HOST header: {meta.get('HTTP_HOST')!r}.")
            meta["HTTP_HOST"] = host
        return self.get_response(request)


class CredentialedAnswersNotStored:
    """An answer to a request that carried credentials (`Authorization`) is made for that
    caller: `Cache-Control: no-store, private` (Django's `never_cache`) unless the view chose
    its own. A route list, a run that forwarded the caller's token, a user: no browser keeps
    one, as the accounts' views already asked of theirs. Proxied answers keep the upstream's."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            "HTTP_AUTHORIZATION" in request.META
            and not getattr(response, "passthrough", False)
            and not response.has_header("Cache-Control")
        ):
            add_never_cache_headers(response)
        return response


def _too_large() -> HttpResponse:
    return problem_response(
        413,
        "payload_too_large",
        f"The request body exceeds {settings.MAX_REQUEST_BODY_BYTES} bytes.",
    )


class ProblemDetailsMiddleware:
    """Turn error answers Django builds outside DRF (405 from plain views, oversize bodies,
    HTML error pages) into problem documents."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or getattr(response, "passthrough", False)
            or "json" in response.get("Content-Type", "")
        ):
            return response
        if response.status_code == 405:
            converted = problem_response(
                405, "method_not_allowed", f"Method {request.method} is not allowed here."
            )
            converted["Allow"] = response.get("Allow", "")
            return converted
        return problem_response(response.status_code, _generic_code(response.status_code))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        if isinstance(exception, UnreadablePostError):  # the body's read failed: not a 500
            if socket_timed_out(exception):
                return problem_response(408, REQUEST_TIMEOUT_CODE, BODY_TIMEOUT_DETAIL)
            return problem_response(400, "malformed_request", "The request body could not be read.")
        return None


_GENERIC_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def _generic_code(status: int) -> str:
    return _GENERIC_CODES.get(status, "error")
