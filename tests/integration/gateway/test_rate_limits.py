"""Sliding-window limits in Redis: exact under concurrency, headers, keys, window sliding."""

import threading
import time

import pytest

from core.domain.gateway.route import AuthMode, LimitKey, RateLimitPolicy
from tests.factories.tokens import access_token

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
    alice = {"Authorization": f"Bearer {access_token(user_id='alice')}"}
    bob = {"Authorization": f"Bearer {access_token(user_id='bob')}"}
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
