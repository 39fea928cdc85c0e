"""When a proxied answer may be cached, and under which key (never shared across users)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_FORBIDDING_DIRECTIVES = frozenset({"no-store", "private"})


# Headers that carry a caller's credentials. A request with one the gateway did not verify may
# get an answer made for that caller: it neither reads nor fills the shared cache (as Varnish's
# built-in rule passes any request with `Authorization` or `Cookie`).
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


def request_is_cacheable(method: str, ttl_seconds: int) -> bool:
    return ttl_seconds > 0 and method in CACHEABLE_METHODS


def carries_credentials(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether a request sends credentials of any kind (`Authorization`, `Cookie`)."""
    return any(name.lower() in CREDENTIAL_HEADERS for name, _ in headers)


def response_is_cacheable(status: int, headers: Iterable[tuple[str, str]]) -> bool:
    """200 without `Cache-Control: no-store`/`private` and without `Set-Cookie`."""
    if status != 200:
        return False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            return False
        if lowered == "cache-control":
            directives = {part.split("=", 1)[0].strip().lower() for part in value.split(",")}
            if directives & _FORBIDDING_DIRECTIVES:
                return False
    return True


def cache_key(route: str, method: str, upstream_url: str, user_id: str | None) -> str:
    """A fixed-length key; the caller's user id (or `anon`) is part of it.

    The URL is the one the request is forwarded to: a route pointed at another upstream (or
    removed and created again elsewhere) never answers from the old upstream's entries, and
    `/x?` and `/x` are two keys, as they are two targets (RFC 3986 §6.2.3 does not make them
    equal)."""
    material = "\x1f".join((route, method, upstream_url, user_id or "\x00anon"))
    digest = hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{route}:{digest}"
