"""Route validation, prefix normalisation and upstream URL building (core.domain.gateway.route)."""

import pytest

from core.domain.gateway.route import (
    AuthMode,
    BreakerPatch,
    BreakerPolicy,
    LimitKey,
    RateLimitPatch,
    RateLimitPolicy,
    Route,
    is_platform_path,
    normalise_prefix,
    prefix_problems,
    rate_limit_parts_problems,
    route_problems,
    upstream_problems,
)
from core.domain.shared.hosts import IPV4_RULE, is_host


def make(**fields):
    base = {"name": "orders", "path_prefix": "/orders", "upstream_url": "http://svc:8080/api"}
    base.update(fields)
    return Route(**base)


def test_a_sensible_route_has_no_problems():
    assert route_problems(make()) == {}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"path_prefix": "orders"}, "path_prefix"),
        ({"path_prefix": "/a//b"}, "path_prefix"),
        ({"path_prefix": "/orders/"}, "path_prefix"),
        ({"path_prefix": "/api/v2"}, "path_prefix"),
        ({"path_prefix": "/health"}, "path_prefix"),
        ({"upstream_url": "ftp://svc"}, "upstream_url"),
        ({"upstream_url": "http://"}, "upstream_url"),
        ({"upstream_url": "http://svc?x=1"}, "upstream_url"),
        ({"upstream_url": "http://127.0.0.1:18141?"}, "upstream_url"),
        ({"upstream_url": "http://svc/base?"}, "upstream_url"),
        ({"upstream_url": "http://h/base/#"}, "upstream_url"),
        ({"upstream_url": "http://h#"}, "upstream_url"),
        ({"upstream_url": "http://h/base?#"}, "upstream_url"),
        ({"upstream_url": "http://@h/base"}, "upstream_url"),
        ({"upstream_url": "http://svc:0/"}, "upstream_url"),
        ({"upstream_url": "http://svc:99999/"}, "upstream_url"),
        ({"methods": frozenset()}, "methods"),
        ({"methods": frozenset({"GET", "BREW"})}, "methods"),
        ({"required_roles": frozenset({"admin"})}, "required_roles"),
        ({"required_roles": frozenset({" "}), "auth": AuthMode.REQUIRED}, "required_roles"),
        ({"rate_limit": RateLimitPolicy(0, 1)}, "rate_limit"),
        ({"rate_limit": RateLimitPolicy(1, 0)}, "rate_limit"),
        ({"rate_limit": RateLimitPolicy(1, 1, LimitKey.USER)}, "rate_limit"),
        ({"cache_ttl_seconds": -1}, "cache_ttl_seconds"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"retries": 9}, "retries"),
        ({"circuit_breaker": BreakerPolicy(0, 1)}, "circuit_breaker"),
        ({"circuit_breaker": BreakerPolicy(1, 0)}, "circuit_breaker"),
        ({"path_prefix": "/a/../b"}, "path_prefix"),
        ({"path_prefix": "/a/./b"}, "path_prefix"),
        ({"path_prefix": "/%61dmin"}, "path_prefix"),
        ({"path_prefix": "/a%2Fb"}, "path_prefix"),
        ({"path_prefix": "/a;b"}, "path_prefix"),
        ({"upstream_url": "http://svc/a b"}, "upstream_url"),
        ({"upstream_url": "http://a..b/"}, "upstream_url"),
        ({"upstream_url": "http://" + "a" * 64 + ".example/"}, "upstream_url"),
        ({"upstream_url": "http://svc/a/../b"}, "upstream_url"),
        ({"upstream_url": "http://svc//b"}, "upstream_url"),
        ({"upstream_url": "http://svc/%2e%2e/b"}, "upstream_url"),
        ({"upstream_url": "http://svc/b/.."}, "upstream_url"),
        ({"upstream_url": "http://svc/a%5cb"}, "upstream_url"),
        ({"upstream_url": "http://example.com../"}, "upstream_url"),
        ({"upstream_url": "http://svc/a\tb"}, "upstream_url"),
        ({"upstream_url": "http://svc/\u00e9"}, "upstream_url"),
        ({"rate_limit": RateLimitPolicy(2**31, 1)}, "rate_limit"),
        ({"rate_limit": RateLimitPolicy(1, 86_401)}, "rate_limit"),
        ({"cache_ttl_seconds": 86_401}, "cache_ttl_seconds"),
        ({"circuit_breaker": BreakerPolicy(2**31, 1)}, "circuit_breaker"),
        ({"circuit_breaker": BreakerPolicy(1, 86_401)}, "circuit_breaker"),
    ],
)
def test_each_broken_rule_is_reported_on_its_field(fields, field):
    assert field in route_problems(make(**fields))


