"""Stable error codes of the gateway context (their values are the API's `code`s)."""

from __future__ import annotations

from enum import StrEnum


class ProxyError(StrEnum):
    """Why the proxy answered itself instead of with the upstream's answer."""

    # not an absolute path (`*`, `host:port`); an encoded '/' or a '\\'; or ';' params
    # naming another route
    MALFORMED_PATH = "malformed_request"
    ROUTE_NOT_FOUND = "route_not_found"  # no enabled route matches the path
    METHOD_NOT_ALLOWED = "method_not_allowed"  # the route does not accept this method
    NOT_AUTHENTICATED = "not_authenticated"  # the route needs a token and none came
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - malformed, forged, wrong type/audience/issuer
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - past its `exp`
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - logged out or cut off by the accounts context
    PERMISSION_DENIED = "permission_denied"  # a required role is missing
    RATE_LIMITED = "rate_limited"  # over the route's sliding-window limit
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # the circuit is open
    UPSTREAM_TIMEOUT = "upstream_timeout"  # no answer within `timeout_ms`
    BAD_GATEWAY = "bad_gateway"  # refused or broken upstream connection


class RouteError(StrEnum):
    """Why a route could not be read, created, changed or removed."""

    NOT_FOUND = "route_not_found"  # no route has that name
    NAME_TAKEN = "route_name_taken"  # another route already has that name
    PREFIX_TAKEN = "route_prefix_taken"  # another route already serves that prefix
    INVALID = "validation_error"  # the route breaks a rule; see the field errors
