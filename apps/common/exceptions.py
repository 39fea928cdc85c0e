"""DRF's exception handler, rendering every API error as a problem document.

Views never build error responses by hand: they raise `ProblemError` (usually through
`apps.common.errors.ErrorTable`) or let DRF raise its own exceptions, and this module maps both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf
from rest_framework.response import Response

from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body


class ProblemError(drf.APIException):
    """An API error with a stable `code`, an HTTP status and optional extra members."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail or code, code=code)
        self.status_code = status
        self.problem_code = code
        self.problem_detail = detail
        self.title = title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_request",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "token_invalid",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


def _flatten(detail: Any) -> Any:
    """DRF's ErrorDetail tree as plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _respond(
    status: int,
    code: str,
    detail: str | None,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_body(status, code, detail, title=title, extra=extra)
    return Response(
        body, status=status, headers=dict(headers or {}), content_type=PROBLEM_CONTENT_TYPE
    )


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """Map an exception raised in a DRF view to a problem-document response (None: re-raise)."""
    if isinstance(exc, ProblemError):
        return _respond(
            exc.status_code,
            exc.problem_code,
            exc.problem_detail,
            title=exc.title,
            extra=exc.extra,
            headers=exc.headers,
        )
    if isinstance(exc, Ratelimited):
        retry_after = str(getattr(exc, "retry_after", 60))
        return _respond(
            429,
            "rate_limited",
            "Too many requests; try again later.",
            headers={"Retry-After": retry_after},
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if not isinstance(exc, drf.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    if isinstance(exc, drf.ValidationError):
        errors = _flatten(exc.detail)
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors if isinstance(errors, list) else [errors]}
        return _respond(
            400,
            "validation_error",
            "The request body is not valid; see `errors`.",
            extra={"errors": errors},
            headers=headers,
        )

    codes = exc.get_codes()
    code = codes if isinstance(codes, str) and codes != exc.default_code else None
    if code is None:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return _respond(exc.status_code, code, detail, headers=headers)
