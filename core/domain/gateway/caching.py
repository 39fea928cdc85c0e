"""When a proxied answer may be cached, under which key (never shared across users), which
requests a cached answer may serve (its `Vary`), and how old it is when served (its `Age`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from core.domain.gateway.headers import Headers

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
# `no-cache` lets a cache store an answer only to revalidate it before each use (RFC 9111
# §5.2.2.4); this cache does not revalidate, so it does not store it.
_FORBIDDING_DIRECTIVES = frozenset({"no-store", "private", "no-cache"})


# Headers that carry a caller's credentials. A request with one the gateway did not verify may
# get an answer made for that caller: it neither reads nor fills the shared cache (as Varnish's
# built-in rule passes any request with `Authorization` or `Cookie`). Besides those two, the
# API-key and token headers that API gateways and common services read a caller's key from:
# an upstream behind an `auth: none` route may answer per key, and the cache key does not
# hold it. `Proxy-Authorization` is not here: hop-by-hop, it never reaches the upstream.
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        # AWS API Gateway's and many APIs' key; Kong's and APISIX's key-auth default
        # `apikey`; Azure's `api-key` (OpenAI, AI Search); Apigee's `x-apikey`.
        "x-api-key",
        "apikey",
        "api-key",
        "x-apikey",
        # Google Cloud's, Azure API Management's and Azure Functions' keys.
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "x-functions-key",
        # Session and access tokens: OpenStack Keystone's and Spring Session's
        # `X-Auth-Token`, the common `X-Access-Token`, AWS temporary credentials' session
        # token, HashiCorp Vault's token, GitLab's personal access token.
        "x-auth-token",
        "x-access-token",
        "x-amz-security-token",
        "x-vault-token",
        "private-token",
    }
)


def request_is_cacheable(method: str, ttl_seconds: int) -> bool:
    return ttl_seconds > 0 and method in CACHEABLE_METHODS


def carries_credentials(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether a request sends credentials of any kind (`CREDENTIAL_HEADERS`: `Authorization`,
    `Cookie`, an API key or token header)."""
    return any(name.lower() in CREDENTIAL_HEADERS for name, _ in headers)


def response_is_cacheable(status: int, headers: Iterable[tuple[str, str]]) -> bool:
    """200 without `Cache-Control: no-store`/`private`/`no-cache`, without `Set-Cookie`, and
    not varying on everything (`Vary: *`)."""
    if status != 200:
        return False
    headers = tuple(headers)  # read twice: here, and for `Vary`
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            return False
        if lowered == "cache-control":
            directives = {part.split("=", 1)[0].strip().lower() for part in value.split(",")}
            if directives & _FORBIDDING_DIRECTIVES:
                return False
    return vary_names(headers) is not None


def vary_names(headers: Iterable[tuple[str, str]]) -> tuple[str, ...] | None:
    """The request fields an answer's `Vary` names, lowercased and sorted; None for `*`."""
    names: set[str] = set()
    for name, value in headers:
        if name.lower() == "vary":
            names.update(part.strip().lower() for part in value.split(",") if part.strip())
    return None if "*" in names else tuple(sorted(names))


def variant(sent_upstream: Iterable[tuple[str, str]], names: tuple[str, ...]) -> Headers:
    """What a request sent in each of `names`, as a digest of its lines joined ("" when
    absent): stored with an answer, it says which requests that answer may serve (RFC 9111
    §4.1). `sent_upstream` is what the upstream received, not what the client sent: `Vary`
    may name a field the gateway sets (`X-Forwarded-For`, `X-User-Roles`), where every
    client sends nothing (or a claim that is dropped) though the upstream saw each its own.
    A digest, not the values: `Vary` may name the caller's credentials
    (`Authorization`, `Cookie`), and the entry sits in the shared cache, where a token or a
    session cookie could be read and replayed; telling variants apart needs equality only."""
    if not names:
        return ()
    sent: dict[str, list[str]] = {}
    for name, value in sent_upstream:
        lowered = name.lower()
        if lowered in names:
            sent.setdefault(lowered, []).append(value.strip())
    return tuple((name, _digest(", ".join(sent.get(name, ())))) for name in names)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def serves(varied_on: Headers, sent_upstream: Iterable[tuple[str, str]]) -> bool:
    """Whether an answer stored for a request that sent `varied_on` may answer a request that
    would send the upstream `sent_upstream`: the same values in every field its `Vary` named."""
    if not varied_on:
        return True
    return variant(sent_upstream, tuple(name for name, _ in varied_on)) == varied_on


def cache_key(route: str, method: str, upstream_url: str, origin: str, user_id: str | None) -> str:
    """A fixed-length key; the caller's user id (or `anon`) is part of it.

    The URL is the one the request is forwarded to: a route pointed at another upstream (or
    removed and created again elsewhere) never answers from the old upstream's entries, and
    `/x?` and `/x` are two keys, as they are two targets (RFC 3986 §6.2.3 does not make them
    equal). The origin the client asked for (`scheme://host`) is part of it too, as nginx's
    default key has the scheme and Varnish's the host: the upstream receives both
    (`X-Forwarded-Proto`, `X-Forwarded-Host`) and may build links or redirects from them, so
    an answer made for one of the gateway's names, or for http, never answers a request made
    to another, or over https."""
    material = "\x1f".join((route, method, upstream_url, origin.lower(), user_id or "\x00anon"))
    digest = hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{route}:{digest}"


# RFC 9111 §1.2.2: a delta-seconds past the largest value a cache keeps is taken as 2^31.
MAX_AGE_SECONDS = 2**31


def age_value(headers: Iterable[tuple[str, str]]) -> int:
    """The `Age` an answer arrived with, in seconds (RFC 9111 §5.1; its first field): 0 when
    there is none or it is not a whole non-negative number, at most `MAX_AGE_SECONDS`."""
    for name, value in headers:
        if name.lower() == "age":
            value = value.strip()
            if not (value.isascii() and value.isdigit()):
                return 0
            # Longer than 10 digits is past 2^31 anyway (and int() refuses 4 300 and more).
            return MAX_AGE_SECONDS if len(value) > 10 else min(int(value), MAX_AGE_SECONDS)
    return 0


def age_on_arrival(headers: Iterable[tuple[str, str]], response_delay: float) -> float:
    """How old an upstream answer is when the gateway receives it: the `Age` it was sent with
    plus the time the upstream call took (RFC 9111 §4.2.3 `corrected_age_value`).

    §4.2.3 also estimates an age from the answer's `Date` (`apparent_age`) and keeps the larger
    of the two. That estimate measures the upstream's clock against the gateway's: for the
    platform's own upstreams, which answer in milliseconds, it would mostly count their drift,
    so it is left out (an upstream that holds answers itself says so in `Age`)."""
    return age_value(headers) + max(0.0, response_delay)


def current_age(initial_age: float, stored_at: float, now: float) -> int:
    """The `Age` of an answer stored at `stored_at` aged `initial_age`, served at `now` (RFC 9111
    §4.2.3 `current_age`; seconds on the same clock), in whole seconds. Its time in the cache is
    never negative: a store by a host whose clock runs ahead does not make an answer younger."""
    return min(int(initial_age + max(0.0, now - stored_at)), MAX_AGE_SECONDS)


def without_age(headers: Headers) -> Headers:
    """`headers` without `Age`: a stored answer is given its current one each time it is served."""
    return tuple((name, value) for name, value in headers if name.lower() != "age")
