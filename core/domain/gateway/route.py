"""A route: which requests the gateway forwards where, and under which policies.

Validation lives here so Django admin, the REST API and the seeder refuse the same things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from core.domain.gateway.paths import has_parameters, normalise_path
from core.domain.shared.hosts import IPV4_RULE, is_ambiguous_ipv4, is_host
from core.domain.shared.url_paths import ENCODED_NUL_RULE, has_encoded_nul

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Paths the platform serves itself; a route may never shadow them.
PLATFORM_PREFIXES = ("/api", "/admin", "/health", "/metrics", "/.well-known", "/static")
MAX_TIMEOUT_MS = 60_000
MAX_RETRIES = 5
MAX_LIMIT_REQUESTS = 1_000_000_000  # calls per window; the columns are 32-bit integers
MAX_FAILURE_THRESHOLD = 10_000
MAX_SECONDS = 86_400  # a window, a recovery time or a cache lifetime: at most a day

# An upstream URL's path as RFC 3986 §3.3 has it: `pchar`s and `/`, each `%` starting an escape.
# The gateway forwards the path as stored, so `/a%` or `/a|b` would reach the upstream raw.
_UPSTREAM_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}\Z"
_NAME = re.compile(NAME_PATTERN)
# Roles as the accounts context issues them: short lowercase slugs (`admin`, `billing:read`).
# The same shape as there, written out here because contexts do not import each other; a role
# of another shape could never be in a token, so a route requiring it could never be passed.
ROLE_PATTERN = r"^[a-z][a-z0-9_:.-]{0,49}\Z"
ROLE_MAX_LENGTH = 50
ROLE_RULE = (
    "Roles are 1-50 lowercase letters, digits, '_', ':', '.' or '-', starting with a letter."
)
_ROLE = re.compile(ROLE_PATTERN)
_PREFIX = re.compile(r"^/(?:[A-Za-z0-9._~!$&'()*+,;=:@%-]+(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*)?\Z")


class AuthMode(StrEnum):
    """Whether a route needs, accepts or ignores an access token."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    NONE = "none"


class LimitKey(StrEnum):
    """Whom a rate limit counts: the token's user or the client IP."""

    USER = "user"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """`requests` calls per sliding `window_seconds`, counted per `key`."""

    requests: int
    window_seconds: int
    key: LimitKey = LimitKey.IP


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open after `failure_threshold` consecutive failures; probe after `recovery_seconds`."""

    failure_threshold: int = 5
    recovery_seconds: int = 30


@dataclass(frozen=True, slots=True)
class RateLimitPatch:
    """The fields of a rate limit that a PATCH gives (RFC 7396: absent ones are kept)."""

    requests: int | None = None
    window_seconds: int | None = None
    key: LimitKey | None = None

    def applied_to(self, current: RateLimitPolicy | None) -> RateLimitPolicy | list[str]:
        """The limit after this patch, or the fields a new limit still lacks."""
        requests = (
            self.requests if self.requests is not None else getattr(current, "requests", None)
        )
        window = (
            self.window_seconds
            if self.window_seconds is not None
            else getattr(current, "window_seconds", None)
        )
        if requests is None or window is None:
            return [
                name
                for name, value in (("requests", requests), ("window_seconds", window))
                if value is None
            ]
        key = self.key or (current.key if current is not None else LimitKey.IP)
        return RateLimitPolicy(requests, window, key)


@dataclass(frozen=True, slots=True)
class BreakerPatch:
    """The fields of a circuit breaker that a PATCH gives (absent ones are kept)."""

    failure_threshold: int | None = None
    recovery_seconds: int | None = None

    def applied_to(self, current: BreakerPolicy) -> BreakerPolicy:
        return BreakerPolicy(
            self.failure_threshold
            if self.failure_threshold is not None
            else current.failure_threshold,
            self.recovery_seconds
            if self.recovery_seconds is not None
            else current.recovery_seconds,
        )


@dataclass(frozen=True, slots=True)
class Route:
    """One upstream behind the gateway and its policies."""

    name: str
    path_prefix: str
    upstream_url: str
    strip_prefix: bool = True
    methods: frozenset[str] = field(default_factory=lambda: frozenset({"GET", "HEAD"}))
    auth: AuthMode = AuthMode.NONE
    required_roles: frozenset[str] = frozenset()
    rate_limit: RateLimitPolicy | None = None
    cache_ttl_seconds: int = 0
    timeout_ms: int = 5000
    retries: int = 0
    circuit_breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    enabled: bool = True

    def allows(self, method: str) -> bool:
        return method in self.methods

    def upstream_target(self, raw_path: str, query: str | None) -> str:
        """The upstream URL for a request path (prefix stripped when configured) and query
        (None: no `?`; "": an empty one, kept as sent). The rest of the path is appended to
        `upstream_url` without doubling its trailing `/`; a path that is the prefix alone gets
        `upstream_url` as written, trailing `/` included."""
        rest = raw_path
        if self.strip_prefix and self.path_prefix != "/":
            rest = raw_path[len(self.path_prefix) :]
        target = (self.upstream_url.rstrip("/") if rest else self.upstream_url) + rest
        if target.count("/") < 3:  # scheme://host with no path at all
            target += "/"
        return target if query is None else f"{target}?{query}"


def normalise_prefix(prefix: str) -> str:
    """Prefixes are kept without a trailing slash (except the root `/`). One holding `//` is
    kept as given, for `prefix_problems` to refuse: stripped, `//` was the root `/`, a
    catch-all."""
    stripped = prefix.strip()
    if not stripped.startswith("/") or "//" in stripped:
        return stripped
    return stripped.rstrip("/") or "/"


def is_platform_path(path: str) -> bool:
    """True for the platform's own paths, which the proxy never handles."""
    return any(path == p or path.startswith(p + "/") for p in PLATFORM_PREFIXES)


