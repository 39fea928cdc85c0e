"""DRF's exception handler, rendering every API error as a problem document.

Views never build error responses by hand: they raise `ProblemError` (usually through
`apps.common.errors.ErrorTable`) or let DRF raise its own exceptions, and this module maps both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.settings import api_settings

from apps.common.authentication import BEARER_CHALLENGE
from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body
from apps.common.renderers import JSONRenderer


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


log = structlog.get_logger(__name__)
# The answer to a request with invalid fields, its `errors` saying which and why.
VALIDATION_ERROR = "validation_error"
VALIDATION_DETAIL = "The request is not valid; see `errors`."
DATABASE_RETRY_AFTER_SECONDS = 5
# A deadlock (40P01) or serialization failure (40001) is no outage: the database undid the
# request because it conflicted with another one at the same time, and run again it runs anew.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
CONFLICT_RETRY_AFTER_SECONDS = 1


def conflict_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a deadlock (40P01) or serialization failure (40001) behind `exc`, a
    database error as Django wraps the driver's; None for anything else (an outage, a bug)."""
    if not isinstance(exc, DatabaseError):
        return None
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate if sqlstate in _CONFLICT_SQLSTATES else None


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


def field_errors(detail: Any, name: str = "") -> dict[str, list[str]]:
    """DRF's error tree as API.md's flat `{"field": ["message", ...]}`.

    Nested fields and list items get dotted names (`rate_limit.requests`, `methods.0`,
    `sources.1.url`); a nested object's own errors go under its name; errors about the body as
    a whole under `non_field_errors`.
    """
    if not isinstance(detail, dict | list):
        return {name or api_settings.NON_FIELD_ERRORS_KEY: [str(detail)]}
    if isinstance(detail, dict):
        children = [
            (name if key == api_settings.NON_FIELD_ERRORS_KEY and name else _dotted(name, key), v)
            for key, v in detail.items()
        ]
    else:  # messages stay under this name; objects or lists in a list get their index
        children = [
            (_dotted(name, index) if isinstance(item, dict | list) else name, item)
            for index, item in enumerate(detail)
        ]
    errors: dict[str, list[str]] = {}
    for inner, value in children:
        for field, messages in field_errors(value, inner).items():
            errors.setdefault(field, []).extend(messages)
    return errors


def _dotted(name: str, key: Any) -> str:
    return f"{name}.{key}" if name else str(key)


class ProblemResponse(Response):
    """A problem document, always rendered as JSON whatever renderer the view negotiated.

    A view that speaks YAML or HTML (the schema, the docs) or whose negotiation failed (406, an
    unknown `?format=`) would otherwise render its error in that format under the problem media
    type.
    """

    @property
    def rendered_content(self) -> bytes:
        self.accepted_renderer = JSONRenderer()
        self.accepted_media_type = JSONRenderer.media_type
        return super().rendered_content


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
    answered = dict(headers or {})
    if status == 401:  # RFC 9110 §15.5.2: every 401 carries a challenge, also a refused login
        answered.setdefault("WWW-Authenticate", BEARER_CHALLENGE)
    return ProblemResponse(body, status=status, headers=answered, content_type=PROBLEM_CONTENT_TYPE)


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
    if isinstance(exc, OperationalError | InterfaceError):
        sqlstate = conflict_sqlstate(exc)
        if sqlstate is not None:
            log.warning("database_conflict", sqlstate=sqlstate)
            return _respond(
                503,
                "service_unavailable",
                "The request conflicted with another one handled at the same time and was "
                "undone; try again.",
                headers={"Retry-After": str(CONFLICT_RETRY_AFTER_SECONDS)},
            )
        # Otherwise a database is unreachable.
        log.warning("database_unavailable", error=type(exc).__name__)
        return _respond(
            503,
            "service_unavailable",
            "A database is unreachable right now; try again shortly.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
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
        return _respond(
            400,
            VALIDATION_ERROR,
            VALIDATION_DETAIL,
            extra={"errors": field_errors(exc.detail)},
            headers=headers,
        )

    codes = exc.get_codes()
    code = codes if isinstance(codes, str) and codes != exc.default_code else None
    if code is None:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    # `str()`: DRF's ErrorDetail is a str subclass that other renderers (YAML) expand.
    detail = str(exc.detail) if isinstance(exc.detail, str) else None
    return _respond(exc.status_code, code, detail, headers=headers)
