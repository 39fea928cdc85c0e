"""ForwardRequest with in-memory fakes: every branch of the proxy's decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.domain.gateway.caching import variant
from core.domain.gateway.headers import (
    FORWARDING_CLAIMS,
    HOP_BY_HOP,
    IDENTITY_CLAIMS,
    IDENTITY_HEADERS,
)
from core.domain.gateway.route import AuthMode, BreakerPolicy, LimitKey, RateLimitPolicy, Route
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.errors import ProxyError
from core.usecases.gateway.forward_request import ForwardRequest, ProxyRequest
from core.usecases.gateway.ports import StoredResponse, UpstreamFailure
from tests.fakes.clock import FakeClock, FakeMonotonic
from tests.fakes.gateway import (
    FakeCircuitBreaker,
    FakeEdgeChecks,
    FakeMetrics,
    FakeRandom,
    FakeRateLimiter,
    FakeRouteSource,
    FakeSleeper,
    FakeTokenVerifier,
    FakeUpstream,
    InMemoryResponseCache,
)

OK = StoredResponse(200, (("Content-Type", "application/json"), ("Connection", "close")), b"{}")


def make_route(**fields) -> Route:
    base = {
        "name": "svc",
        "path_prefix": "/svc",
        "upstream_url": "http://up:1/base",
        "methods": frozenset({"GET", "HEAD", "POST", "PUT"}),
        "circuit_breaker": BreakerPolicy(2, 30),
    }
    base.update(fields)
    return Route(**base)


def request(path="/svc/x", method="GET", headers=(), **fields) -> ProxyRequest:
    base = {
        "method": method,
        "path": path,
        "query": "q=1",
        "headers": tuple(headers),
        "body": b"",
        "peer_ip": "10.0.0.9",
        "client_ip": "10.0.0.9",
        "scheme": "http",
        "host": "gw.test",
        "request_id": "rid-1",
    }
    base.update(fields)
    return ProxyRequest(**base)


class World:
    def __init__(
        self,
        *routes: Route,
        script=None,
        cache=None,
        takes=0.0,
        edge_looks_up=False,
        reserved_cookies=frozenset(),
    ) -> None:
        self.clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.monotonic = FakeMonotonic()
        self.upstream = FakeUpstream(script or [OK], clock=self.monotonic, takes=takes)
        self.limiter = FakeRateLimiter()
        self.breaker = FakeCircuitBreaker()
        self.cache = cache or InMemoryResponseCache()
        self.edge = FakeEdgeChecks(self.limiter, self.cache if edge_looks_up else None)
        self.metrics = FakeMetrics()
        self.sleeper = FakeSleeper(self.monotonic)
        self.random = FakeRandom()
        self.use_case = ForwardRequest(
            routes=FakeRouteSource(*(routes or (make_route(),))),
            tokens=FakeTokenVerifier(),
            edge=self.edge,
            breaker=self.breaker,
            cache=self.cache,
            upstream=self.upstream,
            metrics=self.metrics,
            clock=self.clock,
            monotonic=self.monotonic,
            sleep=self.sleeper,
            random=self.random,
            reserved_cookies=reserved_cookies,
        )

    def run(self, req: ProxyRequest | None = None):
        return self.use_case.execute(req or request())


def error_of(result):
    assert isinstance(result, Err), result
    return result.error


def test_forwards_to_the_upstream_with_prefix_stripped_and_hop_headers_dropped():
    world = World()
    sent_by_client = [("Accept", "a/b"), ("Connection", "close"), ("Expect", "100-continue")]
    result = world.run(request(headers=sent_by_client))
    assert isinstance(result, Ok)
    sent = world.upstream.requests[0]
    assert sent.url == "http://up:1/base/x?q=1"
    names = [name.lower() for name, _ in sent.headers]
    assert "accept" in names
    assert "connection" not in names
    assert "expect" not in names  # answered here; the body is read before the upstream call
    assert dict(sent.headers)["X-Forwarded-For"] == "10.0.0.9"
    assert dict(sent.headers)["X-Request-ID"] == "rid-1"
    assert "Connection" not in dict(result.value.headers)
    assert result.value.route == "svc"


@pytest.mark.parametrize(
    "claim", sorted(FORWARDING_CLAIMS | IDENTITY_CLAIMS | IDENTITY_HEADERS | HOP_BY_HOP)
)
def test_no_client_claim_nor_hop_by_hop_header_reaches_the_upstream(claim):
    # Every name the drop lists hold (a name added there is covered here), in the case the
    # client chose: the identity headers the gateway sets go only from a verified token.
    world = World()
    world.run(request(headers=[(claim.title(), "1.2.3.4"), ("Accept", "a/b")]))
    sent = {name.lower() for name, _ in world.upstream.requests[0].headers}
    assert claim not in sent
    assert "accept" in sent


@pytest.mark.parametrize(
    ("query", "url"), [(None, "http://up:1/base/x"), ("", "http://up:1/base/x?")]
)
def test_an_empty_query_is_forwarded_as_sent(query, url):
    world = World()
    world.run(request(query=query))
    assert world.upstream.requests[0].url == url


def test_unknown_path_and_wrong_method_are_refused():
    world = World()
    assert error_of(world.run(request(path="/other"))).error is ProxyError.ROUTE_NOT_FOUND
    refused = error_of(world.run(request(method="DELETE")))
    assert refused.error is ProxyError.METHOD_NOT_ALLOWED
    assert dict(refused.headers)["Allow"] == "GET, HEAD, POST, PUT"


@pytest.mark.parametrize(
    "path",
    ["/svc//admin/users", "/svc/./admin/users", "/svc/x/../admin/users", "/svc/%61dmin/users"],
)
def test_a_protected_sub_route_cannot_be_reached_through_an_unnormal_path(path):
    public = make_route(auth=AuthMode.NONE)
    admin = make_route(
        name="svc-admin",
        path_prefix="/svc/admin",
        upstream_url="http://up:1/admin",
        auth=AuthMode.REQUIRED,
        required_roles=frozenset({"admin"}),
    )
    world = World(public, admin)
    refused = error_of(world.run(request(path=path)))
    assert (refused.error, refused.route) == (ProxyError.NOT_AUTHENTICATED, "svc-admin")
    token = [("Authorization", "Bearer user:u1:admin")]
    assert world.run(request(path=path, headers=token)).value.route == "svc-admin"
    assert world.upstream.requests[0].url == "http://up:1/admin/users?q=1"


def test_path_parameters_that_keep_the_route_are_forwarded_as_sent():
    world = World(make_route(), make_route(name="svc-admin", path_prefix="/svc/admin"))
    assert world.run(request(path="/svc/items;jsessionid=abc")).value.route == "svc"
    assert world.upstream.requests[0].url == "http://up:1/base/items;jsessionid=abc?q=1"


def test_a_path_normalised_upward_is_forwarded_in_its_normal_form():
    world = World()
    assert isinstance(world.run(request(path="/svc/a/../b/./c")), Ok)
    assert world.upstream.requests[0].url == "http://up:1/base/b/c?q=1"


@pytest.mark.parametrize(
    "path",
    [
        "/svc/admin%2Fusers",
        "/svc/a%5cb",
        "/svc/a\\b",
        "/svc/admin;x",
        "/svc/..;/admin/x",
        "/svc/..;/svc/internal",  # same route, but out of the upstream's base path
        "/svc/.;/x",
    ],
)
def test_encoded_slashes_backslashes_and_ambiguous_parameters_are_refused(path):
    admin = make_route(name="svc-admin", path_prefix="/svc/admin", auth=AuthMode.REQUIRED)
    world = World(make_route(), admin, make_route(name="top", path_prefix="/admin"))
    refused = error_of(world.run(request(path=path)))
    assert (refused.error, refused.route) == (ProxyError.MALFORMED_PATH, None)
    assert world.upstream.requests == []


def guarded_admin():
    """`/svc/admin`, a route for admins only, beside the open `/svc` (`make_route()`)."""
    return make_route(
        name="svc-admin",
        path_prefix="/svc/admin",
        auth=AuthMode.REQUIRED,
        required_roles=frozenset({"admin"}),
    )


@pytest.mark.parametrize("path", ["/SVC/ADMIN/users", "/svc/Admin", "/Svc/admin/x"])
def test_a_path_whose_letter_case_leaves_a_guarded_route_is_refused(path):
    # An upstream that ignores case (IIS, ASP.NET) would serve `/svc/admin/users` to it.
    admin = guarded_admin()
    world = World(make_route(name="root", path_prefix="/"), make_route(), admin)
    refused = error_of(world.run(request(path=path)))
    assert (refused.error, refused.route) == (ProxyError.MALFORMED_PATH, None)
    assert world.upstream.requests == []
    assert world.run(request(path="/svc/Items")).value.route == "svc"  # no other route's


@pytest.mark.parametrize(
    "path",
    [
        "/svc/admin./users",
        "/svc/admin%20/users",
        "/svc/admin%09/users",
        "/svc/admin.%20./users",
        "/svc/%20admin/users",
        "/svc/ADMIN./users",  # IIS both ignores case and trims
        "/svc/..%20/svc/internal",  # same route, but it may climb out of the upstream's base
        "/svc/x/...",
    ],
)
def test_a_path_whose_trimmed_segments_leave_a_guarded_route_is_refused(path):
    # IIS drops a segment's trailing dots and spaces; Spring's old AntPathMatcher trimmed
    # whitespace (CVE-2016-5007): such an upstream would serve `/svc/admin/users` to it.
    admin = guarded_admin()
    world = World(make_route(), admin)
    refused = error_of(world.run(request(path=path)))
    assert (refused.error, refused.route) == (ProxyError.MALFORMED_PATH, None)
    assert world.upstream.requests == []


def test_a_path_whose_trimmed_segments_keep_the_route_is_forwarded_as_sent():
    admin = make_route(name="svc-admin", path_prefix="/svc/admin", auth=AuthMode.REQUIRED)
    world = World(make_route(), admin)
    assert world.run(request(path="/svc/items./v1%20")).value.route == "svc"
    assert world.upstream.requests[0].url == "http://up:1/base/items./v1%20?q=1"


@pytest.mark.parametrize(
    ("auth", "authorization", "expected"),
    [
        (AuthMode.REQUIRED, None, ProxyError.NOT_AUTHENTICATED),
        (AuthMode.REQUIRED, "Basic abc", ProxyError.NOT_AUTHENTICATED),
        (AuthMode.REQUIRED, "Bearer", ProxyError.TOKEN_INVALID),
        (AuthMode.REQUIRED, "Bearer a b", ProxyError.TOKEN_INVALID),
        (AuthMode.REQUIRED, "Bearer \xff", ProxyError.TOKEN_INVALID),
        (AuthMode.REQUIRED, "Bearer\xa0user:u1:user", ProxyError.NOT_AUTHENTICATED),
        (AuthMode.REQUIRED, "Bearer forged", ProxyError.TOKEN_INVALID),
        (AuthMode.REQUIRED, "Bearer expired", ProxyError.TOKEN_EXPIRED),
        (AuthMode.OPTIONAL, "Bearer revoked", ProxyError.TOKEN_REVOKED),
    ],
)
def test_bad_or_missing_tokens_are_refused(auth, authorization, expected):
    world = World(make_route(auth=auth))
    headers = [("Authorization", authorization)] if authorization else []
    assert error_of(world.run(request(headers=headers))).error is expected
    assert world.upstream.requests == []


@pytest.mark.parametrize(
    "authorization", ["Bearer\tuser:u1:user", "  bearer   user:u1:user  ", "BEARER user:u1:user"]
)
def test_the_bearer_header_is_split_on_whitespace_as_the_api_splits_it(authorization):
    world = World(make_route(auth=AuthMode.REQUIRED))
    assert isinstance(world.run(request(headers=[("Authorization", authorization)])), Ok)
    assert dict(world.upstream.requests[0].headers)["X-User-Id"] == "u1"


@pytest.mark.parametrize("auth", [AuthMode.OPTIONAL, AuthMode.REQUIRED])
@pytest.mark.parametrize(
    "lines",
    [
        [("Authorization", "Basic dTpw"), ("Authorization", "Bearer user:u1:user")],
        [("Authorization", "Basic dTpw,Bearer user:u1:user")],  # as gunicorn joins them
    ],
    ids=["apart", "joined"],
)
def test_a_bearer_token_beside_another_authorization_line_is_invalid(auth, lines):
    world = World(make_route(auth=auth))
    assert error_of(world.run(request(headers=lines))).error is ProxyError.TOKEN_INVALID
    assert world.upstream.requests == []


def test_missing_role_is_forbidden_and_identity_headers_come_from_the_token():
    world = World(make_route(auth=AuthMode.REQUIRED, required_roles=frozenset({"admin"})))
    refused = error_of(world.run(request(headers=[("Authorization", "Bearer user:u1:user")])))
    assert refused.error is ProxyError.PERMISSION_DENIED
    assert refused.user_id == "u1"
    spoofed = [("Authorization", "Bearer user:u2:admin+user"), ("X-User-Id", "evil")]
    assert isinstance(world.run(request(headers=spoofed)), Ok)
    sent = dict(world.upstream.requests[0].headers)
    assert sent["X-User-Id"] == "u2"
    assert sent["X-User-Roles"] == "admin,user"


def test_optional_auth_passes_anonymous_calls_and_none_ignores_tokens():
    world = World(make_route(auth=AuthMode.OPTIONAL))
    assert isinstance(world.run(request(headers=[("X-User-Id", "evil")])), Ok)
    assert "X-User-Id" not in dict(world.upstream.requests[0].headers)
    world = World(make_route(auth=AuthMode.NONE))
    assert isinstance(world.run(request(headers=[("Authorization", "Bearer forged")])), Ok)


def test_rate_limit_refuses_past_the_limit_with_headers_and_no_upstream_call():
    world = World(make_route(rate_limit=RateLimitPolicy(1, 60, LimitKey.IP)))
    first = world.run()
    assert dict(first.value.headers)["RateLimit-Remaining"] == "0"
    refused = error_of(world.run())
    assert refused.error is ProxyError.RATE_LIMITED
    assert dict(refused.headers)["Retry-After"] == "60"
    assert len(world.upstream.requests) == 1
    assert ("rate_limited", "svc") in world.metrics.events


# The cache lookup is made by the edge (the Redis adapter: one round trip) or by the use case.
edge_or_cache = pytest.mark.parametrize("edge_looks_up", [False, True], ids=["cache", "edge"])


@edge_or_cache
def test_cache_miss_then_hit_and_uncacheable_methods_bypass(edge_looks_up):
    world = World(make_route(cache_ttl_seconds=30), edge_looks_up=edge_looks_up)
    assert dict(world.run().value.headers)["X-Cache"] == "MISS"
    assert dict(world.run().value.headers)["X-Cache"] == "HIT"
    assert len(world.upstream.requests) == 1
    posted = world.run(request(method="POST"))
    assert dict(posted.value.headers)["X-Cache"] == "BYPASS"


def ages(result) -> list[str]:
    return [value for name, value in result.value.headers if name.lower() == "age"]


@edge_or_cache
def test_a_hit_carries_its_age_growing_with_the_clock_and_a_miss_none(edge_looks_up):
    world = World(make_route(cache_ttl_seconds=300), takes=0.25, edge_looks_up=edge_looks_up)
    assert ages(world.run()) == []  # the upstream sent none: a MISS adds none
    world.clock.advance(seconds=7)
    assert ages(world.run()) == ["7"]  # 0.25 s upstream + 7 s held, in whole seconds
    world.clock.advance(seconds=0.8)
    assert ages(world.run()) == ["8"]
    world.clock.advance(seconds=200)
    hit = world.run()
    assert (dict(hit.value.headers)["X-Cache"], ages(hit)) == ("HIT", ["208"])
    assert len(world.upstream.requests) == 1


@edge_or_cache
def test_a_hit_counts_the_upstreams_age_and_its_delay_and_replaces_the_stored_age(
    edge_looks_up,
):
    aged = StoredResponse(200, (("Content-Type", "text/plain"), ("age", " 100 ")), b"x")
    world = World(
        make_route(cache_ttl_seconds=300), script=[aged], takes=1.5, edge_looks_up=edge_looks_up
    )
    miss = world.run()
    assert dict(miss.value.headers)["X-Cache"] == "MISS"
    assert ages(miss) == [" 100 "]  # passed on as the upstream sent it
    world.clock.advance(seconds=10)
    hit = world.run()
    assert dict(hit.value.headers)["X-Cache"] == "HIT"
    assert ages(hit) == ["111"]  # 100 + 1.5 s on the way + 10 s held: one Age, ours
    (stored,) = world.cache.entries.values()
    assert "age" not in {name.lower() for name, _ in stored.headers}
    assert stored.stored_at == world.clock.now().timestamp() - 10
    assert stored.initial_age == pytest.approx(101.5)


@edge_or_cache
def test_a_waiter_serves_the_fillers_answer_aged_when_it_arrives(edge_looks_up):
    busy = InMemoryResponseCache(busy=True, waits=1.5)
    world = World(make_route(cache_ttl_seconds=30), cache=busy, edge_looks_up=edge_looks_up)
    busy.clock, busy.wall_clock = world.monotonic, world.clock
    started = world.clock.now().timestamp()
    # Stored by the filler 0.2 s after this call began, 2 s old then; served 1.5 s after.
    busy.arrives = StoredResponse(200, (), b"filled", stored_at=started + 0.2, initial_age=2.0)
    hit = world.run()
    assert (dict(hit.value.headers)["X-Cache"], ages(hit)) == ("HIT", ["3"])
    assert world.upstream.requests == []


@edge_or_cache
@pytest.mark.parametrize(
    ("auth", "authorization"),
    [
        (AuthMode.NONE, ("Authorization", "Bearer user:u1:user")),
        (AuthMode.OPTIONAL, ("Authorization", "Basic dTE6cHc=")),
        (AuthMode.NONE, ("Cookie", "session=s1")),
        (AuthMode.OPTIONAL, ("cookie", "session=s1")),
        (AuthMode.NONE, ("X-API-Key", "tenant-a-key")),
        (AuthMode.OPTIONAL, ("apikey", "tenant-a-key")),
        (AuthMode.NONE, ("Api-Key", "tenant-a-key")),
        (AuthMode.NONE, ("X-Auth-Token", "t1")),
        (AuthMode.NONE, ("X-Access-Token", "t1")),
        (AuthMode.NONE, ("X-Amz-Security-Token", "t1")),
    ],
)
def test_unverified_credentials_are_never_cached_nor_served_from_the_cache(
    edge_looks_up, auth, authorization
):
    world = World(make_route(auth=auth, cache_ttl_seconds=30), edge_looks_up=edge_looks_up)
    assert dict(world.run().value.headers)["X-Cache"] == "MISS"  # anonymous fills the cache
    with_credentials = request(headers=[authorization])
    for _ in range(2):  # neither served the anonymous answer nor stored for others
        assert dict(world.run(with_credentials).value.headers)["X-Cache"] == "BYPASS"
    assert len(world.upstream.requests) == 3
    assert dict(world.run().value.headers)["X-Cache"] == "HIT"


@edge_or_cache
def test_a_get_with_a_body_is_neither_cached_nor_served_from_the_cache(edge_looks_up):
    world = World(make_route(cache_ttl_seconds=30), edge_looks_up=edge_looks_up)
    fat = request(body=b'{"lang": "<script>"}', headers=[("Content-Type", "application/json")])
    for _ in range(2):  # its answer (which the body may shape) is not stored for others
        assert dict(world.run(fat).value.headers)["X-Cache"] == "BYPASS"
    assert dict(world.run().value.headers)["X-Cache"] == "MISS"
    assert dict(world.run(fat).value.headers)["X-Cache"] == "BYPASS"  # nor served the stored
    assert world.upstream.requests[0].body == b'{"lang": "<script>"}'
    assert len(world.upstream.requests) == 4


@edge_or_cache
def test_uncacheable_answers_release_the_fill_lock(edge_looks_up):
    no_store = StoredResponse(200, (("Cache-Control", "no-store"),), b"x")
    world = World(make_route(cache_ttl_seconds=30), script=[no_store], edge_looks_up=edge_looks_up)
    world.run()
    world.run()
    assert len(world.upstream.requests) == 2
    assert len(world.cache.released) == 2


@edge_or_cache
def test_an_answer_made_for_one_of_the_gateways_names_never_answers_another(edge_looks_up):
    world = World(make_route(cache_ttl_seconds=30), edge_looks_up=edge_looks_up)
    public, internal = request(host="api.example.com"), request(host="gw.internal")
    x_cache = [dict(world.run(r).value.headers)["X-Cache"] for r in (public, internal, public)]
    assert x_cache == ["MISS", "MISS", "HIT"]
    assert [dict(sent.headers)["X-Forwarded-Host"] for sent in world.upstream.requests] == [
        "api.example.com",
        "gw.internal",
    ]


@edge_or_cache
def test_an_answer_that_varies_serves_only_requests_sending_the_same_values(edge_looks_up):
    varies = StoredResponse(200, (("Vary", "Accept-Encoding"),), b"gzipped")
    world = World(make_route(cache_ttl_seconds=30), script=[varies], edge_looks_up=edge_looks_up)
    gzip = request(headers=[("Accept-Encoding", "gzip")])
    identity = request(headers=[("Accept-Encoding", "identity")])

    x_cache = [dict(world.run(r).value.headers)["X-Cache"] for r in (gzip, gzip, identity)]
    assert x_cache == ["MISS", "HIT", "MISS"]
    assert len(world.upstream.requests) == 2  # the identity request got its own answer
    assert dict(world.run(gzip).value.headers)["X-Cache"] == "HIT"  # and did not replace it
    assert dict(world.run(request()).value.headers)["X-Cache"] == "MISS"  # none sent: another


def _x_cache(world, *requests):
    return [dict(world.run(r).value.headers)["X-Cache"] for r in requests]


def _varying_on(field):
    return StoredResponse(200, (("Vary", field),), b"made for one variant")


@edge_or_cache
def test_a_variant_is_what_the_upstream_received_not_what_the_client_sent(edge_looks_up):
    """`Vary: X-Forwarded-For` names a field the gateway sets: two clients send none, yet the
    upstream saw two addresses, so neither is served the other's answer; a client's own
    `X-Forwarded-For` (dropped, untrusted) changes nothing the upstream saw."""
    world = World(
        make_route(cache_ttl_seconds=30),
        script=[_varying_on("X-Forwarded-For")],
        edge_looks_up=edge_looks_up,
    )
    one = request(peer_ip="127.0.0.1", client_ip="127.0.0.1")
    other = request(peer_ip="127.0.0.2", client_ip="127.0.0.2")
    spoofing = request(
        peer_ip="127.0.0.1", client_ip="127.0.0.1", headers=[("X-Forwarded-For", "6.6.6.6")]
    )

    assert _x_cache(world, one, other, one, spoofing) == ["MISS", "MISS", "HIT", "HIT"]
    assert [dict(sent.headers)["X-Forwarded-For"] for sent in world.upstream.requests] == [
        "127.0.0.1",
        "127.0.0.2",
    ]


@edge_or_cache
def test_a_trusted_proxys_chain_is_the_variant_the_upstream_received(edge_looks_up):
    world = World(
        make_route(cache_ttl_seconds=30),
        script=[_varying_on("x-forwarded-for")],
        edge_looks_up=edge_looks_up,
    )
    chains = [
        request(trust_forwarded=True, headers=[("X-Forwarded-For", client)])
        for client in ("7.7.7.7", "8.8.8.8", "7.7.7.7")
    ]
    assert _x_cache(world, *chains) == ["MISS", "MISS", "HIT"]


@edge_or_cache
def test_an_answer_varying_on_roles_is_not_served_after_the_users_roles_change(edge_looks_up):
    world = World(
        make_route(auth=AuthMode.REQUIRED, cache_ttl_seconds=30),
        script=[_varying_on("X-User-Roles")],
        edge_looks_up=edge_looks_up,
    )
    before = request(headers=[("Authorization", "Bearer user:u1:user")])
    after = request(headers=[("Authorization", "Bearer user:u1:admin+user")])
    assert _x_cache(world, before, after, after, before) == ["MISS", "MISS", "MISS", "HIT"]
    assert [dict(sent.headers)["X-User-Roles"] for sent in world.upstream.requests] == [
        "user",
        "admin,user",
        "admin,user",  # the stored variant (made for `user`) stays until it expires
    ]


@edge_or_cache
def test_an_answer_varying_on_a_per_request_field_is_never_reused(edge_looks_up):
    # `traceparent` gets a new span on every request (and `X-Request-ID` is each one's own):
    # an upstream that varies on it made an answer for that request alone.
    world = World(
        make_route(cache_ttl_seconds=30),
        script=[_varying_on("traceparent")],
        edge_looks_up=edge_looks_up,
    )
    assert _x_cache(world, request(), request(), request()) == ["MISS"] * 3


@edge_or_cache
def test_a_hit_builds_no_upstream_headers_and_a_variant_miss_builds_them_once(edge_looks_up):
    """The hot path: a HIT on an answer without `Vary` draws no trace ids (the upstream
    headers are not built); a lookup that needs them builds them once, for the lookup and the
    upstream call alike, so the variant stored is the one sent."""
    plain = World(make_route(cache_ttl_seconds=30), edge_looks_up=edge_looks_up)
    assert _x_cache(plain, request(), request()) == ["MISS", "HIT"]
    assert len(plain.random.issued) == 2  # the MISS's trace and span ids

    varies = World(
        make_route(cache_ttl_seconds=30),
        script=[_varying_on("traceparent")],
        edge_looks_up=edge_looks_up,
    )
    assert _x_cache(varies, request(), request()) == ["MISS", "MISS"]
    assert len(varies.random.issued) == 4  # two per upstream call, none drawn twice
    (stored,) = varies.cache.entries.values()
    first_sent = dict(varies.upstream.requests[0].headers)["traceparent"]
    assert stored.varied_on == variant((("traceparent", first_sent),), ("traceparent",))


@edge_or_cache
def test_waiters_get_the_fillers_answer_or_call_upstream_themselves(edge_looks_up):
    busy = InMemoryResponseCache(busy=True)
    busy.arrives = OK
    world = World(make_route(cache_ttl_seconds=30), cache=busy, edge_looks_up=edge_looks_up)
    assert dict(world.run().value.headers)["X-Cache"] == "HIT"
    assert world.upstream.requests == []
    busy.arrives = None
    assert dict(world.run().value.headers)["X-Cache"] == "MISS"
    assert len(world.upstream.requests) == 1


@edge_or_cache
def test_waiting_for_another_callers_fill_counts_against_the_timeout(edge_looks_up):
    busy = InMemoryResponseCache(busy=True, waits=0.4)  # the filler's answer is not stored
    route = make_route(cache_ttl_seconds=30, timeout_ms=1000)
    world = World(route, cache=busy, edge_looks_up=edge_looks_up)
    busy.clock = world.monotonic

    assert dict(world.run().value.headers)["X-Cache"] == "MISS"
    assert world.upstream.timeouts == [pytest.approx(0.6)]  # what the wait left of 1 s

    busy.waits = 1.0  # the whole budget went on waiting: no upstream call is started
    assert error_of(world.run()).error is ProxyError.UPSTREAM_TIMEOUT
    assert len(world.upstream.requests) == 1
    assert world.breaker.snapshot("svc").failures == 0


def test_a_fill_claimed_once_the_budget_is_spent_is_released():
    # The cache's own lookup (not the edge's) took the whole timeout and claimed the fill: the
    # answer is a timeout, and the next caller fills instead of waiting for a fill nobody makes.
    slow = InMemoryResponseCache(lookup_takes=1.0)
    world = World(make_route(cache_ttl_seconds=30, timeout_ms=1000), cache=slow)
    slow.clock = world.monotonic

    assert error_of(world.run()).error is ProxyError.UPSTREAM_TIMEOUT
    assert world.upstream.requests == []
    assert slow.filling == set()
    assert len(slow.released) == 1


@edge_or_cache
def test_cache_unreachable_is_a_bypass(edge_looks_up):
    down = InMemoryResponseCache(unavailable=True)
    world = World(make_route(cache_ttl_seconds=30), cache=down, edge_looks_up=edge_looks_up)
    assert dict(world.run().value.headers)["X-Cache"] == "BYPASS"


def test_a_lookup_made_by_the_edge_is_not_repeated_and_refused_calls_look_nothing_up():
    limit = RateLimitPolicy(2, 60, LimitKey.IP)
    world = World(make_route(cache_ttl_seconds=30, rate_limit=limit), edge_looks_up=True)
    assert dict(world.run().value.headers)["X-Cache"] == "MISS"
    assert dict(world.run().value.headers)["X-Cache"] == "HIT"
    assert world.cache.lookups == 2  # once per request, by the edge
    assert world.edge.routes == ["svc", "svc"]
    assert error_of(world.run()).error is ProxyError.RATE_LIMITED
    assert world.cache.lookups == 2


def test_anonymous_calls_on_unlimited_cached_routes_still_make_one_edge_call():
    world = World(make_route(cache_ttl_seconds=30), edge_looks_up=True)
    world.run()
    world.run()
    assert world.edge.calls == 2
    assert world.cache.lookups == 2


def test_failures_open_the_circuit_and_open_circuit_answers_without_calling():
    world = World(script=[UpstreamFailure.CONNECTION])
    assert error_of(world.run()).error is ProxyError.BAD_GATEWAY
    assert error_of(world.run()).error is ProxyError.BAD_GATEWAY
    refused = error_of(world.run())
    assert refused.error is ProxyError.UPSTREAM_UNAVAILABLE
    assert dict(refused.headers)["Retry-After"] == "30"
    assert len(world.upstream.requests) == 2


def test_half_open_probe_success_closes_the_circuit():
    world = World(script=[UpstreamFailure.TIMEOUT, UpstreamFailure.TIMEOUT, OK])
    world.run()
    world.run()
    world.clock.advance(seconds=31)
    assert isinstance(world.run(), Ok)
    assert world.breaker.snapshot("svc").state.value == "closed"


def test_timeouts_answer_504_and_5xx_pass_through_but_count_as_failures():
    world = World(script=[UpstreamFailure.TIMEOUT])
    assert error_of(world.run()).error is ProxyError.UPSTREAM_TIMEOUT
    failing = StoredResponse(503, (), b"down")
    world = World(script=[failing])
    assert world.run().value.status == 503
    assert world.breaker.snapshot("svc").failures == 1


def test_idempotent_calls_are_retried_with_backoff_and_posts_are_not():
    flaky = [StoredResponse(502, (), b""), UpstreamFailure.CONNECTION, OK]
    world = World(make_route(retries=2), script=flaky)
    assert world.run().value.status == 200
    assert len(world.upstream.requests) == 3
    assert world.sleeper.slept == [0.025, 0.05]
    world = World(make_route(retries=2), script=flaky)
    assert world.run(request(method="POST")).value.status == 502
    assert len(world.upstream.requests) == 1


def test_an_answer_too_large_is_a_502_neither_retried_nor_a_breaker_failure():
    world = World(make_route(retries=2), script=[UpstreamFailure.TOO_LARGE, OK])
    assert error_of(world.run()).error is ProxyError.BAD_GATEWAY
    assert len(world.upstream.requests) == 1
    assert world.breaker.snapshot("svc").failures == 0
    assert ("upstream", "svc", "too_large") in [event[:3] for event in world.metrics.events]


def test_retries_stay_within_the_overall_timeout():
    world = World(
        make_route(retries=5, timeout_ms=100), script=[UpstreamFailure.CONNECTION], takes=0.04
    )
    assert error_of(world.run()).error is ProxyError.BAD_GATEWAY
    assert len(world.upstream.requests) == 2
    assert all(t <= 0.1 for t in world.upstream.timeouts)
    assert world.upstream.timeouts[1] < world.upstream.timeouts[0]


def test_a_call_that_used_up_its_budget_is_a_timeout():
    world = World(make_route(retries=1, timeout_ms=50), script=[UpstreamFailure.CONNECTION])
    world.monotonic.now += 0  # the first attempt takes the whole budget
    world.upstream.takes = 0.2
    assert error_of(world.run()).error is ProxyError.BAD_GATEWAY
    assert len(world.upstream.requests) == 1


def test_trusted_proxies_extend_the_forwarded_chain_and_traceparent_is_set():
    world = World()
    req = request(
        headers=[("X-Forwarded-For", "1.1.1.1"), ("traceparent", "bad")], trust_forwarded=True
    )
    world.run(req)
    sent = dict(world.upstream.requests[0].headers)
    assert sent["X-Forwarded-For"] == "1.1.1.1, 10.0.0.9"
    # a trace the gateway starts is not sampled (`00`)
    trace_id, span_id = world.random.issued
    assert sent["traceparent"] == f"00-{trace_id}-{span_id}-00"
    assert sent["X-Forwarded-Host"] == "gw.test"
    assert sent["X-Forwarded-Proto"] == "http"


def test_revoked_tokens_are_refused_before_the_limit_counts_them():
    world = World(
        make_route(auth=AuthMode.REQUIRED, rate_limit=RateLimitPolicy(5, 60, LimitKey.USER))
    )
    world.edge.revoked_ids.add("jti")
    refused = error_of(world.run(request(headers=[("Authorization", "Bearer user:u1:user")])))
    assert refused.error is ProxyError.TOKEN_REVOKED
    assert world.limiter.calls == {}
    assert world.upstream.requests == []


def test_anonymous_calls_on_unlimited_routes_skip_the_shared_state():
    world = World()
    world.run()
    assert world.edge.calls == 0


def quota(result):
    """The `RateLimit-*` fields an answer or a refusal carries."""
    answer = result.value if isinstance(result, Ok) else result.error
    return {k: v for k, v in answer.headers if k.startswith("RateLimit-") or k == "Retry-After"}


def window(remaining, reset="60", limit="3"):
    return {"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset}


def test_refusals_before_the_limiter_carry_the_window_as_it_stands_and_spend_nothing():
    """API.md: every answer of a limited route carries `RateLimit-*`. A 401, 403, 405 or a
    refused path is decided before the limiter: it reads the window (counting nothing), so
    the caller's budget is spent only by calls that reach the limiter."""
    world = World(
        make_route(
            auth=AuthMode.REQUIRED,
            required_roles=frozenset({"admin"}),
            rate_limit=RateLimitPolicy(3, 60, LimitKey.IP),
        )
    )
    admin = [("Authorization", "Bearer user:u1:admin")]
    refusals = [
        world.run(request()),
        world.run(request(headers=[("Authorization", "Bearer forged")])),
        world.run(request(headers=[("Authorization", "Bearer expired")])),
        world.run(request(headers=[("Authorization", "Bearer user:u2:user")])),
        world.run(request(method="DELETE", headers=admin)),
        world.run(request(path="/svc/..;/x", headers=admin)),
    ]
    assert [error_of(r).error for r in refusals] == [
        ProxyError.NOT_AUTHENTICATED,
        ProxyError.TOKEN_INVALID,
        ProxyError.TOKEN_EXPIRED,
        ProxyError.PERMISSION_DENIED,
        ProxyError.METHOD_NOT_ALLOWED,
        ProxyError.MALFORMED_PATH,
    ]
    assert [quota(r) for r in refusals] == [window("3", reset="0")] * 6
    assert dict(refusals[4].error.headers)["Allow"] == "GET, HEAD, POST, PUT"
    assert world.limiter.calls == {}
    admitted = [world.run(request(headers=admin)) for _ in range(3)]
    assert [quota(a)["RateLimit-Remaining"] for a in admitted] == ["2", "1", "0"]
    limited = world.run(request(headers=admin))
    assert error_of(limited).error is ProxyError.RATE_LIMITED
    after = world.run(request())  # a 401 once the window is full: no Retry-After of its own
    assert quota(after) == window("0")
    assert len(world.upstream.requests) == 3


