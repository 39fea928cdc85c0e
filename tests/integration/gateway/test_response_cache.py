"""The response cache: per-user keys, what is never cached, X-Cache, Age, no stampede."""

import json
import threading

import httpx
import pytest

from apps.gateway.response_cache import KEYSPACE
from core.domain.gateway.caching import cache_key
from core.domain.gateway.route import AuthMode
from core.usecases.gateway.manage_routes import RouteChanges
from core.usecases.gateway.ports import CacheResult, StoredResponse
from tests.factories.gateway import gunicorn_environ
from tests.factories.tokens import access_token, user_uuid
from tests.fakes.clock import FakeClock, FakeMonotonic

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def test_miss_then_hit_without_a_second_upstream_call(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    first = proxy.get("/orders/item")
    second = proxy.get("/orders/item")
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert second.json() == first.json()
    assert upstream.calls["/item"] == 1
    assert proxy.post("/orders/item").headers["x-cache"] == "BYPASS"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def timed_proxy(clock):
    """The proxy with the use case's clocks injected: the wall clock moves only when the test
    says, and the upstream call takes no time on the monotonic one (no response delay)."""
    from apps.gateway import wiring
    from apps.gateway.entrypoint import GatewayApplication, GatewayHandler

    def forward():
        return wiring.forward_request(clock=clock, monotonic=FakeMonotonic())

    app = GatewayApplication(GatewayHandler(forward=forward))
    transport = httpx.WSGITransport(app=app, remote_addr="10.1.2.3")
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client


def _ages(response):
    return response.headers.get_list("age")


def test_hits_carry_an_age_that_grows_with_the_clock(timed_proxy, clock, upstream, add_route):
    add_route(upstream_url=upstream.url, cache_ttl_seconds=600)
    miss = timed_proxy.get("/orders/item")
    assert (miss.headers["x-cache"], _ages(miss)) == ("MISS", [])
    clock.advance(seconds=5)
    hit = timed_proxy.get("/orders/item")
    assert (hit.headers["x-cache"], _ages(hit)) == ("HIT", ["5"])
    clock.advance(seconds=120)
    later = timed_proxy.get("/orders/item")
    assert (later.headers["x-cache"], _ages(later)) == ("HIT", ["125"])
    assert later.json() == miss.json()
    assert upstream.calls["/item"] == 1


def test_a_hit_counts_the_age_the_upstream_sent_and_a_miss_passes_it_on(
    timed_proxy, clock, upstream, add_route
):
    add_route(upstream_url=upstream.url, cache_ttl_seconds=600)
    miss = timed_proxy.get("/orders/aged")
    assert (miss.headers["x-cache"], _ages(miss)) == ("MISS", ["40"])
    hit = timed_proxy.get("/orders/aged")
    assert (hit.headers["x-cache"], _ages(hit)) == ("HIT", ["40"])
    clock.advance(seconds=3)
    hit = timed_proxy.get("/orders/aged")
    assert (hit.headers["x-cache"], _ages(hit)) == ("HIT", ["43"])  # one Age: ours
    head = timed_proxy.head("/orders/aged")
    assert (head.headers["x-cache"], _ages(head)) == ("MISS", ["40"])
    clock.advance(seconds=1)
    head = timed_proxy.head("/orders/aged")
    assert (head.headers["x-cache"], _ages(head)) == ("HIT", ["41"])
    assert upstream.calls["/aged"] == 2


def test_entries_of_the_previous_release_are_misses_and_left_to_it(
    timed_proxy, clock, upstream, add_route
):
    """During a rolling deploy the previous release (entries of three fields under `rc:`, no
    time stored) still runs beside this one: neither reads the other's entries."""
    from apps.gateway import wiring
    from apps.gateway.redis_support import key_prefix

    created = add_route(upstream_url=upstream.url, cache_ttl_seconds=600)
    target = created.upstream_target("/orders/item", None)
    old_key = f"{key_prefix()}rc:{cache_key('orders', 'GET', target, 'testserver', None)}"
    meta = json.dumps([200, [["Content-Type", "application/json"]], []]).encode()
    old_entry = meta + b'\n{"served_by": "the previous release"}'
    client = wiring.state().redis
    client.set(old_key, old_entry, px=600_000)

    first = timed_proxy.get("/orders/item")
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
    assert first.json()["served_by"] == "upstream"
    clock.advance(seconds=2)
    again = timed_proxy.get("/orders/item")
    assert (again.headers["x-cache"], _ages(again)) == ("HIT", ["2"])
    assert client.get(old_key) == old_entry  # still the previous release's to serve
    assert upstream.calls["/item"] == 1


def test_entries_the_previous_release_stored_for_an_api_key_are_not_served(
    proxy, upstream, add_route
):
    """`rc4:` entries have this release's format, but the previous release filled them from
    requests carrying an unverified API key too: one may hold a tenant's answer under the
    anonymous key. This release neither serves them nor touches them."""
    from apps.gateway import wiring
    from apps.gateway.redis_support import key_prefix
    from apps.gateway.response_cache import encode

    created = add_route(upstream_url=upstream.url, auth=AuthMode.NONE, cache_ttl_seconds=600)
    target = created.upstream_target("/orders/x", None)
    anonymous = cache_key("orders", "GET", target, "http://testserver", None)
    tenants = StoredResponse(
        200, (("Content-Type", "application/json"),), b'{"served_by": "tenant A\'s answer"}'
    )
    old_key = f"{key_prefix()}rc4:{anonymous}"
    client = wiring.state().redis
    client.set(old_key, encode(tenants), px=600_000)

    first = proxy.get("/orders/x")
    assert (first.headers["x-cache"], first.json()["served_by"]) == ("MISS", "upstream")
    assert proxy.get("/orders/x").headers["x-cache"] == "HIT"
    assert client.get(old_key) == encode(tenants)  # left to expire with its TTL
    assert upstream.calls["/x"] == 1


@pytest.mark.parametrize(
    "blob", [b"not json\nbody", b"[200, []]\n", b'[200, [["A"]], [], 0, 0]\n', b"\xff\xfe\n"]
)
def test_an_entry_that_cannot_be_read_is_a_bypass_and_is_refilled(proxy, upstream, add_route, blob):
    """Never a 500 for what Redis holds: an unreadable entry under this release's key is passed
    by (the upstream answers), removed, and the next call stores a good one."""
    from apps.gateway import wiring
    from apps.gateway.redis_support import key_prefix
    from apps.gateway.response_cache import KEYSPACE

    created = add_route(upstream_url=upstream.url, cache_ttl_seconds=600)
    target = created.upstream_target("/orders/item", None)
    key = f"{key_prefix()}{KEYSPACE}{cache_key('orders', 'GET', target, 'http://testserver', None)}"
    client = wiring.state().redis
    client.set(key, blob, px=600_000)

    passed = proxy.get("/orders/item")
    assert (passed.status_code, passed.headers["x-cache"]) == (200, "BYPASS")
    assert passed.json()["served_by"] == "upstream"
    assert client.get(key) is None
    assert [proxy.get("/orders/item").headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    assert upstream.calls["/item"] == 2


def test_a_waiter_that_finds_an_unreadable_entry_calls_the_upstream_itself():
    from apps.gateway import wiring
    from apps.gateway.response_cache import RedisResponseCache

    cache = RedisResponseCache(wiring.state().redis, "test-unreadable:")
    entry, _ = cache.keys_for("k")
    wiring.state().redis.set(entry, b"garbage", px=60_000)
    assert cache.wait_for("k", 1.0) is None
    answer = StoredResponse(200, (("A", "1"),), b"x", stored_at=5.0)
    cache.store("k", answer, 60)
    assert cache.wait_for("k", 1.0) == answer


def test_head_answers_are_cached_too_apart_from_the_gets(proxy, upstream, add_route):
    """API.md caches `GET` and `HEAD`: a HEAD is served from the cache the second time, with
    the length its upstream stated, and never answers a GET (nor a GET a HEAD)."""
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    heads = [proxy.head("/orders/item") for _ in range(2)]
    assert [h.headers["x-cache"] for h in heads] == ["MISS", "HIT"]
    assert heads[1].headers["content-length"] == heads[0].headers["content-length"] != "0"
    assert heads[1].content == b""
    got = proxy.get("/orders/item")
    assert (got.headers["x-cache"], got.json()["method"]) == ("MISS", "GET")
    assert [seen["method"] for seen in upstream.seen] == ["HEAD", "GET"]


def test_an_empty_query_is_its_own_entry_as_it_is_its_own_upstream_target(upstream, add_route):
    from apps.gateway.entrypoint import GatewayApplication

    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    app = GatewayApplication()

    def x_cache(raw_uri):
        answered = []
        app(gunicorn_environ(raw_uri), lambda *status: answered.append(status))
        return dict(answered[0][1])["X-Cache"]

    assert [x_cache(uri) for uri in ("/orders/x", "/orders/x?", "/orders/x?", "/orders/x")] == [
        "MISS",
        "MISS",
        "HIT",
        "HIT",
    ]
    assert [seen["path"] for seen in upstream.seen] == ["/x", "/x?"]


def test_a_route_sent_elsewhere_never_answers_from_its_old_upstreams_entries(
    proxy, upstream, add_route
):
    from apps.gateway import wiring

    add_route(upstream_url=upstream.url + "/old", cache_ttl_seconds=60)
    assert proxy.get("/orders/item").json()["path"] == "/old/item"
    moving = wiring.update_route().execute(
        "orders", RouteChanges(upstream_url=upstream.url + "/new")
    )
    assert moving.is_ok(), moving
    moved = proxy.get("/orders/item")
    assert (moved.headers["x-cache"], moved.json()["path"]) == ("MISS", "/new/item")
    assert wiring.delete_route().execute("orders").is_ok()
    add_route(upstream_url=upstream.url + "/other", cache_ttl_seconds=60)  # the same name
    recreated = proxy.get("/orders/item")
    assert (recreated.headers["x-cache"], recreated.json()["path"]) == ("MISS", "/other/item")
    assert proxy.get("/orders/item").headers["x-cache"] == "HIT"


def test_users_never_see_each_others_or_anonymous_answers(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.OPTIONAL, cache_ttl_seconds=60)
    alice = {"Authorization": f"Bearer {access_token(user_id=user_uuid('alice'))}"}
    bob = {"Authorization": f"Bearer {access_token(user_id=user_uuid('bob'))}"}
    anonymous = proxy.get("/orders/me")
    as_alice = proxy.get("/orders/me", headers=alice)
    as_bob = proxy.get("/orders/me", headers=bob)
    assert [r.headers["x-cache"] for r in (anonymous, as_alice, as_bob)] == ["MISS"] * 3
    assert as_alice.json()["headers"]["x-user-id"] == user_uuid("alice")
    assert as_bob.json()["headers"]["x-user-id"] == user_uuid("bob")
    again = proxy.get("/orders/me", headers=alice)
    assert again.headers["x-cache"] == "HIT"
    assert again.json()["headers"]["x-user-id"] == user_uuid("alice")


@pytest.mark.parametrize(
    "credential", ["X-API-Key", "apikey", "Api-Key", "X-Auth-Token", "X-Amz-Security-Token"]
)
def test_an_answer_made_for_an_unverified_api_key_is_never_shared(
    proxy, upstream, add_route, credential
):
    """An upstream behind an `auth: none` route may answer per API key, which the cache key
    does not hold: a keyed request neither fills the shared entry nor is served from it."""
    add_route(upstream_url=upstream.url, auth=AuthMode.NONE, cache_ttl_seconds=60)
    tenant_a = {credential: "TenantAKey"}

    keyed = [proxy.get("/orders/x", headers=tenant_a) for _ in range(2)]
    anonymous = [proxy.get("/orders/x") for _ in range(2)]
    keyed_after = proxy.get("/orders/x", headers=tenant_a)

    assert [r.headers["x-cache"] for r in keyed] == ["BYPASS", "BYPASS"]
    assert keyed[0].json()["headers"][credential.lower()] == "TenantAKey"
    assert [r.headers["x-cache"] for r in anonymous] == ["MISS", "HIT"]
    assert all(credential.lower() not in r.json()["headers"] for r in anonymous)
    assert keyed_after.headers["x-cache"] == "BYPASS"  # not served the anonymous answer
    assert keyed_after.json()["headers"][credential.lower()] == "TenantAKey"
    assert upstream.calls["/x"] == 4


@pytest.mark.parametrize(
    "behaviour", ["nostore", "private", "nocache", "varyall", "cookie", "fail"]
)
def test_uncacheable_answers_are_fetched_every_time(proxy, upstream, add_route, behaviour):
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    proxy.get(f"/orders/{behaviour}")
    proxy.cookies.clear()  # an anonymous client again (a Cookie would bypass the cache)
    assert proxy.get(f"/orders/{behaviour}").headers["x-cache"] == "MISS"
    assert upstream.calls[f"/{behaviour}"] == 2


def test_an_answer_varying_on_accept_encoding_never_reaches_another_encodings_client(
    proxy, upstream, add_route
):
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    gzip = {"Accept-Encoding": "gzip"}
    identity = {"Accept-Encoding": "identity"}

    first = proxy.get("/orders/vary", headers=gzip)
    again = proxy.get("/orders/vary", headers=gzip)
    other = proxy.get("/orders/vary", headers=identity)

    assert [r.headers["x-cache"] for r in (first, again, other)] == ["MISS", "HIT", "MISS"]
    assert again.json()["headers"]["accept-encoding"] == "gzip"
    assert other.json()["headers"]["accept-encoding"] == "identity"
    assert upstream.calls["/vary"] == 2


def test_an_answer_varying_on_credentials_keeps_no_credential_in_the_shared_cache(
    proxy, upstream, add_route
):
    """`Vary: Authorization, Cookie` stores what the request sent in those fields, to serve
    only requests that send the same: that is the caller's bearer token and session cookie.
    Written to Redis as sent, anyone who can read the cache could replay them (the token for
    up to 30 minutes), the way the access log is kept free of them. A digest of the values
    tells variants apart as well."""
    from apps.gateway.redis_support import raw_redis

    add_route(upstream_url=upstream.url, cache_ttl_seconds=60, auth=AuthMode.OPTIONAL)
    token = access_token(user_id=user_uuid("alice"))
    caller = {"Authorization": f"Bearer {token}", "Cookie": "sessionid=s3cr3t-session-value"}

    first = proxy.get("/orders/varycreds", headers=caller)
    again = proxy.get("/orders/varycreds", headers=caller)
    other_cookie = proxy.get("/orders/varycreds", headers={**caller, "Cookie": "sessionid=x"})

    assert [r.headers["x-cache"] for r in (first, again, other_cookie)] == ["MISS", "HIT", "MISS"]
    client = raw_redis()
    entries = [client.get(key) for key in client.scan_iter(match=f"*{KEYSPACE}*", count=1000)]
    # What the gateway keeps of its own: the line before the body (this upstream echoes the
    # request's headers in its body, which is the upstream's to answer for).
    stored = b"".join(entry.partition(b"\n")[0] for entry in entries if entry)
    assert b"Vary" in stored  # the entry is there
    assert token.encode() not in stored
    assert token.split(".")[2].encode() not in stored  # not even the signature
    assert b"s3cr3t-session-value" not in stored


@pytest.fixture
def client_at():
    """`client_at(address)`: a client of the proxy calling from `address`."""
    from apps.gateway.entrypoint import GatewayApplication

    app = GatewayApplication()
    clients = []

    def client_at(address):
        transport = httpx.WSGITransport(app=app, remote_addr=address)
        clients.append(httpx.Client(transport=transport, base_url="http://testserver"))
        return clients[-1]

    yield client_at
    for client in clients:
        client.close()


def test_an_answer_varying_on_the_client_address_serves_only_that_address(
    client_at, upstream, add_route
):
    """`Vary: X-Forwarded-For` names a field the gateway sets: the variant is what the upstream
    received, so one address's answer never answers another's (no client sends the field),
    and a client's own `X-Forwarded-For`, dropped before the upstream, changes nothing."""
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    one, other = client_at("127.0.0.1"), client_at("127.0.0.2")
    target = "/orders/varyon?on=X-Forwarded-For"

    first = one.get(target)
    from_other = other.get(target)
    again = one.get(target)
    spoofing = one.get(target, headers={"X-Forwarded-For": "6.6.6.6"})

    x_cache = [r.headers["x-cache"] for r in (first, from_other, again, spoofing)]
    assert x_cache == ["MISS", "MISS", "HIT", "HIT"]
    assert from_other.json()["headers"]["x-forwarded-for"] == "127.0.0.2"
    assert spoofing.json()["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert upstream.calls["/varyon"] == 2


def test_behind_a_trusted_proxy_each_forwarded_chain_is_its_own_variant(
    proxy, upstream, add_route, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    target = "/orders/varyon?on=X-Forwarded-For"
    via = {client: {"X-Forwarded-For": client} for client in ("7.7.7.7", "8.8.8.8")}

    answers = [proxy.get(target, headers=via[c]) for c in ("7.7.7.7", "8.8.8.8", "7.7.7.7")]

    assert [r.headers["x-cache"] for r in answers] == ["MISS", "MISS", "HIT"]
    assert answers[1].json()["headers"]["x-forwarded-for"] == "8.8.8.8, 10.1.2.3"
    assert upstream.calls["/varyon"] == 2


def test_an_answer_varying_on_roles_is_not_served_once_the_users_roles_change(
    proxy, upstream, add_route
):
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60, auth=AuthMode.REQUIRED)
    target = "/orders/varyon?on=X-User-Roles"
    before = {
        "Authorization": f"Bearer {access_token(user_id=user_uuid('alice'), roles=('user',))}"
    }
    promoted = access_token(user_id=user_uuid("alice"), roles=("admin", "user"))
    after = {"Authorization": f"Bearer {promoted}"}

    answers = [proxy.get(target, headers=h) for h in (before, after, before)]

    assert [r.headers["x-cache"] for r in answers] == ["MISS", "MISS", "HIT"]
    assert answers[1].json()["headers"]["x-user-roles"] == "admin,user"
    assert upstream.calls["/varyon"] == 2


def test_concurrent_misses_make_at_most_a_couple_of_upstream_calls(upstream, settings):
    from apps.gateway import wiring
    from apps.gateway.entrypoint import GatewayApplication
    from tests.factories.gateway import route

    settings.GATEWAY_ROUTE_REFRESH_SECONDS = 60  # threads use the table loaded here
    wiring.create_route().execute(route(upstream_url=upstream.url, cache_ttl_seconds=60))
    wiring.state().routes.current()
    app = GatewayApplication()
    statuses = []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/orders/slowfill",
            "HTTP_HOST": "testserver",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
        }
        app(environ, lambda status, headers: statuses.append(status))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == ["200 OK"] * 8
    assert upstream.calls["/slowfill"] <= 2


def test_in_process_cache_fills_once_and_expires():
    from apps.gateway.response_cache import InProcessResponseCache

    cache = InProcessResponseCache(max_entries=10)
    answer = StoredResponse(200, (("A", "1"),), b"x")
    assert cache.lookup("k", 1) == (CacheResult.MISS, None, True)
    assert cache.lookup("k", 1) == (CacheResult.MISS, None, False)
    assert cache.wait_for("k", 0.01) is None
    cache.store("k", answer, 60)
    assert cache.wait_for("k", 0.01) == answer
    assert cache.lookup("k", 1) == (CacheResult.HIT, answer, False)
    cache.store("old", answer, 0)
    assert cache.lookup("old", 1)[0] is CacheResult.MISS
    cache.release_fill("old")
    for index in range(12):
        cache.store(f"n{index}", answer, 60)
    assert cache.lookup("k", 1)[0] is CacheResult.MISS
    cache.clear()


def test_encoded_responses_round_trip():
    from apps.gateway.response_cache import decode, encode

    answer = StoredResponse(
        201,
        (("Set-Cookie", "a\nb"), ("X", "y")),
        b"line1\nline2",
        (("accept", "a/b"),),
        stored_at=1767268800.125,
        initial_age=40.0035,
    )
    assert decode(encode(answer)) == answer


def test_an_answer_made_for_one_scheme_never_answers_the_other(
    proxy, upstream, add_route, settings
):
    # The upstream learns the scheme (`X-Forwarded-Proto`) and may build links or redirects
    # from it, as from the host: an answer made for an http request served to https callers
    # (or one a client behind the trusted proxy asked for over http) would send them to http.
    settings.TRUSTED_PROXY_COUNT = 1
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    over = {proto: {"X-Forwarded-Proto": proto} for proto in ("http", "https")}
    plain = proxy.get("/orders/item", headers=over["http"])
    secure = proxy.get("/orders/item", headers=over["https"])
    assert (plain.headers["x-cache"], secure.headers["x-cache"]) == ("MISS", "MISS")
    assert secure.json()["headers"]["x-forwarded-proto"] == "https"
    assert proxy.get("/orders/item", headers=over["https"]).headers["x-cache"] == "HIT"
    assert upstream.calls["/item"] == 2
