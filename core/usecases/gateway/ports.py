"""Ports of the gateway context: routes, limiter, breaker, response cache, upstream, metrics.

Protocols named by role; the Redis, ORM, HTTP and Prometheus adapters live in apps/gateway,
in-memory fakes in tests/fakes/gateway.py. Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import NamedTuple, Protocol

from core.domain.gateway.breaker import Admission, Circuit
from core.domain.gateway.headers import Headers
from core.domain.gateway.matching import RouteTable
from core.domain.gateway.ratelimit import RateDecision
from core.domain.gateway.route import BreakerPolicy, RateLimitPolicy, Route
from core.domain.shared.identity import Principal
from core.domain.shared.result import Result
from core.usecases.shared.ports import RandomHex


class RouteWrite(Enum):
    """How a route write ended; a race lost to another writer is an outcome, not an error."""

    DONE = "done"
    NAME_TAKEN = "name_taken"  # another route holds the name (it may be gone again already)
    PREFIX_TAKEN = "prefix_taken"  # another route serves the prefix (it may be gone already)
    NOT_FOUND = "not_found"  # the route to change is gone (it may have just been removed)


class RouteRepository(Protocol):
    """Routes as stored in the gateway database."""

    def all(self) -> list[Route]: ...

    def get(self, name: str) -> Route | None: ...

    def get_for_update(self, name: str) -> Route | None:
        """The stored route, which no other writer can change or remove until the unit of
        work around this call ends."""
        ...

    def name_taken(self, name: str) -> bool: ...

    def prefix_owner(self, prefix: str) -> str | None:
        """The name of the route that already uses `prefix`, if any."""
        ...

    def add(self, route: Route) -> RouteWrite:
        """Insert: DONE, or NAME_TAKEN / PREFIX_TAKEN with nothing written, whichever the
        store refused it for (also under concurrency, whether or not that rival is still
        there)."""
        ...

    def update(self, route: Route) -> RouteWrite:
        """Overwrite the route of that name: DONE, NOT_FOUND or PREFIX_TAKEN (also under
        concurrency). Never inserts: a route removed meanwhile stays removed."""
        ...

    def delete(self, name: str) -> bool: ...


class RouteChangeNotifier(Protocol):
    """Tells every worker that the routes changed (they reload within a second)."""

    def routes_changed(self) -> None: ...


class RouteSource(Protocol):
    """The current table of enabled routes, without a database query per request."""

    def current(self) -> RouteTable: ...


class RateLimiter(Protocol):
    """A sliding-window limiter: exactly `policy.requests` calls pass per window."""

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision: ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An upstream answer as the gateway keeps and returns it. A cached one also keeps what its
    request sent in the fields its `Vary` names (`varied_on`): it serves only requests that
    send the same; and what its `Age` is computed from when served (RFC 9111 §4.2.3): when it
    was stored (`stored_at`, seconds since the epoch on the use case's clock) and how old it was
    then (`initial_age`, seconds). Its `headers` then hold no `Age`."""

    status: int
    headers: Headers
    body: bytes
    varied_on: Headers = ()
    stored_at: float = 0.0
    initial_age: float = 0.0


class CacheResult(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    BYPASS = "BYPASS"


class CacheLookup(NamedTuple):
    """A response-cache lookup: HIT with the response, MISS, or BYPASS (cache unreachable);
    on a MISS, whether this caller now holds the fill lock and should call upstream."""

    result: CacheResult
    response: StoredResponse | None = None
    filling: bool = False


@dataclass(frozen=True, slots=True)
class CacheProbe:
    """A response-cache lookup to make, for a request the route may answer from the cache."""

    key: str
    fill_seconds: float


@dataclass(frozen=True, slots=True)
class EdgeVerdict:
    """What the shared state says about a call: its token revoked?, the limiter's answer, and
    the cache lookup when the edge made it (None: the caller asks the cache itself)."""

    revoked: bool
    decision: RateDecision | None = None
    cached: CacheLookup | None = None


@dataclass(frozen=True, slots=True)
class WindowPeek:
    """A rate-limit window to read without counting: `subject` is whom the call would count
    against, `anonymous_subject` whom it would if its token turned out revoked (the client
    IP's window; the same subject when the limit is per IP or no token came)."""

    policy: RateLimitPolicy
    subject: str
    anonymous_subject: str


class EdgeChecks(Protocol):
    """Revocation facts of a verified token, the rate limit and (optionally) the response
    cache, answered together: one round trip to the shared state instead of two.

    A revoked token is refused before it is counted, and a refused call looks nothing up;
    `subject`/`policy` are None on routes without a limit, `principal` is None for anonymous
    calls, `probe` is None when the answer may not come from the cache. An implementation may
    leave the lookup to the caller (`EdgeVerdict.cached` None).
    """

    def check(
        self,
        route: str,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
        probe: CacheProbe | None = None,
    ) -> EdgeVerdict: ...

    def peek(
        self, principal: Principal | None, window: WindowPeek | None, now: float
    ) -> EdgeVerdict:
        """For a call refused before the limiter, counting, sliding and claiming nothing: the
        token's revocation facts (`principal` given) and the window (`window` given) as the
        next check would find it, for `window.subject`, or `window.anonymous_subject` when
        the token is revoked. Degrades as `check` does (per-process window, fails open)."""
        ...


class CircuitBreaker(Protocol):
    """Per-route circuit state shared by every worker."""

    def admit(self, route: str, policy: BreakerPolicy, now: float) -> tuple[Admission, int]:
        """The admission and, when denied, the seconds until a probe may pass."""
        ...

    def record(
        self, route: str, policy: BreakerPolicy, now: float, *, success: bool, probe: bool
    ) -> None: ...

    def snapshot(self, route: str) -> Circuit: ...

    def forget(self, route: str) -> None:
        """Drop a route's circuit: the route is new, gone, or calls another upstream now."""
        ...


class ResponseCache(Protocol):
    """Cached upstream answers, with a fill lock so concurrent misses wait for one call."""

    def lookup(self, key: str, fill_seconds: float) -> CacheLookup:
        """The cached answer or a MISS; a MISS takes the fill lock for `fill_seconds` when
        nobody holds it."""
        ...

    def wait_for(self, key: str, timeout_seconds: float) -> StoredResponse | None:
        """The response another caller is filling, if it arrives in time."""
        ...

    def store(self, key: str, response: StoredResponse, ttl_seconds: int) -> None:
        """Keep the response and release the fill lock."""
        ...

    def release_fill(self, key: str) -> None: ...


class UpstreamFailure(StrEnum):
    """Why an upstream call produced no answer."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    # The upstream answered with more than the gateway buffers (GATEWAY_MAX_RESPONSE_BYTES):
    # a broken answer for the client (502), not a sign the upstream is down (no breaker failure).
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: Headers
    body: bytes | None


class Upstream(Protocol):
    """Sends one HTTP request over pooled keep-alive connections."""

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]: ...


class GatewayMetrics(Protocol):
    """Business counters of the proxy (Prometheus in production)."""

    def rate_limited(self, route: str) -> None: ...

    def cache(self, route: str, result: CacheResult) -> None: ...

    def upstream(self, route: str, seconds: float, outcome: str) -> None: ...


class Sleeper(Protocol):
    """Waits between retries (tests inject one that does not sleep)."""

    def __call__(self, seconds: float) -> None: ...


class RandomSource(RandomHex, Protocol):
    """Jitter in [0, 1), besides random hex ids (trace and span ids)."""

    def fraction(self) -> float: ...
