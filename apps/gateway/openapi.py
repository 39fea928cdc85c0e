"""The gateway proxy in the OpenAPI schema: a drf-spectacular postprocessing hook.

The proxy is a lean WSGI application, not a DRF view, so the schema generator never sees it;
this hook adds its catch-all path. Its statuses and codes come from GATEWAY_ERRORS (what
ForwardRequest refuses) and ENTRYPOINT_PROBLEMS (what entrypoint.py answers itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apps.common.openapi import PROBLEM_REF, problem_description
from apps.common.problems import PROBLEM_CONTENT_TYPE
from apps.gateway.errors import GATEWAY_ERRORS
from core.domain.gateway.route import HTTP_METHODS, PLATFORM_PREFIXES
from core.usecases.gateway.errors import ProxyError
from core.usecases.gateway.ports import CacheResult

PROXY_PATH = "/{path}"
PROXY_TAG = "gateway proxy"
# Answered by entrypoint.py before any route is matched (Host, body and crash checks).
ENTRYPOINT_PROBLEMS: Mapping[int, tuple[str, ...]] = {
    400: ("bad_request", "malformed_request"),
    408: ("request_timeout",),  # the body stopped arriving (apps.common.timeouts)
    413: ("payload_too_large",),
    500: ("internal_error",),
    503: ("service_unavailable",),  # no route table yet and the gateway database unreadable
}


def _header(description: str, schema_type: str = "string", **extra: Any) -> dict[str, Any]:
    return {"schema": {"type": schema_type, **extra}, "description": description}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


_HEADERS = {
    "X-Request-ID": {
        **_header("Echoed from the request when well-formed (1-128 of `A-Za-z0-9._:-`), else new."),
        "required": True,
    },
    "RateLimit-Limit": _header(
        "Calls allowed per window, on every answer of a route with a rate limit; none where "
        "no route was matched (404, a Host not allowed, no route table, a crash).",
        "integer",
    ),
    "RateLimit-Remaining": _header(
        "Calls left in the current window of whom the call counts against: the token's user "
        "when the limit is per user and a valid token came, else the client IP. A refusal "
        "decided before the limiter (a refused path or body, 401, 403, 405, 413) counts "
        "nothing: it reports the window as it stands.",
        "integer",
    ),
    "RateLimit-Reset": _header(
        "Seconds until the oldest call in the window leaves it (a slot frees); 0 when the "
        "window holds none.",
        "integer",
    ),
    "X-Cache": _header(
        "Whether the response cache answered, on routes with `cache_ttl_seconds > 0`.",
        enum=[result.value for result in CacheResult],
    ),
    "Age": _header(
        "On a cache HIT, the gateway's estimate of the seconds since the upstream made the "
        "answer (RFC 9111 §5.1): the `Age` the upstream sent, plus the time its call took, "
        "plus the time the answer was held, in whole seconds. Otherwise the upstream's own "
        "`Age`, if it sent one.",
        "integer",
        minimum=0,
    ),
    "Retry-After": _header(
        "Seconds to wait before trying again (the gateway's refusal).", "integer"
    ),
    "Allow": _header("The methods the route accepts (the gateway's refusal)."),
    "WWW-Authenticate": _header('The bearer challenge, `Bearer realm="api"` (the gateway\'s 401).'),
}
_EVERY_ANSWER = (
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Cache",
)
_REFUSAL_HEADERS: Mapping[ProxyError, tuple[str, ...]] = {
    ProxyError.NOT_AUTHENTICATED: ("WWW-Authenticate",),
    ProxyError.TOKEN_INVALID: ("WWW-Authenticate",),
    ProxyError.TOKEN_EXPIRED: ("WWW-Authenticate",),
    ProxyError.TOKEN_REVOKED: ("WWW-Authenticate",),
    ProxyError.METHOD_NOT_ALLOWED: ("Allow",),
    ProxyError.RATE_LIMITED: ("Retry-After",),
    ProxyError.UPSTREAM_UNAVAILABLE: ("Retry-After",),
}


def proxy_problems() -> dict[int, list[str]]:
    """Every status the proxy answers itself, with the problem codes each may carry."""
    grouped: dict[int, list[str]] = {}
    for error in ProxyError:
        grouped.setdefault(GATEWAY_ERRORS.status_of(error), []).append(error.value)
    for status, codes in ENTRYPOINT_PROBLEMS.items():
        grouped.setdefault(status, []).extend(codes)
    return dict(sorted(grouped.items()))


def _response(description: str, content: dict[str, Any], headers: Iterable[str]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {name: _ref("headers", name) for name in (*_EVERY_ANSWER, *headers)},
        "content": content,
    }


def _responses() -> dict[str, dict[str, Any]]:
    """The proxy's responses by status, to live in `components/responses`."""
    upstream = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    problem = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
    headers_of: dict[int, list[str]] = {}
    for error, names in _REFUSAL_HEADERS.items():
        headers_of.setdefault(GATEWAY_ERRORS.status_of(error), []).extend(names)
    responses = {
        "2XX": _response(
            "The upstream's answer, as it sent it (on a cache HIT, as stored, with its `Age`).",
            upstream,
            ("Age",),
        )
    }
    for status, codes in proxy_problems().items():
        description = (
            f"{problem_description(codes)}. "
            "An upstream answer with this status is passed through as it is."
        )
        # The gateway's refusal, or the upstream's own answer in whatever media type it has.
        responses[str(status)] = _response(
            description, {**problem, **upstream}, headers_of.get(status, ())
        )
    responses["default"] = _response("Any other status, as the upstream answers.", upstream, ())
    return responses


def _component(status: str) -> str:
    return f"GatewayProxy{status.capitalize()}"


def _operation(method: str, responses: Iterable[str]) -> dict[str, Any]:
    platform = ", ".join(f"`{prefix}`" for prefix in PLATFORM_PREFIXES)
    operation: dict[str, Any] = {
        "operationId": f"gateway_proxy_{method.lower()}",
        "summary": "Forward a request to the route that serves its path",
        "description": (
            f"Any path outside the platform's own ({platform}), in its normal form (RFC 3986 "
            "§6.2.2: `//api/x` and `/x/../api/x` are `/api/x`, never forwarded), is matched "
            "against the enabled routes by longest `path_prefix` and forwarded to that "
            "route's upstream with "
            "method, query, body and end-to-end headers intact. Which methods, auth, rate "
            "limit and cache apply is the route's (`/api/v1/gateway/routes`). The answer is "
            "the upstream's unless the gateway refuses the call itself with a problem document."
        ),
        "tags": [PROXY_TAG],
        "parameters": [
            {
                "name": "path",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "The rest of the path; it may contain `/`.",
            }
        ],
        "security": [{"bearerAuth": []}, {}],
        "responses": {key: _ref("responses", _component(key)) for key in responses},
    }
    if method not in {"GET", "HEAD"}:
        operation["requestBody"] = {
            "required": False,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    return operation


def document_proxy(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Add the proxy's catch-all path, one operation per method a route may accept."""
    responses = _responses()
    components = result.setdefault("components", {})
    components.setdefault("headers", {}).update(_HEADERS)
    components.setdefault("responses", {}).update(
        {_component(key): response for key, response in responses.items()}
    )
    result.setdefault("paths", {})[PROXY_PATH] = {
        method.lower(): _operation(method, responses) for method in sorted(HTTP_METHODS)
    }
    return result
