"""Route representations of the admin REST API (shape of API.md), and the mapping to `Route`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from apps.common.serializers import JSONBoolean, JSONInteger, JSONString, RejectsUnknownFields
from core.domain.gateway.route import (
    HTTP_METHODS,
    MAX_FAILURE_THRESHOLD,
    MAX_LIMIT_REQUESTS,
    MAX_RETRIES,
    MAX_SECONDS,
    MAX_TIMEOUT_MS,
    NAME_PATTERN,
    PLATFORM_PREFIXES,
    ROLE_MAX_LENGTH,
    ROLE_PATTERN,
    ROLE_RULE,
    AuthMode,
    BreakerPatch,
    BreakerPolicy,
    LimitKey,
    RateLimitPatch,
    RateLimitPolicy,
    Route,
    normalise_prefix,
    prefix_problems,
    upstream_problems,
)
from core.usecases.gateway.manage_routes import RemoveRateLimit, RouteChanges

_PATH_PREFIX_HELP = (
    "An absolute path such as `/orders`, matched by whole segments: a trailing `/` is dropped; "
    "no query, spaces, `//`, `.` or `..` segments, `;` parameters or needless escapes, and not "
    "one of the platform's own paths ("
    + ", ".join(f"`{prefix}`" for prefix in PLATFORM_PREFIXES)
    + ")."
)
_UPSTREAM_URL_HELP = (
    "An `http://` or `https://` URL with a host, without query, fragment or credentials; the "
    "forwarded path is appended to its path, which holds only what RFC 3986 allows in a path "
    "(percent-encode other characters, `%` as `%25`), without `//`, `.` or `..` segments, "
    "`\\` or `%00`; an IPv4 host as a dotted quad (`127.0.0.1`, not `0x7f.1` or `2130706433`)."
)


def _matching(pattern: str, message: str, **kwargs: Any) -> JSONString:
    """A JSON string matching `pattern`, checked as DRF's RegexField checks it (which takes
    numbers too: `{"name": 123}` was a route named "123")."""
    return JSONString(validators=[RegexValidator(pattern, message)], **kwargs)


def _name(**kwargs: Any) -> JSONString:
    return _matching(
        NAME_PATTERN, serializers.RegexField.default_error_messages["invalid"], **kwargs
    )


def _role() -> JSONString:
    """One required role: the slug shape access tokens carry roles in."""
    return _matching(ROLE_PATTERN, ROLE_RULE, max_length=ROLE_MAX_LENGTH)


class RateLimitSerializer(RejectsUnknownFields):
    requests = JSONInteger(min_value=1, max_value=MAX_LIMIT_REQUESTS)
    window_seconds = JSONInteger(min_value=1, max_value=MAX_SECONDS)
    key = serializers.ChoiceField(choices=[k.value for k in LimitKey], default=LimitKey.IP.value)


class CircuitBreakerSerializer(RejectsUnknownFields):
    failure_threshold = JSONInteger(min_value=1, max_value=MAX_FAILURE_THRESHOLD, default=5)
    recovery_seconds = JSONInteger(min_value=1, max_value=MAX_SECONDS, default=30)


class RouteInputSerializer(RejectsUnknownFields):
    """A route to create."""

    name = _name(max_length=63)
    path_prefix = JSONString(max_length=255, help_text=_PATH_PREFIX_HELP)
    upstream_url = JSONString(max_length=2048, help_text=_UPSTREAM_URL_HELP)
    strip_prefix = JSONBoolean(default=True)
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(HTTP_METHODS)),
        allow_empty=False,
        min_length=1,  # what allow_empty says, as the schema's minItems
        default=lambda: ["GET", "HEAD"],
    )
    auth = serializers.ChoiceField(choices=[m.value for m in AuthMode], default=AuthMode.NONE.value)
    required_roles = serializers.ListField(child=_role(), default=list)
    rate_limit = RateLimitSerializer(allow_null=True, default=None)
    cache_ttl_seconds = JSONInteger(min_value=0, max_value=MAX_SECONDS, default=0)
    timeout_ms = JSONInteger(min_value=1, max_value=MAX_TIMEOUT_MS, default=5000)
    retries = JSONInteger(min_value=0, max_value=MAX_RETRIES, default=0)
    circuit_breaker = CircuitBreakerSerializer(default=dict)
    enabled = JSONBoolean(default=True)

    def validate_path_prefix(self, value: str) -> str:
        value = normalise_prefix(value)
        problems = prefix_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_upstream_url(self, value: str) -> str:
        problems = upstream_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value


class RateLimitChangesSerializer(RejectsUnknownFields):
    """A rate limit's fields in a PATCH, each optional: those given replace the current ones
    (a route with no limit yet needs `requests` and `window_seconds`; `key` is then `ip`)."""

    requests = JSONInteger(min_value=1, max_value=MAX_LIMIT_REQUESTS, required=False)
    window_seconds = JSONInteger(min_value=1, max_value=MAX_SECONDS, required=False)
    key = serializers.ChoiceField(choices=[k.value for k in LimitKey], required=False)


class CircuitBreakerChangesSerializer(RejectsUnknownFields):
    """A circuit breaker's fields in a PATCH, each optional: those not given are kept."""

    failure_threshold = JSONInteger(min_value=1, max_value=MAX_FAILURE_THRESHOLD, required=False)
    recovery_seconds = JSONInteger(min_value=1, max_value=MAX_SECONDS, required=False)


