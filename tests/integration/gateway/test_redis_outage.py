"""Redis stopped mid-test (our own redis-server): no 500s; per-process limits; cache bypass."""

import pytest
import redis

from core.domain.gateway.route import AuthMode, LimitKey
from tests.factories.redis_server import redis_server_binary
from tests.factories.tokens import access_token, user_uuid

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def test_redis_server_is_found_off_the_path_and_its_absence_fails_clearly(tmp_path):
    empty, elsewhere = tmp_path / "empty", tmp_path / "sbin"
    empty.mkdir()
    elsewhere.mkdir()
    binary = elsewhere / "redis-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert redis_server_binary({"PATH": str(empty)}, (str(elsewhere),)) == str(binary)
    assert redis_server_binary({"REDIS_SERVER": str(binary)}, ()) == str(binary)
    with pytest.raises(pytest.fail.Exception, match=r"redis-server not found \(PATH or "):
        redis_server_binary({"PATH": str(empty)}, (str(empty),))
    with pytest.raises(pytest.fail.Exception, match="REDIS_SERVER='/nowhere/redis-server'"):
        redis_server_binary({"REDIS_SERVER": "/nowhere/redis-server"}, (str(elsewhere),))


def test_redis_going_down_mid_test_degrades_without_errors(proxy, upstream, add_route, own_redis):
    from apps.gateway.redis_support import REDIS_FALLBACKS

    add_route(
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=(3, 60, LimitKey.IP),
        cache_ttl_seconds=60,
    )
    token = {"Authorization": f"Bearer {access_token(user_id=user_uuid('u-1'))}"}
    assert proxy.get("/orders", headers=token).headers["x-cache"] == "MISS"
    assert proxy.get("/orders", headers=token).headers["x-cache"] == "HIT"
    before = REDIS_FALLBACKS.labels("rate_limit")._value.get()

    own_redis.kill()
    own_redis.wait(timeout=10)

    answers = [proxy.get("/orders", headers=token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["x-cache"] == "BYPASS"
    # The revocation check fails open.
    assert answers[0].json()["headers"]["x-user-id"] == user_uuid("u-1")
    assert REDIS_FALLBACKS.labels("rate_limit")._value.get() >= before + 4


def test_breaker_falls_back_to_process_state_when_redis_is_gone(own_redis):
    from apps.gateway.breaker import RedisCircuitBreaker
    from apps.gateway.redis_support import key_prefix, raw_redis
    from core.domain.gateway.breaker import Admission, CircuitState
    from core.domain.gateway.route import BreakerPolicy

    breaker = RedisCircuitBreaker(raw_redis(), key_prefix())
    own_redis.kill()
    own_redis.wait(timeout=10)
    policy = BreakerPolicy(1, 10)
    assert breaker.admit("r", policy, 0.0)[0] is Admission.ALLOWED
    breaker.record("r", policy, 0.0, success=False, probe=False)
    assert breaker.snapshot("r").state is CircuitState.OPEN
    assert breaker.admit("r", policy, 1.0)[0] is Admission.DENIED


def test_cache_adapter_reports_bypass_and_swallows_errors(own_redis):
    from apps.gateway.redis_support import key_prefix, raw_redis
    from apps.gateway.response_cache import RedisResponseCache
    from core.usecases.gateway.ports import CacheResult, StoredResponse

    cache = RedisResponseCache(raw_redis(), key_prefix())
    own_redis.kill()
    own_redis.wait(timeout=10)
    assert cache.lookup("k", 1) == (CacheResult.BYPASS, None, False)
    assert cache.wait_for("k", 0.05) is None
    cache.store("k", StoredResponse(200, (), b""), 5)
    cache.release_fill("k")


def test_a_full_redis_refusing_new_data_degrades_visibly_never_with_a_500(
    proxy, upstream, add_route, own_redis
):
    """docs/operations.md advises `noeviction`: a full Redis then refuses commands that add
    data (cache stores, revocation facts), which must be counted, never answered with a 500."""
    from datetime import UTC, datetime, timedelta

    from apps.common.tokens import REVOCATION_WRITE_FAILURES, CacheTokenRevocations
    from apps.gateway.redis_support import REDIS_FALLBACKS, raw_redis

    add_route(
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=(10, 60, LimitKey.IP),
        cache_ttl_seconds=60,
    )
    token = {"Authorization": f"Bearer {access_token(user_id=user_uuid('u-1'))}"}
    assert proxy.get("/orders", headers=token).headers["x-cache"] == "MISS"
    stores_refused = REDIS_FALLBACKS.labels("response_cache")._value.get()
    writes_refused = REVOCATION_WRITE_FAILURES._value.get()

    client = raw_redis()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # below what it holds: new data is refused
    with pytest.raises(redis.exceptions.ResponseError, match="used memory > 'maxmemory'"):
        client.set("probe", "1")

    assert proxy.get("/orders", headers=token).headers["x-cache"] == "HIT"  # reads still work
    fresh = [proxy.get("/orders/fresh", headers=token) for _ in range(2)]
    assert [(a.status_code, a.headers["x-cache"]) for a in fresh] == [(200, "MISS")] * 2
    assert REDIS_FALLBACKS.labels("response_cache")._value.get() >= stores_refused + 2

    CacheTokenRevocations().revoke_token("jti-1", datetime.now(UTC) + timedelta(minutes=5))
    assert REVOCATION_WRITE_FAILURES._value.get() == writes_refused + 1


def test_a_frozen_redis_is_waited_for_once_not_on_every_call(
    proxy, upstream, add_route, own_redis, settings
):
    # A Redis that stops answering (SIGSTOP: the kernel still takes connections and commands)
    # cost each proxied call REDIS_SOCKET_TIMEOUT per Redis call it made (edge call, breaker
    # record): ~0.5 s a request. The process now holds the address after one timeout.
    import signal
    import time

    settings.REDIS_UNREACHABLE_HOLD_SECONDS = 60  # longer than this test, however slow
    add_route(
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=(100, 60, LimitKey.IP),
        cache_ttl_seconds=60,
    )
    assert proxy.get("/orders").status_code == 200
    own_redis.send_signal(signal.SIGSTOP)
    try:
        assert proxy.get("/orders").status_code == 200  # waits for the timeout once
        started = time.monotonic()
        answers = [proxy.get("/orders") for _ in range(5)]
        took = time.monotonic() - started
    finally:
        own_redis.send_signal(signal.SIGCONT)
    assert [(a.status_code, a.headers["x-cache"]) for a in answers] == [(200, "BYPASS")] * 5
    assert took < 1.0, f"5 calls took {took:.2f} s"  # were ≥ 0.5 s each
