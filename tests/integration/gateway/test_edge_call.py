"""The Redis edge call: revocation, limit, circuit hint and cache lookup in one EVALSHA."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from core.domain.gateway.route import LimitKey, RateLimitPolicy
from core.usecases.gateway.ports import CacheLookup, CacheProbe, CacheResult, StoredResponse
from tests.factories.redis_server import start_redis_server

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

ANSWER = StoredResponse(200, (("Content-Type", "application/json"),), b'{"ok": true}')


def _commands(client, *names):
    stats = client.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in names}


def test_the_edge_looks_the_cache_up_and_takes_the_fill_lock():
    from apps.gateway import wiring

    state = wiring.state()
    edge, cache = state.edge, state.cache
    policy = RateLimitPolicy(2, 60, LimitKey.IP)
    probe = CacheProbe("r:GET:/a::", 5)
    first = edge.check("r", None, "r:ip:1", policy, 1000.0, probe)
    assert first.decision.allowed
    assert first.decision.remaining == 1
    assert first.cached == CacheLookup(CacheResult.MISS, filling=True)
    cache.store(probe.key, ANSWER, 60)
    second = edge.check("r", None, "r:ip:1", policy, 1000.1, probe)
    assert second.cached == CacheLookup(CacheResult.HIT, ANSWER)
    refused = edge.check("r", None, "r:ip:1", policy, 1000.2, probe)
    assert not refused.decision.allowed
    assert refused.cached is None  # a refused call looks nothing up
    other = CacheProbe("r:GET:/b::", 5)
    assert edge.check("r", None, None, None, 1000.3, other).cached.filling is True
    waiting = edge.check("r", None, None, None, 1000.4, other).cached
    assert waiting == CacheLookup(CacheResult.MISS, filling=False)
    assert edge.check("r", None, None, None, 1000.5).cached is None  # nothing to look up


def test_a_cache_hit_through_the_proxy_is_one_redis_command(proxy, upstream, add_route, settings):
    from apps.gateway import wiring

    settings.GATEWAY_ROUTE_REFRESH_SECONDS = 60
    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    assert proxy.get("/orders/item").headers["x-cache"] == "MISS"
    client = wiring.state().redis
    names = ("evalsha", "eval", "get", "mget", "set", "hmget")
    before = _commands(client, *names)
    assert proxy.get("/orders/item").headers["x-cache"] == "HIT"
    after = _commands(client, *names)
    # Redis counts the commands a script runs too: the one EVALSHA read the circuit (HMGET)
    # and the cached answer (GET); nothing else was sent.
    assert {name: after[name] - before[name] for name in names} == {
        "evalsha": 1,
        "eval": 0,
        "get": 1,
        "mget": 0,
        "set": 0,
        "hmget": 1,
    }
    assert upstream.calls["/item"] == 1


def test_a_flushed_script_cache_is_reloaded_transparently():
    from apps.gateway import wiring

    edge = wiring.state().edge
    wiring.state().redis.script_flush()
    policy = RateLimitPolicy(5, 60, LimitKey.IP)
    assert edge.check("r", None, "r:ip:flushed", policy, 5.0).decision.remaining == 4
    assert edge.check("r", None, "r:ip:flushed", policy, 5.1).decision.remaining == 3


def test_a_command_on_a_kept_connection_that_broke_goes_again_on_a_new_one():
    """As after a Redis restart: the kept socket is dead, the command reached no Redis that
    ran it, so it is sent once more on a new connection instead of failing (a gateway call
    failing here let a revoked token through and skipped the shared limit)."""
    from apps.gateway import wiring
    from apps.gateway.redis_support import DirectRedis

    client = wiring.state().redis
    direct = DirectRedis(client)
    own_id = direct.execute("CLIENT", "ID")
    client.client_kill_filter(_id=own_id)
    assert direct.execute("CLIENT", "ID") not in (own_id, None)


def test_a_restarted_redis_is_reached_on_the_first_command_after_it(own_redis):
    from apps.gateway import wiring
    from apps.gateway.redis_support import DirectRedis

    direct = DirectRedis(wiring.state().redis)
    direct.execute("SET", "kept", "1")
    port = wiring.state().redis.connection_pool.connection_kwargs["port"]
    own_redis.kill()
    own_redis.wait(timeout=10)
    restarted, _ = start_redis_server(port)
    try:
        assert direct.execute("SET", "after", "1") in (True, b"OK", "OK")
    finally:
        restarted.kill()
        restarted.wait(timeout=10)


def test_a_new_connection_that_cannot_connect_is_not_tried_twice(own_redis):
    from apps.gateway import wiring
    from apps.gateway.redis_support import DirectRedis

    class CountingDirectRedis(DirectRedis):
        made = 0

        def _new_connection(self):
            self.made += 1
            return super()._new_connection()

    direct = CountingDirectRedis(wiring.state().redis)
    own_redis.kill()
    own_redis.wait(timeout=10)
    with pytest.raises(RedisConnectionError):
        direct.execute("PING")
    assert direct.made == 1


def test_a_command_error_on_a_kept_connection_is_not_sent_again():
    """Redis ran the command and answered with an error: sent again, it would run twice."""
    from redis.exceptions import ResponseError

    from apps.gateway import wiring
    from apps.gateway.redis_support import DirectRedis

    client = wiring.state().redis
    direct = DirectRedis(client)
    key = "edge-call-test:refused"
    client.delete(key)
    direct.execute("PING")  # the connection is kept from here on
    script = "redis.call('INCR', KEYS[1]); return redis.error_reply('refused')"
    try:
        with pytest.raises(ResponseError, match="refused"):
            direct.execute("EVAL", script, 1, key)
        assert int(client.get(key)) == 1
    finally:
        client.delete(key)