def test_root_prefix_is_allowed_and_platform_parents_are_not():
    assert prefix_problems("/") == []
    assert prefix_problems("/.well-known") != []
    assert upstream_problems("https://example.test") == []


@pytest.mark.parametrize(
    ("raw", "expected"), [("/orders/", "/orders"), ("/", "/"), (" /a/b/ ", "/a/b"), ("x/", "x/")]
)
def test_prefixes_are_normalised_without_trailing_slash(raw, expected):
    assert normalise_prefix(raw) == expected


@pytest.mark.parametrize("raw", ["//", "///", "/orders//", " //a", "/a//b/"])
def test_a_prefix_holding_a_double_slash_is_refused_not_normalised_away(raw):
    # Stripped of its slashes, `//` was the root `/`: a route for every path.
    normalised = normalise_prefix(raw)
    assert "//" in normalised
    assert prefix_problems(normalised) == [
        "Use an absolute path such as /orders (one trailing '/' is dropped): no query, "
        "spaces, '//', '.' or '..' segments or needless escapes."
    ]


@pytest.mark.parametrize("path", ["/h%00", "/a%00b/c", "/a/%00"])
def test_an_upstream_path_with_an_encoded_nul_is_refused(path):
    # Refused in request paths too: an upstream written in C ends the path there.
    assert upstream_problems(f"http://host{path}") == [
        "Leave out '%00': an upstream written in C ends the path there."
    ]


@pytest.mark.parametrize(
    "host",
    [
        "0x7f.1",
        "0X7F.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "127.1",
        "127.0.0.01",
        "127.0.0.1.",
        "1.2.3.4.5",
        "256.0.0.1",
        "0x",
        "example.123",  # a name ending in a number: an IPv4 address to the WHATWG parser
        "example.0x1f.",
    ],
)
def test_an_upstream_host_a_client_may_read_as_another_ipv4_address_is_refused(host):
    assert upstream_problems(f"http://{host}/") == [IPV4_RULE]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.10", "svc", "a1.b2", "x.1a", "[::1]"],
)
def test_a_canonical_ipv4_address_and_names_are_upstream_hosts(host):
    assert upstream_problems(f"http://{host}:8080/api") == []


@pytest.mark.parametrize(
    ("path", "platform"),
    [("/api", True), ("/api/v1/x", True), ("/health", True), ("/apix", False), ("/o", False)],
)
def test_platform_paths_are_recognised(path, platform):
    assert is_platform_path(path) is platform


@pytest.mark.parametrize(
    ("route", "path", "query", "target"),
    [
        (make(), "/orders/7", "a=1", "http://svc:8080/api/7?a=1"),
        (make(), "/orders/7", "", "http://svc:8080/api/7?"),  # an empty query, as sent
        (make(), "/orders", None, "http://svc:8080/api"),
        (make(strip_prefix=False), "/orders/7", None, "http://svc:8080/api/orders/7"),
        (make(upstream_url="http://svc"), "/orders", None, "http://svc/"),
        (make(upstream_url="http://svc"), "/orders", "", "http://svc/?"),
        (make(path_prefix="/"), "/x", None, "http://svc:8080/api/x"),
    ],
)
def test_upstream_target_strips_the_prefix_when_asked(route, path, query, target):
    assert route.upstream_target(path, query) == target


@pytest.mark.parametrize(
    ("path", "query", "target"),
    [
        ("/orders", None, "http://svc:8080/api/"),  # the upstream_url as written
        ("/orders", "a=1", "http://svc:8080/api/?a=1"),
        ("/orders/", None, "http://svc:8080/api/"),
        ("/orders/7", None, "http://svc:8080/api/7"),  # never `/api//7`
        ("/orders/7/", None, "http://svc:8080/api/7/"),
    ],
)
def test_a_path_that_is_the_prefix_reaches_the_upstream_url_with_its_trailing_slash(
    path, query, target
):
    """`upstream_url: http://svc:8080/api/` names `/api/`: the route's own root (`/orders`)
    reaches that, not `/api`, which a Django upstream answers with a redirect to `/api/` (a
    path of the gateway's, which no route serves) or a 404."""
    route = make(upstream_url="http://svc:8080/api/")
    assert route.upstream_target(path, query) == target


