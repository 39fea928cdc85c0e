"""ForwardRequest: match a route, check token, limit, cache and circuit, then call upstream."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from core.domain.gateway import caching
from core.domain.gateway.breaker import Admission
from core.domain.gateway.headers import (
    ANSWERED_HERE,
    FORWARDING_CLAIMS,
    IDENTITY_CLAIMS,
    IDENTITY_HEADERS,
    RECOMPUTED,
    Headers,
    end_to_end,
    forwarded_for,
    header_value,
    without_cookies,
)
from core.domain.gateway.paths import (
    has_parameters,
    has_trimmable_segments,
    normalise_path,
    parameters_move_the_path,
    trimmed,
    without_parameters,
)
from core.domain.gateway.ratelimit import limit_subject
from core.domain.gateway.route import (
    IDEMPOTENT_METHODS,
    AuthMode,
    LimitKey,
    Route,
    is_platform_path,
)
from core.domain.shared.bearer import bearer_token
from core.domain.shared.identity import Principal, TokenError
from core.domain.shared.result import Err, Ok, Result
from core.domain.shared.tracing import trace_context
from core.usecases.gateway.errors import ProxyError
from core.usecases.gateway.ports import (
    CacheLookup,
    CacheProbe,
    CacheResult,
    CircuitBreaker,
    EdgeChecks,
    GatewayMetrics,
    RandomSource,
    ResponseCache,
    RouteSource,
    Sleeper,
    StoredResponse,
    Upstream,
    UpstreamFailure,
    UpstreamRequest,
    WindowPeek,
)
from core.usecases.shared.ports import AccessTokenVerifier, Clock, Monotonic

_TOKEN_ERRORS = {
    TokenError.INVALID: ProxyError.TOKEN_INVALID,
    TokenError.EXPIRED: ProxyError.TOKEN_EXPIRED,
    TokenError.REVOKED: ProxyError.TOKEN_REVOKED,
}
BACKOFF_BASE_SECONDS = 0.025
# Client headers the upstream never gets as sent: set from the token, recomputed, answered
# here, or claims.
_NOT_FORWARDED = IDENTITY_HEADERS | RECOMPUTED | ANSWERED_HERE | FORWARDING_CLAIMS | IDENTITY_CLAIMS


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """An incoming request as the proxy sees it (raw path, query and headers as sent); `query`
    is None when the target had no `?`, "" when it had an empty one."""

    method: str
    path: str
    query: str | None
    headers: Headers
    body: bytes
    peer_ip: str
    client_ip: str
    scheme: str
    host: str
    request_id: str
    trust_forwarded: bool = False


@dataclass(frozen=True, slots=True)
class ProxyResponse:
    """The answer to send back, with the facts the access log and metrics need."""

    status: int
    headers: Headers
    body: bytes
    route: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """The gateway's own refusal: a code, the headers that go with it, what was known."""

    error: ProxyError
    headers: Headers = ()
    route: str | None = None
    user_id: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class _Call:
    route: Route
    principal: Principal | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    def reject(
        self, error: ProxyError, headers: Headers = (), detail: str | None = None
    ) -> Err[Rejection]:
        return Err(
            Rejection(
                error,
                (*self.extra_headers, *headers),
                self.route.name,
                self.principal.user_id if self.principal else None,
                detail,
            )
        )


def _answered(result: Result[StoredResponse, UpstreamFailure]) -> bool:
    """The upstream is up: an answer below 500, or one too large to pass on (retrying or
    counting it as a breaker failure would not help)."""
    match result:
        case Ok(answer):
            return answer.status < 500
        case Err(failure):
            return failure is UpstreamFailure.TOO_LARGE
    raise AssertionError("unreachable")  # pragma: no cover