def test_a_refusal_reads_the_window_the_call_would_count_against():
    """The user's own window when a valid token came and the limit is per user (a 405 or a
    refused path too, though the token is checked after them), else the client IP's: a
    revoked token is nobody's."""
    world = World(
        make_route(auth=AuthMode.OPTIONAL, rate_limit=RateLimitPolicy(5, 60, LimitKey.USER))
    )
    alice = [("Authorization", "Bearer user:alice:user")]
    for _ in range(3):
        world.run(request(headers=alice))
    world.run(request())  # anonymous: the client IP's window
    assert quota(world.run(request(method="DELETE", headers=alice))) == window("2", limit="5")
    assert quota(world.run(request(path="/svc/..;/x", headers=alice)))["RateLimit-Remaining"] == "2"
    assert quota(world.run(request(method="DELETE")))["RateLimit-Remaining"] == "4"
    forged = [("Authorization", "Bearer forged")]
    assert quota(world.run(request(headers=forged)))["RateLimit-Remaining"] == "4"
    bob = [("Authorization", "Bearer user:bob:user")]
    assert quota(world.run(request(method="DELETE", headers=bob))) == window("5", "0", "5")
    world.edge.revoked_ids.add("jti")  # every fake token's id: alice's is revoked now
    refused = world.run(request(headers=alice))
    assert error_of(refused).error is ProxyError.TOKEN_REVOKED
    assert quota(refused)["RateLimit-Remaining"] == "4"
    assert quota(world.run(request(method="DELETE", headers=alice)))["RateLimit-Remaining"] == "4"
    assert world.limiter.calls == {"svc:user:alice": 3, "svc:ip:10.0.0.9": 1}