def test_methods_are_checked_exactly():
    assert make().allows("GET")
    assert not make().allows("POST")


def test_a_rate_limit_patch_keeps_what_it_does_not_give():
    current = RateLimitPolicy(10, 60, LimitKey.USER)
    assert RateLimitPatch(requests=5).applied_to(current) == RateLimitPolicy(5, 60, LimitKey.USER)
    assert RateLimitPatch(key=LimitKey.IP).applied_to(current) == RateLimitPolicy(10, 60)


def test_a_rate_limit_patch_on_no_limit_needs_the_required_fields():
    assert RateLimitPatch(requests=5).applied_to(None) == ["window_seconds"]
    assert RateLimitPatch().applied_to(None) == ["requests", "window_seconds"]
    assert RateLimitPatch(5, 60).applied_to(None) == RateLimitPolicy(5, 60, LimitKey.IP)


def test_a_breaker_patch_keeps_what_it_does_not_give():
    current = BreakerPolicy(3, 20)
    assert BreakerPatch(recovery_seconds=7).applied_to(current) == BreakerPolicy(3, 7)
    assert BreakerPatch(failure_threshold=9).applied_to(current) == BreakerPolicy(9, 20)


@pytest.mark.parametrize(
    ("requests", "window_seconds", "key"),
    [
        (5, None, None),
        (None, 60, None),
        (None, None, LimitKey.IP),
        (5, 60, None),
        (None, 60, LimitKey.IP),
    ],
)
def test_a_rate_limit_kept_field_by_field_needs_all_its_fields_or_none(
    requests, window_seconds, key
):
    assert rate_limit_parts_problems(requests, window_seconds, key) == [
        "Set requests, window and key together, or none of them."
    ]


def test_a_rate_limit_kept_field_by_field_whole_or_absent_is_fine():
    assert rate_limit_parts_problems(5, 60, "user") == []
    assert rate_limit_parts_problems(None, None, None) == []


@pytest.mark.parametrize(
    "role", ["a\nb", "admin\n", " admin", "Admin", "1", "_x", "a" * 51, "r\u00f4le", "a b", ""]
)
def test_required_roles_must_be_role_slugs(role):
    assert "required_roles" in route_problems(
        make(auth=AuthMode.REQUIRED, required_roles=frozenset({role}))
    )


@pytest.mark.parametrize("role", ["admin", "billing:read", "a", "ops.team-1_x", "a" * 50])
def test_role_slugs_may_be_required(role):
    assert route_problems(make(auth=AuthMode.REQUIRED, required_roles=frozenset({role}))) == {}


def test_a_name_with_a_trailing_newline_is_refused():
    assert "name" in route_problems(make(name="orders\n"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/base",
        "http://127.0.0.1:9/base/",
        "http://[::1]:8080/x",
        "https://api.example.com/v1/",
        "http://svc_1:8080",
        "http://svc/%7Euser",
        "http://svc/projects/group%2Fproject",
        "http://example.com./v1",
    ],
)
def test_usable_upstream_urls_have_no_problems(url):
    assert upstream_problems(url) == []


@pytest.mark.parametrize(
    "path", ["/a%", "/a%2", "/%zz", "/a|b", '/a"b', "/a<b>", "/a^b", "/a`b", "/{x}", "/a[0]"]
)
def test_an_upstream_path_outside_rfc_3986_or_with_a_broken_escape_is_refused(path):
    # The gateway forwards it as stored: `/a%` + `/x` would be the request target `/a%/x`.
    assert upstream_problems("http://127.0.0.1:1" + path) == [
        "Use only characters a URL path may hold (RFC 3986): percent-encode others, "
        "and write '%' as '%25'."
    ]


def test_every_character_a_url_path_may_hold_is_usable():
    assert upstream_problems("http://svc/az-AZ_09.~!$&'()*+,;=:@/%41%25%7e/") == []


@pytest.mark.parametrize("host", ["0x7f.1", "2130706433", "0177.0.0.1"])
def test_no_context_takes_a_host_a_client_may_read_as_another_ipv4_address(host):
    # The one host rule gateway routes and aggregation sources share.
    assert not is_host(host)