# `name` is still taken (the current one only: a client sending back the route it read is not
# refused), but the schema leaves it out, since no value but the one in the URL is valid.
@extend_schema_serializer(exclude_fields=("name",))
class RouteChangesSerializer(RouteInputSerializer):
    """The fields of a route to change (PATCH): each optional and none defaulted, since a field
    not given is kept; nested policies merge into the current ones (RFC 7396). A route's name
    is its identity, in the URL: it cannot change (create a new route instead)."""

    name = _name(max_length=63, required=False)
    path_prefix = JSONString(max_length=255, required=False, help_text=_PATH_PREFIX_HELP)
    upstream_url = JSONString(max_length=2048, required=False, help_text=_UPSTREAM_URL_HELP)
    strip_prefix = JSONBoolean(required=False)
    methods = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(HTTP_METHODS)),
        allow_empty=False,
        min_length=1,
        required=False,
    )
    auth = serializers.ChoiceField(choices=[m.value for m in AuthMode], required=False)
    required_roles = serializers.ListField(child=_role(), required=False)
    rate_limit = RateLimitChangesSerializer(allow_null=True, required=False)
    cache_ttl_seconds = JSONInteger(min_value=0, max_value=MAX_SECONDS, required=False)
    timeout_ms = JSONInteger(min_value=1, max_value=MAX_TIMEOUT_MS, required=False)
    retries = JSONInteger(min_value=0, max_value=MAX_RETRIES, required=False)
    circuit_breaker = CircuitBreakerChangesSerializer(required=False)
    enabled = JSONBoolean(required=False)


class RouteOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    path_prefix = serializers.CharField()
    upstream_url = serializers.CharField()
    strip_prefix = serializers.BooleanField()
    methods = serializers.ListField(child=serializers.CharField())
    auth = serializers.ChoiceField(choices=[m.value for m in AuthMode])
    required_roles = serializers.ListField(child=serializers.CharField())
    rate_limit = RateLimitSerializer(allow_null=True)
    cache_ttl_seconds = serializers.IntegerField()
    timeout_ms = serializers.IntegerField()
    retries = serializers.IntegerField()
    circuit_breaker = CircuitBreakerSerializer()
    enabled = serializers.BooleanField()


def route_from(data: Mapping[str, Any]) -> Route:
    """A new route from validated create input (every field is there, given or defaulted)."""
    limit = data["rate_limit"]
    breaker = data["circuit_breaker"]
    defaults = BreakerPolicy()
    return Route(
        name=data["name"],
        path_prefix=data["path_prefix"],
        upstream_url=data["upstream_url"],
        strip_prefix=data["strip_prefix"],
        methods=frozenset(data["methods"]),
        auth=AuthMode(data["auth"]),
        required_roles=frozenset(data["required_roles"]),
        rate_limit=(
            None
            if limit is None
            else RateLimitPolicy(limit["requests"], limit["window_seconds"], LimitKey(limit["key"]))
        ),
        cache_ttl_seconds=data["cache_ttl_seconds"],
        timeout_ms=data["timeout_ms"],
        retries=data["retries"],
        circuit_breaker=BreakerPolicy(
            breaker.get("failure_threshold", defaults.failure_threshold),
            breaker.get("recovery_seconds", defaults.recovery_seconds),
        ),
        enabled=data["enabled"],
    )


def changes_from(data: Mapping[str, Any]) -> RouteChanges:
    """Validated PATCH input as a change set: what is absent stays None (unchanged), a
    `rate_limit` sent as null removes the limit, and nested policies keep only the fields
    given, for the use case to merge."""
    methods, auth, roles = data.get("methods"), data.get("auth"), data.get("required_roles")
    return RouteChanges(
        name=data.get("name"),
        path_prefix=data.get("path_prefix"),
        upstream_url=data.get("upstream_url"),
        strip_prefix=data.get("strip_prefix"),
        methods=None if methods is None else frozenset(methods),
        auth=None if auth is None else AuthMode(auth),
        required_roles=None if roles is None else frozenset(roles),
        rate_limit=_limit_change(data),
        cache_ttl_seconds=data.get("cache_ttl_seconds"),
        timeout_ms=data.get("timeout_ms"),
        retries=data.get("retries"),
        circuit_breaker=_breaker_change(data.get("circuit_breaker")),
        enabled=data.get("enabled"),
    )


def _limit_change(data: Mapping[str, Any]) -> RateLimitPatch | RemoveRateLimit | None:
    if "rate_limit" not in data:
        return None
    limit = data["rate_limit"]
    if limit is None:
        return RemoveRateLimit()
    return RateLimitPatch(
        limit.get("requests"),
        limit.get("window_seconds"),
        LimitKey(limit["key"]) if "key" in limit else None,
    )


def _breaker_change(breaker: Mapping[str, Any] | None) -> BreakerPatch | None:
    if breaker is None:
        return None
    return BreakerPatch(breaker.get("failure_threshold"), breaker.get("recovery_seconds"))


def route_out(route: Route) -> dict[str, Any]:
    limit = route.rate_limit
    return {
        "name": route.name,
        "path_prefix": route.path_prefix,
        "upstream_url": route.upstream_url,
        "strip_prefix": route.strip_prefix,
        "methods": sorted(route.methods),
        "auth": route.auth.value,
        "required_roles": sorted(route.required_roles),
        "rate_limit": (
            None
            if limit is None
            else {
                "requests": limit.requests,
                "window_seconds": limit.window_seconds,
                "key": limit.key.value,
            }
        ),
        "cache_ttl_seconds": route.cache_ttl_seconds,
        "timeout_ms": route.timeout_ms,
        "retries": route.retries,
        "circuit_breaker": {
            "failure_threshold": route.circuit_breaker.failure_threshold,
            "recovery_seconds": route.circuit_breaker.recovery_seconds,
        },
        "enabled": route.enabled,
    }
