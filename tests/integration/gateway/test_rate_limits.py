"""Sliding-window limits in Redis: exact under concurrency, headers, keys, window sliding."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.common.tokens import CacheTokenRevocations
from core.domain.gateway.route import AuthMode, LimitKey, RateLimitPolicy
from core.usecases.gateway.ports import EdgeVerdict
from tests.factories.tokens import access_token, user_uuid

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def test_exactly_the_limit_passes_under_concurrent_checks():
    from apps.gateway import wiring

    limiter = wiring.state().limiter
    policy = RateLimitPolicy(requests=25, window_seconds=60)
    allowed = []
    barrier = threading.Barrier(10)

    def worker():
        barrier.wait()
        for _ in range(10):
            allowed.append(limiter.hit("r:ip:1.1.1.1", policy, time.time()).allowed)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 25
    assert len(allowed) == 100


def test_two_gateway_hosts_whose_workers_share_a_pid_are_counted_apart():
    """Replicas in containers often run workers under the same pid; each starts counting its
    calls from zero. Their calls in one millisecond are still two calls, not one: exactly
    `requests` pass between them."""
    from apps.gateway.limiter import RedisSlidingWindowLimiter
    from apps.gateway.redis_support import key_prefix, raw_redis

    one, other = (RedisSlidingWindowLimiter(raw_redis(), key_prefix()) for _ in range(2))
    policy = RateLimitPolicy(requests=2, window_seconds=60)
    verdicts = [limiter.hit("r:ip:1.1.1.1", policy, 1000.0) for limiter in (one, other, one)]
    assert [verdict.allowed for verdict in verdicts] == [True, True, False]
    assert [verdict.remaining for verdict in verdicts] == [1, 0, 0]


def test_window_slides_with_the_clock():
    from apps.gateway import wiring

    limiter = wiring.state().limiter
    policy = RateLimitPolicy(requests=2, window_seconds=10)
    assert limiter.hit("s", policy, 1000.0).allowed
    assert limiter.hit("s", policy, 1005.0).allowed
    refused = limiter.hit("s", policy, 1009.0)
    assert not refused.allowed
    assert refused.reset_seconds == pytest.approx(1.0)
    assert limiter.hit("s", policy, 1010.5).allowed  # the first call left the window
    assert not limiter.hit("s", policy, 1011.0).allowed


def test_every_answer_carries_rate_headers_and_429_has_retry_after(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, rate_limit=(2, 60, LimitKey.IP))
    first = proxy.get("/orders")
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert int(first.headers["ratelimit-reset"]) <= 60
    proxy.get("/orders")
    refused = proxy.get("/orders")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert sum(upstream.calls.values()) == 2


def test_answers_after_the_limiter_carry_the_rate_headers_whoever_made_them(
    proxy, upstream, add_route
):
    """API.md: every answer on a limited route carries `RateLimit-*`: a cache hit, the
    upstream's 5xx, and the gateway's own 502, 503 (open circuit) and 504 alike."""
    from core.domain.gateway.route import BreakerPolicy
    from tests.factories.gateway import refusing_url

    limited = {"rate_limit": (50, 60, LimitKey.IP), "circuit_breaker": BreakerPolicy(1, 60)}
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60, timeout_ms=300, **limited)
    add_route(name="gone", path_prefix="/gone", upstream_url=refusing_url(), **limited)
    answers = [
        proxy.get("/orders/item"),
        proxy.get("/orders/item"),  # from the cache
        proxy.get("/orders/slow", params={"ms": "1500"}),  # 504, the circuit opens
        proxy.get("/orders/fail"),  # 503 without calling
        proxy.get("/gone/x"),  # 502
    ]
    assert [(a.status_code, a.headers.get("x-cache")) for a in answers] == [
        (200, "MISS"),
        (200, "HIT"),
        (504, "MISS"),
        (503, "MISS"),
        (502, None),
    ]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["49", "48", "47", "46", "49"]
    for answer in answers:
        assert answer.headers["ratelimit-limit"] == "50"
        assert 0 < int(answer.headers["ratelimit-reset"]) <= 60
    assert upstream.calls["/fail"] == 0


def test_the_gateways_own_answer_headers_replace_the_upstreams(proxy, upstream, add_route):
    # An upstream's `X-Cache: HIT` or `RateLimit-Remaining: 999` came first, before the
    # gateway's own values, so a client reading the first one read the upstream's claim.
    add_route(upstream_url=upstream.url, rate_limit=(5, 60), cache_ttl_seconds=60)
    add_route(name="plain", path_prefix="/plain", upstream_url=upstream.url)
    answer = proxy.get("/orders/claims")
    assert answer.headers.get_list("x-cache") == ["MISS"]
    assert answer.headers.get_list("ratelimit-remaining") == ["4"]
    unclaimed = proxy.get("/plain/claims")  # no limit, no cache: nothing of the gateway's own
    assert unclaimed.headers.get_list("x-cache") == ["HIT"]


def test_per_user_limits_count_each_user_separately(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED, rate_limit=(1, 60, LimitKey.USER))
    alice = {"Authorization": f"Bearer {access_token(user_id=user_uuid('alice'))}"}
    bob = {"Authorization": f"Bearer {access_token(user_id=user_uuid('bob'))}"}
    assert proxy.get("/orders", headers=alice).status_code == 200
    assert proxy.get("/orders", headers=alice).status_code == 429
    assert proxy.get("/orders", headers=bob).status_code == 200


def test_spoofed_forwarded_for_does_not_escape_an_ip_limit(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, rate_limit=(1, 60, LimitKey.IP))
    assert proxy.get("/orders", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
    assert proxy.get("/orders", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429


def test_in_process_limiter_is_exact_too():
    from apps.gateway.limiter import InProcessSlidingWindowLimiter

    limiter = InProcessSlidingWindowLimiter()
    policy = RateLimitPolicy(requests=3, window_seconds=1)
    results = [limiter.hit("k", policy, 50.0).allowed for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert limiter.hit("k", policy, 51.5).remaining == 2
    limiter._checks = 9_999
    limiter.hit("idle", policy, 200_000.0)
    assert "k" not in limiter._windows


def _quota(answer):
    """The `RateLimit-*` fields of an answer (and `Retry-After`, which only a 429 has)."""
    names = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after")
    return {name: answer.headers[name] for name in names if name in answer.headers}


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_refusals_before_the_limiter_carry_the_rate_headers_and_spend_no_budget(
    proxy, upstream, add_route, settings
):
    """API.md: every answer of a limited route carries `RateLimit-*`. A 401, 403, 405, 413 or
    refused path is decided before the limiter: it reads the window without counting, so the
    three calls that reach it are the three the window holds."""
    settings.GATEWAY_MAX_BODY_BYTES = 10
    add_route(
        upstream_url=upstream.url,
        methods=frozenset({"GET"}),
        auth=AuthMode.REQUIRED,
        required_roles=frozenset({"ops"}),
        rate_limit=(3, 60, LimitKey.IP),
    )
    ops = _bearer(access_token(roles=("ops",)))
    refusals = [
        proxy.get("/orders"),
        proxy.get("/orders", headers=_bearer("nonsense")),
        proxy.get("/orders", headers=_bearer(access_token(roles=("user",)))),
        proxy.delete("/orders", headers=ops),
        proxy.post("/orders", headers=ops, content=b"x" * 11),
        proxy.get("/orders/..;/admin", headers=ops),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refusals] == [
        (401, "not_authenticated"),
        (401, "token_invalid"),
        (403, "permission_denied"),
        (405, "method_not_allowed"),
        (413, "payload_too_large"),
        (400, "malformed_request"),
    ]
    fresh = {"ratelimit-limit": "3", "ratelimit-remaining": "3", "ratelimit-reset": "0"}
    assert [_quota(r) for r in refusals] == [fresh] * len(refusals)
    assert refusals[3].headers["allow"] == "GET"
    assert refusals[0].headers["www-authenticate"] == 'Bearer realm="api"'

    admitted = [proxy.get("/orders", headers=ops) for _ in range(3)]
    assert [a.status_code for a in admitted] == [200, 200, 200]
    assert [a.headers["ratelimit-remaining"] for a in admitted] == ["2", "1", "0"]
    limited = proxy.get("/orders", headers=ops)
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert sum(upstream.calls.values()) == 3

    late = [proxy.get("/orders"), proxy.delete("/orders", headers=ops)]
    assert [r.status_code for r in late] == [401, 405]
    for answer in late:  # the full window, as it stands; no Retry-After: not a 429
        quota = _quota(answer)
        assert (quota["ratelimit-limit"], quota["ratelimit-remaining"]) == ("3", "0")
        assert 0 < int(quota["ratelimit-reset"]) <= 60
        assert "retry-after" not in quota


def test_two_401s_then_three_admitted_calls_then_429(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED, rate_limit=(3, 60, LimitKey.IP))
    token = _bearer(access_token())
    refused = [proxy.get("/orders"), proxy.get("/orders", headers=_bearer("forged"))]
    assert [(r.status_code, r.headers["ratelimit-remaining"]) for r in refused] == [
        (401, "3"),
        (401, "3"),
    ]
    statuses = [proxy.get("/orders", headers=token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_a_refusal_reports_the_window_the_call_would_count_against(proxy, upstream, add_route):
    """Per-user limit: the caller's own window when a valid token came (a 405 too, though the
    method is checked before the token), else the client IP's. A revoked token is nobody's."""
    add_route(
        upstream_url=upstream.url,
        methods=frozenset({"GET"}),
        auth=AuthMode.OPTIONAL,
        rate_limit=(5, 60, LimitKey.USER),
    )
    alice = _bearer(access_token(user_id=user_uuid("alice"), jti="jti-alice"))
    for _ in range(3):
        assert proxy.get("/orders", headers=alice).status_code == 200
    assert proxy.get("/orders").headers["ratelimit-remaining"] == "4"  # anonymous: the IP's
    remaining = {
        "alice 405": proxy.delete("/orders", headers=alice),
        "anonymous 405": proxy.delete("/orders"),
        "bad token 401": proxy.get("/orders", headers=_bearer("forged")),
        "bob 405": proxy.delete("/orders", headers=_bearer(access_token(user_id=user_uuid("bob")))),
    }
    assert {k: r.headers["ratelimit-remaining"] for k, r in remaining.items()} == {
        "alice 405": "2",
        "anonymous 405": "4",
        "bad token 401": "4",
        "bob 405": "5",
    }
    CacheTokenRevocations().revoke_token("jti-alice", datetime.now(UTC) + timedelta(minutes=5))
    revoked = proxy.get("/orders", headers=alice)
    assert (revoked.status_code, revoked.json()["code"]) == (401, "token_revoked")
    assert revoked.headers["ratelimit-remaining"] == "4"
    assert proxy.delete("/orders", headers=alice).headers["ratelimit-remaining"] == "4"
    # Nothing of that was counted: alice's fresh token finds her two calls left, then 429.
    fresh = _bearer(access_token(user_id=user_uuid("alice")))
    statuses = [proxy.get("/orders", headers=fresh).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_forbidden_or_revoked_caller_reads_its_window_in_one_look(proxy, upstream, add_route):
    add_route(
        upstream_url=upstream.url,
        auth=AuthMode.REQUIRED,
        required_roles=frozenset({"ops"}),
        rate_limit=(2, 60, LimitKey.USER),
    )
    token = access_token(user_id=user_uuid("u-role"), jti="jti-role", roles=("user",))
    denied = proxy.get("/orders", headers=_bearer(token))
    assert (denied.status_code, denied.headers["ratelimit-remaining"]) == (403, "2")
    CacheTokenRevocations().revoke_token("jti-role", datetime.now(UTC) + timedelta(minutes=5))
    revoked = proxy.get("/orders", headers=_bearer(token))
    assert (revoked.json()["code"], revoked.headers["ratelimit-remaining"]) == (
        "token_revoked",
        "2",
    )
    assert upstream.calls == {}


def test_no_route_or_an_unlimited_route_answers_without_rate_headers(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED, methods=frozenset({"GET"}))
    answers = [proxy.get("/nowhere"), proxy.get("/orders"), proxy.delete("/orders")]
    assert [a.status_code for a in answers] == [404, 401, 405]
    assert [_quota(a) for a in answers] == [{}, {}, {}]


def test_with_redis_down_refusals_read_the_per_process_window(
    proxy, upstream, add_route, redis_down
):
    """The limiter falls back to its in-process twin; the look at the window does too, and a
    401 or 405 stays what it is."""
    from apps.gateway.redis_support import REDIS_FALLBACKS

    add_route(
        upstream_url=upstream.url,
        methods=frozenset({"GET"}),
        auth=AuthMode.REQUIRED,
        rate_limit=(3, 60, LimitKey.USER),
    )
    before = REDIS_FALLBACKS.labels("rate_limit")._value.get()
    token = _bearer(access_token(user_id=user_uuid("u-down")))
    refused = [proxy.get("/orders"), proxy.delete("/orders", headers=token)]
    assert [(r.status_code, r.headers["ratelimit-remaining"]) for r in refused] == [
        (401, "3"),
        (405, "3"),
    ]
    statuses = [proxy.get("/orders", headers=token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    late = proxy.delete("/orders", headers=token)
    assert (late.status_code, late.headers["ratelimit-remaining"]) == (405, "0")
    assert "retry-after" not in late.headers
    assert REDIS_FALLBACKS.labels("rate_limit")._value.get() >= before + 7


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_a_look_at_the_window_is_the_limiters_own_count_and_changes_nothing(shared):
    """The look reads what the next check would find (the same sliding window: a call leaves
    it `window_seconds` after it was made), and never counts, slides or extends anything."""
    from apps.gateway import wiring
    from apps.gateway.limiter import InProcessEdgeChecks, InProcessSlidingWindowLimiter
    from core.usecases.gateway.ports import WindowPeek

    if shared:
        edge = limiter = wiring.state().limiter
    else:
        limiter = InProcessSlidingWindowLimiter()
        edge = InProcessEdgeChecks(limiter)
    policy = RateLimitPolicy(requests=2, window_seconds=10)
    look = WindowPeek(policy, "s", "s")

    def seen(now):
        decision = edge.peek(None, look, now).decision
        return decision.allowed, decision.remaining, decision.reset_seconds

    assert seen(999.0) == (True, 2, 0)
    assert limiter.hit("s", policy, 1000.0).allowed
    assert limiter.hit("s", policy, 1005.0).allowed
    assert seen(1009.0) == (False, 0, pytest.approx(1.0))
    assert seen(1009.0) == seen(1009.0)
    assert not limiter.hit("s", policy, 1009.0).allowed  # the looks counted nothing
    assert seen(1010.0) == (True, 1, pytest.approx(5.0))  # the first call has left, exactly
    assert seen(1015.0) == (True, 2, 0)
    assert limiter.hit("s", policy, 1010.0).remaining == 0  # and slid nothing away
    assert seen(1014.9) == (False, 0, pytest.approx(0.1))
    assert edge.peek(None, None, 1014.9) == EdgeVerdict(revoked=False)


def test_a_look_reads_the_anonymous_window_for_a_revoked_token():
    from apps.common.tokens import SimpleJWTAccessTokenVerifier
    from apps.gateway import wiring
    from apps.gateway.limiter import InProcessEdgeChecks
    from core.usecases.gateway.ports import WindowPeek

    verify = SimpleJWTAccessTokenVerifier().verify
    principal = verify(access_token(user_id=user_uuid("u-p"), jti="j-p")).unwrap()
    policy = RateLimitPolicy(3, 60, LimitKey.USER)
    look = WindowPeek(policy, "r:user:u-p", "r:ip:1.2.3.4")
    shared, embedded = wiring.state().edge, InProcessEdgeChecks()
    for edge in (shared, embedded):
        edge.check("r", principal, "r:user:u-p", policy, 100.0)
        verdict = edge.peek(principal, look, 100.5)
        assert (verdict.revoked, verdict.decision.remaining) == (False, 2)
    CacheTokenRevocations().revoke_token("j-p", datetime.now(UTC) + timedelta(minutes=5))
    for edge in (shared, embedded):
        verdict = edge.peek(principal, look, 101.0)
        assert (verdict.revoked, verdict.decision.remaining) == (True, 3)
        assert edge.peek(principal, None, 101.0) == EdgeVerdict(revoked=True)


def test_an_admitted_call_is_still_one_redis_command_and_a_refusal_one_that_writes_nothing(
    proxy, upstream, add_route, own_redis, settings
):
    """The look at the window is on the refusal path only: an admitted call on a limited,
    authenticated route is the one EVALSHA it was; a refusal reads (one EVALSHA) and writes
    nothing. A private Redis, so its statistics count this test's commands alone."""
    from apps.gateway import wiring

    settings.GATEWAY_ROUTE_REFRESH_SECONDS = 60  # no route-version check in between
    add_route(
        upstream_url=upstream.url,
        methods=frozenset({"GET"}),
        auth=AuthMode.REQUIRED,
        rate_limit=(5, 60, LimitKey.USER),
    )
    token = _bearer(access_token(user_id=user_uuid("u-count")))
    assert proxy.get("/orders", headers=token).status_code == 200  # routes and scripts loaded
    assert proxy.delete("/orders", headers=token).status_code == 405
    client = wiring.state().redis

    def sent(call):
        before = _commands(client)
        answer = call()
        after = _commands(client)
        return answer, {n: after[n] - before.get(n, 0) for n in after if after[n] != before.get(n)}

    admitted, commands = sent(lambda: proxy.get("/orders", headers=token))
    assert admitted.headers["ratelimit-remaining"] == "3"
    # One EVALSHA, and what its script runs: revocation facts, circuit hint, the window.
    assert commands == {
        "evalsha": 1,
        "mget": 1,
        "hmget": 1,
        "zremrangebyscore": 1,
        "zcard": 1,
        "zadd": 1,
        "pexpire": 1,
        "zrange": 1,
    }
    refused, commands = sent(lambda: proxy.delete("/orders", headers=token))
    assert (refused.status_code, refused.headers["ratelimit-remaining"]) == (405, "3")
    assert commands == {"evalsha": 1, "mget": 1, "zcount": 1, "zrangebyscore": 1}
    anonymous, commands = sent(lambda: proxy.get("/orders"))
    assert (anonymous.status_code, anonymous.headers["ratelimit-remaining"]) == (401, "5")
    assert commands == {"evalsha": 1, "zcount": 1}  # an empty window: no oldest call to read


# Sent by the test itself (`INFO`) or by the traffic recorder's flush thread, at any moment.
_BACKGROUND = {"info", "hincrby", "expire"}


def _commands(client):
    """Calls of each command the server has run, but the test's own and the background's."""
    return {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in client.info("commandstats").items()
        if name.removeprefix("cmdstat_") not in _BACKGROUND
    }
