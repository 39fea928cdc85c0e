"""OpenAPI helpers: the problem-document schema and per-status error responses for views.

`problems()` documents the codes a view answers itself; `ProblemAutoSchema` adds, to every
operation, the problems any DRF view may answer whatever it declares (405, 413 for a body past
the limit, and 400 for a NUL in the path or the query or a host not allowed; 415, a malformed
body's 400 and a stalled body's 408 when it takes a body; 406 when it negotiates content, 404
when `?format=` may pick its renderer; 503 on the API's `/api/v1/` operations), merging their
codes into the view's own, and the headers that come with some statuses (`Allow` on 405,
`WWW-Authenticate` on 401, `Retry-After` on 429 and 503). Problems are declared under
`application/problem+json`, the media type the server sends them with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import (
    ComponentRegistry,
    build_media_type_object,
    force_instance,
    get_lib_doc_excludes,
)
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation

from apps.common.apiviews import PlatformAPIView, PlatformGenericAPIView
from apps.common.exceptions import CONFLICT_RETRY_AFTER_SECONDS, DATABASE_RETRY_AFTER_SECONDS
from apps.common.problems import PROBLEM_CONTENT_TYPE
from apps.common.serializers import RejectsUnknownFields
from core.domain.shared.identity import TokenError

# What a bearer-token operation may answer: no token (DRF's `not_authenticated`), or one the
# verifier refused (its `TokenError` codes); admin-only operations add the missing role.
BEARER_401: dict[int, list[str]] = {
    401: ["not_authenticated", *(str(error.value) for error in TokenError)]
}
ADMIN_ONLY: dict[int, list[str]] = {**BEARER_401, 403: ["permission_denied"]}
PROBLEM_COMPONENT = "Problem"
PROBLEM_REF = {"$ref": f"#/components/schemas/{PROBLEM_COMPONENT}"}


def problem_fields(code_help: str = "Stable machine-readable error code.") -> dict[str, Any]:
    """The members every problem document has, as fresh serializer fields: for the schema of a
    problem that carries more (readiness's `checks`)."""
    return {
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text=code_help),
    }


ProblemSerializer = inline_serializer(
    name=PROBLEM_COMPONENT,
    fields={
        **problem_fields(),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Field errors, for `validation_error`.",
        ),
    },
)

# What any DRF view may answer besides its own errors: DRF's MethodNotAllowed, ParseError and
# UnsupportedMediaType through apps.common.exceptions; and, before any view, whatever the
# method, BodySizeLimitMiddleware's 413 for a Content-Length past the limit (a GET or a DELETE
# may send a body too) and 400 for one that is no number, NulByteMiddleware's 400 for a NUL in
# the path or the query, and Django's 400 `bad_request` (DisallowedHost) for a host
# ALLOWED_HOSTS does not list. With a body, ProblemDetailsMiddleware's 408 for one that
# stopped arriving (apps.common.timeouts).
# tests/integration/common/test_openapi_contract.py checks these against real answers.
EVERY_OPERATION_PROBLEMS: Mapping[int, tuple[str, ...]] = {
    400: ("bad_request", "malformed_request"),
    405: ("method_not_allowed",),
    413: ("payload_too_large",),
}
BODY_PROBLEMS: Mapping[int, tuple[str, ...]] = {
    400: ("malformed_request",),
    408: ("request_timeout",),
    415: ("unsupported_media_type",),
}
# DRF's DefaultContentNegotiation answers an `Accept` no renderer of the view matches with 406
# (NotAcceptable), and a `?format=` none matches with 404 (Http404), before authentication; a
# view whose negotiation reads no `?format=` (its `URL_FORMAT_OVERRIDE` is None) has no such 404.
NEGOTIATION_PROBLEMS: Mapping[int, tuple[str, ...]] = {406: ("not_acceptable",)}
FORMAT_OVERRIDE_PROBLEMS: Mapping[int, tuple[str, ...]] = {404: ("not_found",)}
# apps.common.exceptions maps a database that cannot be reached (OperationalError,
# InterfaceError) to 503 with Retry-After. Documented on every operation under this prefix
# rather than per view: which operations reach a database is decided deep inside adapters
# (a repository call, a recorded run, a revocation that also writes a row) and by settings
# (reset and resend work in the request when ACCOUNTS_EMAIL_IN_BACKGROUND is off), which a
# schema generator cannot see and a hand-kept list would silently go stale on. Outside it
# (health, metrics, JWKS) no operation touches a database for its answer.
DATABASE_PROBLEMS: Mapping[int, tuple[str, ...]] = {503: ("service_unavailable",)}
DATABASE_PATH_PREFIX = "/api/v1/"
ALLOW_HEADER = {
    "Allow": {"schema": {"type": "string"}, "description": "The methods this path accepts."}
}
# Every 401 carries the bearer challenge (apps.common.exceptions), whatever was refused.
CHALLENGE_HEADER = {
    "WWW-Authenticate": {
        "schema": {"type": "string"},
        "description": 'The bearer challenge, `Bearer realm="api"`.',
    }
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": (
            f"Seconds to wait before trying again ({DATABASE_RETRY_AFTER_SECONDS} while a "
            f"database is unreachable, {CONFLICT_RETRY_AFTER_SECONDS} after the request "
            "conflicted with another one and was undone)."
        ),
    }
}
# A rate limit's refusal (429 `rate_limited`) says when the window it was counted in ends.
RATE_LIMIT_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds until the rate limit's window ends and calls are taken again.",
    }
}