def route_problems(route: Route) -> dict[str, list[str]]:
    """Every rule the route breaks, by field; empty when the route is valid."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if not _NAME.match(route.name):
        add("name", "Use 1-63 lowercase letters, digits, '-' or '_', starting with a letter/digit.")
    for message in prefix_problems(route.path_prefix):
        add("path_prefix", message)
    for message in upstream_problems(route.upstream_url):
        add("upstream_url", message)
    if not route.methods:
        add("methods", "List at least one method.")
    unknown = sorted(route.methods - HTTP_METHODS)
    if unknown:
        add("methods", f"Unknown methods: {', '.join(unknown)}.")
    if not all(is_valid_role(role) for role in route.required_roles):
        add("required_roles", ROLE_RULE)
    if route.required_roles and route.auth is not AuthMode.REQUIRED:
        add("required_roles", "Roles can only be required on routes with auth 'required'.")
    if route.rate_limit is not None:
        if not 1 <= route.rate_limit.requests <= MAX_LIMIT_REQUESTS:
            add("rate_limit", f"requests must be 1 to {MAX_LIMIT_REQUESTS}.")
        if not 1 <= route.rate_limit.window_seconds <= MAX_SECONDS:
            add("rate_limit", f"window_seconds must be 1 to {MAX_SECONDS}.")
        if route.rate_limit.key is LimitKey.USER and route.auth is AuthMode.NONE:
            add("rate_limit", "A per-user limit needs auth 'required' or 'optional'.")
    if not 0 <= route.cache_ttl_seconds <= MAX_SECONDS:
        add("cache_ttl_seconds", f"Use 0 (no caching) to {MAX_SECONDS} seconds.")
    if not 1 <= route.timeout_ms <= MAX_TIMEOUT_MS:
        add("timeout_ms", f"Use 1 to {MAX_TIMEOUT_MS} milliseconds.")
    if not 0 <= route.retries <= MAX_RETRIES:
        add("retries", f"Use 0 to {MAX_RETRIES} retries.")
    if not 1 <= route.circuit_breaker.failure_threshold <= MAX_FAILURE_THRESHOLD:
        add("circuit_breaker", f"failure_threshold must be 1 to {MAX_FAILURE_THRESHOLD}.")
    if not 1 <= route.circuit_breaker.recovery_seconds <= MAX_SECONDS:
        add("circuit_breaker", f"recovery_seconds must be 1 to {MAX_SECONDS}.")
    return problems


def rate_limit_parts_problems(
    requests: int | None, window_seconds: int | None, key: str | None
) -> list[str]:
    """What is wrong with a rate limit kept field by field (None: not given), as the admin's
    columns keep it: all of them make a limit, none make no limit, some are a mistake."""
    given = [part is not None for part in (requests, window_seconds, key)]
    if any(given) and not all(given):
        return ["Set requests, window and key together, or none of them."]
    return []


def is_valid_role(role: str) -> bool:
    """Roles are short lowercase slugs, the shape access tokens carry them in."""
    return bool(_ROLE.fullmatch(role))


def prefix_problems(prefix: str) -> list[str]:
    """What is wrong with a path prefix (empty when it is usable)."""
    if not _PREFIX.match(prefix) or normalise_path(prefix) != prefix or has_parameters(prefix):
        return [
            "Use an absolute path such as /orders (one trailing '/' is dropped): no query, "
            "spaces, '//', '.' or '..' segments or needless escapes."
        ]
    if is_platform_path(prefix) or any(p.startswith(prefix + "/") for p in PLATFORM_PREFIXES):
        return ["This path belongs to the platform itself."]
    return []


def upstream_problems(url: str) -> list[str]:
    """What is wrong with an upstream URL (empty when it is usable)."""
    if not url.isascii() or any(char.isspace() or not char.isprintable() for char in url):
        return ["Percent-encode spaces, control and non-ASCII characters."]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["Not a valid URL."]
    if parts.scheme not in {"http", "https"}:
        return ["Use an http:// or https:// URL."]
    if not parts.hostname:
        return ["The URL needs a host."]
    # Any "?" or "#", even with nothing after it: the request's path is appended to the URL,
    # so "http://h?" would send "/?/rest" and "http://h/b/#" would drop the path.
    if "?" in url or "#" in url or parts.username is not None or parts.password is not None:
        return ["Leave out query, fragment and credentials."]
    if port == 0:
        return ["Port 0 is not a valid port."]
    if is_ambiguous_ipv4(parts.hostname):
        return [IPV4_RULE]
    if not is_host(parts.hostname):
        return ["The host is not a valid name or address."]
    segments = [unquote(segment) for segment in parts.path.split("/")[1:]]
    inner, last = segments[:-1], segments[-1:]  # a trailing empty segment is a trailing "/"
    dotted = any(segment in {"", ".", ".."} for segment in inner) or last in (["."], [".."])
    if "\\" in parts.path or "%5c" in parts.path.lower() or dotted:
        return ["Write the path without '//', '.' or '..' segments and without '\\'."]
    if not _UPSTREAM_PATH.fullmatch(parts.path):
        return [
            "Use only characters a URL path may hold (RFC 3986): percent-encode others, "
            "and write '%' as '%25'."
        ]
    if has_encoded_nul(parts.path):  # refused in request paths for the same reason
        return [ENCODED_NUL_RULE]
    return []
