"""The one renderer of RFC 9457 problem documents (`application/problem+json`).

Every error the platform answers — from DRF views, Django's own handlers, middleware and the
gateway — is built here, so the shape (`type`, `title`, `status`, `detail`, `code`) never drifts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:platform:problem:"


def problem_body(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document as a dict; `extra` members (e.g. `errors`) are added after the core."""
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description or HTTPStatus(status).phrase,
        "code": code,
    }
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A plain Django response carrying a problem document (for non-DRF code paths)."""
    payload = json.dumps(
        problem_body(status, code, detail, title=title, extra=extra), cls=DjangoJSONEncoder
    )
    response = HttpResponse(payload, status=status, content_type=PROBLEM_CONTENT_TYPE)
    # Set here: an answer of a middleware ahead of Django's CommonMiddleware (413, a NUL in the
    # path) would otherwise go out chunked, unlike every other answer.
    response["Content-Length"] = str(len(response.content))
    for name, value in (headers or {}).items():
        response[name] = value
    return response