class ForwardRequest:
    """Forwards one request to its route's upstream under the route's policies.

    `tokens` checks the token itself (signature, algorithm, type, expiry, audience, issuer);
    `edge` reads its revocation facts together with the rate limit, in one round trip. A call
    refused before the limiter counts nothing; on a limited route it carries the window as it
    stands, from one read-only look (`EdgeChecks.peek`) on that refusal path alone.
    """

    def __init__(
        self,
        *,
        routes: RouteSource,
        tokens: AccessTokenVerifier,
        edge: EdgeChecks,
        breaker: CircuitBreaker,
        cache: ResponseCache,
        upstream: Upstream,
        metrics: GatewayMetrics,
        clock: Clock,
        monotonic: Monotonic,
        sleep: Sleeper,
        random: RandomSource,
        reserved_cookies: frozenset[str] = frozenset(),
    ) -> None:
        """`reserved_cookies`: names of the platform's own cookies, which no upstream may set."""
        self._routes = routes
        self._tokens = tokens
        self._edge = edge
        self._breaker = breaker
        self._cache = cache
        self._upstream = upstream
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._random = random
        self._reserved_cookies = reserved_cookies

    def execute(self, request: ProxyRequest) -> Result[ProxyResponse, Rejection]:
        request, route, refused = self._match(request)
        if route is None:
            return Err(Rejection(refused or ProxyError.ROUTE_NOT_FOUND))
        call = _Call(route)
        now = self._clock.now().timestamp()
        if refused is not None:  # a path no route may serve, though it matched this one
            headers = self._window(call, request, now, self._caller(route, request))[1]
            return Err(Rejection(refused, headers))
        if not route.allows(request.method):
            allow = ", ".join(sorted(route.methods))
            return self._refuse(
                call,
                request,
                now,
                ProxyError.METHOD_NOT_ALLOWED,
                (("Allow", allow),),
                self._caller(route, request),
            )
        denied = self._authenticate(call, request)
        if denied is not None:
            return self._refuse(call, request, now, denied, principal=call.principal)
        probe = self._cache_probe(call, request)
        refused_at_edge, cached = self._admit_at_edge(call, request, now, probe)
        if refused_at_edge is not None:
            return refused_at_edge
        if probe is not None:
            return self._through_cache(call, request, now, probe, cached)
        if route.cache_ttl_seconds > 0:
            call.extra_headers.append(("X-Cache", CacheResult.BYPASS.value))
        return self._call_upstream(call, request, now).map(
            lambda answer: self._respond(call, answer)
        )

    def rate_limit_headers(self, request: ProxyRequest) -> Headers:
        """The `RateLimit-*` fields for an answer the entry point gives `request` itself,
        before `execute` (a body too large or broken): the window of the route its path
        matches, as it stands, counting nothing; none when no limited route matches."""
        request, route, _ = self._match(request)
        if route is None or route.rate_limit is None:
            return ()
        now = self._clock.now().timestamp()
        return self._window(_Call(route), request, now, self._caller(route, request))[1]

    def _match(self, request: ProxyRequest) -> tuple[ProxyRequest, Route | None, ProxyError | None]:
        """The request with its path in normal form, the route that path matches (None: none),
        and why the path is refused (None: it is not), even though it matched a route."""
        path = normalise_path(request.path)
        if path is None:
            return request, None, ProxyError.MALFORMED_PATH
        if path is not request.path:  # matched, cached and forwarded as one normal path
            if is_platform_path(path):
                # `//api/…`, `/x/../health`: not the platform's path as sent (the dispatcher
                # handed it here), but it is in normal form, and no route serves those.
                return request, None, ProxyError.ROUTE_NOT_FOUND
            request = replace(request, path=path)
        table = self._routes.current()
        route = table.match(path)
        if has_parameters(path) and (
            parameters_move_the_path(path) or table.match(without_parameters(path)) is not route
        ):
            # Read without its `;` parameters, as Tomcat or Spring would, the path climbs
            # (`/svc/..;/svc/internal`) or belongs to another route (`/svc/admin;x`): refused.
            return request, route, ProxyError.MALFORMED_PATH
        if route is not None and table.case_moves_the_route(path, route):
            # `/ADMIN/users` matched `/`, past `/admin`'s auth; an upstream that ignores case
            # (IIS, ASP.NET) would serve `/admin/users` to it: refused.
            return request, route, ProxyError.MALFORMED_PATH
        if has_trimmable_segments(path):
            bare = trimmed(path)
            if (
                bare is None
                or table.match(bare) is not route
                or (route is not None and table.case_moves_the_route(bare, route))
            ):
                # Trimmed as IIS or old Spring read it, `/svc/admin./users` is `/svc/admin/users`
                # (IIS also ignores case), or `..%20` may climb: refused.
                return request, route, ProxyError.MALFORMED_PATH
        return request, route, None

    def _caller(self, route: Route, request: ProxyRequest) -> Principal | None:
        """Whose window a refusal decided before the token is checked (405, a refused path or
        body) reports: the verified token's user when the route's limit counts per user. The
        token refuses nothing here; `execute` checks it in its turn."""
        limit = route.rate_limit
        if limit is None or limit.key is not LimitKey.USER or route.auth is AuthMode.NONE:
            return None
        scratch = _Call(route)
        self._authenticate(scratch, request)
        return scratch.principal

    def _refuse(
        self,
        call: _Call,
        request: ProxyRequest,
        now: float,
        error: ProxyError,
        headers: Headers = (),
        principal: Principal | None = None,
    ) -> Err[Rejection]:
        """A refusal decided before the limiter, carrying the route's window as it stands.
        A 403's token is asked about revocation in the same look: a revoked token is refused
        as such (authentication comes before authorization)."""
        revoked, window = self._window(call, request, now, principal)
        if revoked and error is ProxyError.PERMISSION_DENIED:
            error = ProxyError.TOKEN_REVOKED
        return call.reject(error, (*headers, *window))

    def _window(
        self, call: _Call, request: ProxyRequest, now: float, principal: Principal | None
    ) -> tuple[bool, Headers]:
        """One look at the shared state that counts nothing, on refusal paths only: whether
        `principal`'s token is revoked, and on a limited route the `RateLimit-*` fields of
        the window the call would count against (the user's when the token is valid and the
        limit per user, else the client IP's). Nothing to look at: no call at all."""
        route = call.route
        policy = route.rate_limit
        if policy is None and principal is None:
            return False, ()
        window = None
        if policy is not None:
            anonymous = limit_subject(route.name, policy, user_id=None, client_ip=request.client_ip)
            subject = anonymous
            if principal is not None:
                subject = limit_subject(
                    route.name, policy, user_id=principal.user_id, client_ip=request.client_ip
                )
            window = WindowPeek(policy, subject, anonymous)
        verdict = self._edge.peek(principal, window, now)
        if verdict.decision is None:
            return verdict.revoked, ()
        return verdict.revoked, verdict.decision.quota_headers()

    def _cache_probe(self, call: _Call, request: ProxyRequest) -> CacheProbe | None:
        """The cache lookup this request makes, if its answer may come from the cache."""
        route = call.route
        if not caching.request_is_cacheable(request.method, route.cache_ttl_seconds):
            return None
        if request.body:
            # A GET with a body goes upstream with it, and the key does not hold it: an answer
            # it shaped would be served to every caller ("fat GET" cache poisoning).
            return None
        user_id = call.principal.user_id if call.principal else None
        if user_id is None and caching.carries_credentials(request.headers):
            # Credentials the gateway did not verify (a token on an `auth: none` route, another
            # scheme, a cookie) may shape the answer: never shared, never served.
            return None
        target = route.upstream_target(request.path, request.query)
        origin = f"{request.scheme}://{request.host}"
        key = caching.cache_key(route.name, request.method, target, origin, user_id)
        # The fill lock outlives the whole upstream budget, so a slow filler keeps it.
        return CacheProbe(key, route.timeout_ms / 1000 + 1)

    def _admit_at_edge(
        self, call: _Call, request: ProxyRequest, now: float, probe: CacheProbe | None
    ) -> tuple[Err[Rejection] | None, CacheLookup | None]:
        """Revocation facts, the rate limit and the cache lookup, in one call to the edge:
        a refusal, or None and the lookup when the edge made it."""
        route = call.route
        if call.principal is None and route.rate_limit is None and probe is None:
            return None, None
        subject = None
        if route.rate_limit is not None:
            subject = limit_subject(
                route.name,
                route.rate_limit,
                user_id=call.principal.user_id if call.principal else None,
                client_ip=request.client_ip,
            )
        verdict = self._edge.check(
            route.name, call.principal, subject, route.rate_limit, now, probe
        )
        if verdict.revoked:  # refused before it was counted: the client IP's window, as is
            return self._refuse(call, request, now, ProxyError.TOKEN_REVOKED), None
        decision = verdict.decision
        if decision is not None:
            if not decision.allowed:
                self._metrics.rate_limited(route.name)
                return call.reject(ProxyError.RATE_LIMITED, decision.headers()), None
            call.extra_headers.extend(decision.headers())
        return None, verdict.cached

    def _authenticate(self, call: _Call, request: ProxyRequest) -> ProxyError | None:
        route = call.route
        if route.auth is AuthMode.NONE:
            return None
        # Read as the platform's API reads it (`bearer_token`), so one header means the same at
        # the edge and behind it; lines given apart are joined as the server joins them.
        lines = [value for name, value in request.headers if name.lower() == "authorization"]
        match bearer_token(",".join(lines).encode("latin-1", "replace")):
            case Ok(None):
                return ProxyError.NOT_AUTHENTICATED if route.auth is AuthMode.REQUIRED else None
            case Ok(bytes() as token) if token.isascii():
                raw = token.decode("ascii")
            case _:
                return ProxyError.TOKEN_INVALID
        match self._tokens.verify(raw):
            case Ok(principal):
                call.principal = principal
            case Err(error):
                return _TOKEN_ERRORS[error]
        if not call.principal.has_roles(route.required_roles):
            return ProxyError.PERMISSION_DENIED
        return None  # revocation facts are read with the rate limit, in one round trip

    def _through_cache(
        self,
        call: _Call,
        request: ProxyRequest,
        now: float,
        probe: CacheProbe,
        looked_up: CacheLookup | None,
    ) -> Result[ProxyResponse, Rejection]:
        route = call.route
        key = probe.key
        # `timeout_ms` bounds the whole call: waiting for another caller's fill included.
        deadline = self._monotonic() + route.timeout_ms / 1000
        outcome, stored, filling = looked_up or self._cache.lookup(key, probe.fill_seconds)
        if outcome is CacheResult.MISS and not filling:
            stored = self._cache.wait_for(key, route.timeout_ms / 1000)
            if stored is not None:
                outcome = CacheResult.HIT
                now = self._clock.now().timestamp()  # served now, after the wait
        outgoing: Headers | None = None  # the upstream's headers, built once if needed
        if stored is not None and stored.varied_on:
            # A variant is what the upstream received, the gateway's own fields included
            # (`X-Forwarded-For`, `X-User-Roles`), not what the client sent: the headers a
            # call would send are built to compare, and sent as built on a MISS. An answer
            # without `Vary` (the common HIT) needs none of it.
            outgoing = self._upstream_headers(call, request)
            if not caching.serves(stored.varied_on, outgoing):
                # Another variant holds the key: fetched, not stored, until it expires.
                outcome, stored = CacheResult.MISS, None
        self._metrics.cache(route.name, outcome)
        call.extra_headers.append(("X-Cache", outcome.value))
        if stored is not None:
            # RFC 9111 §4: a stored answer used without validation carries its current `Age`
            # (the stored headers hold none); a MISS passes the upstream's on unchanged.
            age = caching.current_age(stored.initial_age, stored.stored_at, now)
            call.extra_headers.append(("Age", str(age)))
            return Ok(self._respond(call, stored))
        stored_it = False
        try:  # a fill this call claimed is released on every way out but a store
            sent = self._monotonic()
            if sent >= deadline:  # waiting (or the lookup) took the whole budget
                return call.reject(ProxyError.UPSTREAM_TIMEOUT)
            if outgoing is None:
                outgoing = self._upstream_headers(call, request)
            result = self._call_upstream(call, request, now, deadline, outgoing)
            if (
                filling
                and isinstance(result, Ok)
                and caching.response_is_cacheable(result.value.status, result.value.headers)
            ):
                answer = result.value
                varied_on = caching.variant(outgoing, caching.vary_names(answer.headers) or ())
                # The response delay is the upstream call's whole duration, retries included:
                # counted from before a request went out, as §4.2.3's, it errs on the old side.
                initial_age = caching.age_on_arrival(answer.headers, self._monotonic() - sent)
                entry = replace(
                    answer,
                    headers=caching.without_age(answer.headers),
                    varied_on=varied_on,
                    stored_at=self._clock.now().timestamp(),
                    initial_age=initial_age,
                )
                self._cache.store(key, entry, route.cache_ttl_seconds)
                stored_it = True
            return result.map(lambda answer: self._respond(call, answer))
        finally:
            if filling and not stored_it:
                self._cache.release_fill(key)

    def _call_upstream(
        self,
        call: _Call,
        request: ProxyRequest,
        now: float,
        deadline: float | None = None,
        headers: Headers | None = None,
    ) -> Result[StoredResponse, Rejection]:
        """The upstream call with its retries, all before `deadline` (by default `timeout_ms`
        from now), sending `headers` (by default `_upstream_headers`, built here)."""
        route = call.route
        policy = route.circuit_breaker
        admission, retry_after = self._breaker.admit(route.name, policy, now)
        if admission is Admission.DENIED:
            return call.reject(
                ProxyError.UPSTREAM_UNAVAILABLE, (("Retry-After", str(retry_after)),)
            )
        outgoing = UpstreamRequest(
            method=request.method,
            url=route.upstream_target(request.path, request.query),
            headers=self._upstream_headers(call, request) if headers is None else headers,
            body=request.body or None,
        )
        attempts = 1 + (route.retries if request.method in IDEMPOTENT_METHODS else 0)
        started = self._monotonic()
        if deadline is None:
            deadline = started + route.timeout_ms / 1000
        result: Result[StoredResponse, UpstreamFailure] = Err(UpstreamFailure.TIMEOUT)
        for attempt in range(attempts):
            # Each attempt gets what is left of the budget (a retry only starts when some is).
            result = self._upstream.send(outgoing, deadline - self._monotonic())
            if _answered(result):
                break
            backoff = BACKOFF_BASE_SECONDS * (2**attempt) * (0.5 + self._random.fraction())
            if attempt + 1 == attempts or self._monotonic() + backoff >= deadline:
                break
            self._sleep(backoff)
        success = _answered(result)
        self._breaker.record(
            route.name,
            policy,
            self._clock.now().timestamp(),
            success=success,
            probe=admission is Admission.PROBE,
        )
        elapsed = self._monotonic() - started
        match result:
            case Ok(answer):
                self._metrics.upstream(route.name, elapsed, str(answer.status))
                headers = without_cookies(end_to_end(answer.headers), self._reserved_cookies)
                return Ok(StoredResponse(answer.status, headers, answer.body))
            case Err(failure):
                self._metrics.upstream(route.name, elapsed, failure.value)
                if failure is UpstreamFailure.TIMEOUT:
                    return call.reject(ProxyError.UPSTREAM_TIMEOUT)
                return call.reject(ProxyError.BAD_GATEWAY)
        raise AssertionError("unreachable")  # pragma: no cover

    def _upstream_headers(self, call: _Call, request: ProxyRequest) -> Headers:
        """The headers the upstream receives: the client's end-to-end ones but those never
        forwarded, and the gateway's own (`X-Forwarded-*`, trace context, the verified user)."""
        headers = list(end_to_end(request.headers, also_drop=_NOT_FORWARDED))
        incoming_xff = header_value(request.headers, "x-forwarded-for")
        headers.append(("X-Request-ID", request.request_id))
        headers.append(
            (
                "X-Forwarded-For",
                forwarded_for(
                    incoming_xff, request.peer_ip, trust_existing=request.trust_forwarded
                ),
            )
        )
        headers.append(("X-Forwarded-Proto", request.scheme))
        headers.append(("X-Forwarded-Host", request.host))
        headers.extend(
            trace_context(
                header_value(request.headers, "traceparent"),
                header_value(request.headers, "tracestate"),
                trace_id=self._random.hex(16),
                span_id=self._random.hex(8),
            )
        )
        if call.principal is not None:
            headers.append(("X-User-Id", call.principal.user_id))
            headers.append(("X-User-Roles", ",".join(sorted(call.principal.roles))))
        return tuple(headers)

    def _respond(self, call: _Call, answer: StoredResponse) -> ProxyResponse:
        headers = answer.headers
        if call.extra_headers:
            # The gateway's own `RateLimit-*` and `X-Cache` replace an upstream's: sent after
            # them, a client reading the first value read the upstream's claim.
            own = {name.lower() for name, _ in call.extra_headers}
            headers = tuple((name, value) for name, value in headers if name.lower() not in own)
        return ProxyResponse(
            answer.status,
            (*headers, *call.extra_headers),
            answer.body,
            call.route.name,
            call.principal.user_id if call.principal else None,
        )