def test_a_revoked_token_without_the_role_is_unauthenticated_not_forbidden():
    # Both refusals read revocation and the window in one look each, and count nothing.
    world = World(
        make_route(
            auth=AuthMode.REQUIRED,
            required_roles=frozenset({"admin"}),
            rate_limit=RateLimitPolicy(5, 60, LimitKey.USER),
        )
    )
    token = [("Authorization", "Bearer user:u1:user")]
    denied = world.run(request(headers=token))
    assert (error_of(denied).error, quota(denied)) == (
        ProxyError.PERMISSION_DENIED,
        window("5", "0", "5"),
    )
    world.edge.revoked_ids.add("jti")
    revoked = world.run(request(headers=token))
    assert (error_of(revoked).error, quota(revoked)) == (
        ProxyError.TOKEN_REVOKED,
        window("5", "0", "5"),
    )
    assert (world.edge.calls, world.edge.peeks) == (0, 2)
    assert world.limiter.calls == {}
    assert world.upstream.requests == []


def test_refusals_on_unlimited_routes_carry_no_rate_headers_and_read_nothing():
    world = World(make_route(auth=AuthMode.REQUIRED))
    user = [("Authorization", "Bearer user:u1:user")]
    for refused in (
        world.run(request()),
        world.run(request(method="DELETE", headers=user)),
        world.run(request(path="/svc/..;/x")),
    ):
        assert quota(refused) == {}
    assert (world.edge.calls, world.edge.peeks) == (0, 0)
    assert quota(world.run(request(path="/elsewhere"))) == {}  # no route, no limit