_DESCRIPTION_PREFIX = "Problem document; `code` is one of: "
_CODE = re.compile(r"`([^`]+)`")


def pattern_schema(pattern: str, max_length: int) -> dict[str, Any]:
    """A string field's schema stating a domain pattern, for a field that checks the pattern
    itself (drf-spectacular states one only from a `RegexValidator`). Anchors are written as
    ECMA regexes write them, as drf-spectacular does for validators: Python's `\\Z` is `$`."""
    ecma = pattern.replace(r"\Z", "$").replace(r"\A", "^")
    return {"type": "string", "pattern": ecma, "maxLength": max_length}


def problem_description(codes: Iterable[str]) -> str:
    """The description of a problem response: which `code`s it may carry (sorted, unique)."""
    return _DESCRIPTION_PREFIX + ", ".join(f"`{code}`" for code in sorted(set(codes)))


def problems(codes: Mapping[int, Iterable[str]]) -> dict[tuple[int, str], OpenApiResponse]:
    """`extend_schema` responses documenting which problem codes each status may carry, under
    the media type the server sends them with (`application/problem+json`)."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer, description=problem_description(names)
        )
        for status, names in codes.items()
    }


def merge_problem_codes(response: dict[str, Any], codes: Iterable[str]) -> None:
    """Add `codes` to a documented response, keeping the codes it already lists."""
    description = response.get("description", "")
    if description.startswith(_DESCRIPTION_PREFIX):
        listed = _CODE.findall(description.removeprefix(_DESCRIPTION_PREFIX))
        response["description"] = problem_description([*listed, *codes])
    else:  # not a problem response the view declared: say a problem may come instead
        extra = problem_description(codes)
        response["description"] = f"{description} Or a {extra[0].lower()}{extra[1:]}".strip()


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the problems any DRF view may answer, and
    `additionalProperties: false` on request bodies that refuse unknown fields."""

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(force_instance(serializer), RejectsUnknownFields):
            schema["additionalProperties"] = False
        return schema

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        # A nested list of serializers (`Source(many=True, max_length=20)`) keeps its bounds in
        # the schema, as a `ListField` of plain values does (drf-spectacular leaves them out).
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            if field.min_length is not None:
                schema["minItems"] = field.min_length
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
        return schema

    def get_operation(
        self,
        path: str,
        path_regex: str,
        path_prefix: str,
        method: str,
        registry: ComponentRegistry,
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        groups = [EVERY_OPERATION_PROBLEMS]
        if "requestBody" in operation:
            groups.append(BODY_PROBLEMS)
        negotiation = self.view.content_negotiation_class
        if issubclass(negotiation, DefaultContentNegotiation):
            groups.append(NEGOTIATION_PROBLEMS)
            if negotiation.settings.URL_FORMAT_OVERRIDE:
                groups.append(FORMAT_OVERRIDE_PROBLEMS)
        if path.startswith(DATABASE_PATH_PREFIX):
            groups.append(DATABASE_PROBLEMS)
        general: dict[int, tuple[str, ...]] = {}
        for group in groups:  # one status in two groups (400) lists the codes of both
            for status, codes in group.items():
                general[status] = (*general.get(status, ()), *codes)
        responses = operation.setdefault("responses", {})
        problem = build_media_type_object(
            self.resolve_serializer(ProblemSerializer, "response").ref
        )
        for status, codes in general.items():
            if str(status) in responses:
                merge_problem_codes(responses[str(status)], codes)
            else:
                responses[str(status)] = {"description": problem_description(codes)}
            content = responses[str(status)].setdefault("content", {})
            content.setdefault(PROBLEM_CONTENT_TYPE, problem)
        responses["405"].setdefault("headers", {}).update(ALLOW_HEADER)
        if "401" in responses:
            responses["401"].setdefault("headers", {}).update(CHALLENGE_HEADER)
        if "503" in responses:
            responses["503"].setdefault("headers", {}).update(RETRY_AFTER_HEADER)
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(RATE_LIMIT_RETRY_AFTER_HEADER)
        return operation


def lib_doc_excludes() -> list[Any]:
    """drf-spectacular's `GET_LIB_DOC_EXCLUDES`: its own list, and every view base — the
    platform's and each app's (`AccountsView`, `PublicView`, …): any view class that others
    extend. A base's docstring describes the base, never an operation of a view without one."""
    bases: list[Any] = []
    pending: list[type] = [PlatformAPIView, PlatformGenericAPIView]
    while pending:
        base = pending.pop()
        bases.append(base)
        pending.extend(sub for sub in base.__subclasses__() if sub.__subclasses__())
    return [*get_lib_doc_excludes(), *dict.fromkeys(bases)]


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents `BearerTokenAuthentication` as the `bearerAuth` security scheme (JWT)."""

    target_class = "apps.common.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