def test_an_answer_the_entry_point_gives_itself_reads_the_routes_window():
    """A body too large (413) or broken is refused before `execute`: the entry point asks for
    the window of the route the path matches, counting nothing."""
    limited = make_route(rate_limit=RateLimitPolicy(3, 60, LimitKey.IP))
    world = World(limited, make_route(name="open", path_prefix="/open"))
    world.run(request())
    assert world.use_case.rate_limit_headers(request()) == tuple(window("2").items())
    assert world.use_case.rate_limit_headers(request(path="/svc/a/../b")) == tuple(
        window("2").items()
    )
    assert world.use_case.rate_limit_headers(request(path="/open/x")) == ()
    assert world.use_case.rate_limit_headers(request(path="/elsewhere")) == ()
    assert world.use_case.rate_limit_headers(request(path="/svc/a%2Fb")) == ()
    assert world.limiter.calls == {"svc:ip:10.0.0.9": 1}


def test_an_upstream_answer_cannot_set_the_platforms_own_cookies():
    # The admin's session and CSRF cookies live on the proxy's origin: an upstream that set
    # them could sign an admin into its own session or fix the CSRF token.
    answer = StoredResponse(
        200,
        (
            ("Set-Cookie", "sessionid=attacker; Path=/admin/"),
            ("Set-Cookie", "cart=3; Path=/"),
            ("Content-Type", "application/json"),
        ),
        b"{}",
    )
    world = World(script=[answer], reserved_cookies=frozenset({"sessionid", "csrftoken"}))
    result = world.run()
    assert isinstance(result, Ok)
    cookies = [value for name, value in result.value.headers if name.lower() == "set-cookie"]
    assert cookies == ["cart=3; Path=/"]
