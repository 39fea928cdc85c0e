"""Redis stopped mid-test (our own redis-server): no 500s; per-process limits; cache bypass."""

import os
import shutil
import socket
import subprocess
import time

import pytest
import redis

from core.domain.gateway.route import AuthMode, LimitKey
from tests.factories.tokens import access_token

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

# Where packages put redis-server when it is not on the PATH of the test run (sbin, Homebrew).
USUAL_PLACES = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin")


def redis_server_binary(environ=os.environ, places=USUAL_PLACES) -> str:
    """The redis-server to start: `$REDIS_SERVER`, else the one on PATH, else a usual place.

    `make test` needs Redis anyway, so a missing binary fails the run with what to do rather
    than skipping these tests quietly.
    """
    explicit = environ.get("REDIS_SERVER")
    found = (
        shutil.which(explicit)
        if explicit
        else shutil.which("redis-server", path=environ.get("PATH"))
        or shutil.which("redis-server", path=os.pathsep.join(places))
    )
    if found is None:
        where = f"REDIS_SERVER={explicit!r}" if explicit else f"PATH or {', '.join(places)}"
        pytest.fail(
            f"redis-server not found ({where}): these tests start a private Redis to stop it"
            " mid-test. Install it (apt-get install redis-server) or set REDIS_SERVER to its"
            " path.",
            pytrace=False,
        )
    return found


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


@pytest.fixture
def own_redis(settings):
    """A private redis-server on a free port, which the test may kill."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    settings.REDIS_URL = url
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    settings.CACHES = caches
    from apps.gateway import wiring

    wiring.reset_state()
    yield process
    process.kill()
    process.wait(timeout=10)
    wiring.reset_state()


def test_redis_going_down_mid_test_degrades_without_errors(proxy, upstream, add_route, own_redis):
    from apps.gateway.redis_support import REDIS_FALLBACKS

    add_route(
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=(3, 60, LimitKey.IP),
        cache_ttl_seconds=60,
    )
    token = {"Authorization": f"Bearer {access_token(user_id='u-1')}"}
    assert proxy.get("/orders", headers=token).headers["x-cache"] == "MISS"
    assert proxy.get("/orders", headers=token).headers["x-cache"] == "HIT"
    before = REDIS_FALLBACKS.labels("rate_limit")._value.get()

    own_redis.kill()
    own_redis.wait(timeout=10)

    answers = [proxy.get("/orders", headers=token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["x-cache"] == "BYPASS"
    assert answers[0].json()["headers"]["x-user-id"] == "u-1"  # revocation check fails open
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
    token = {"Authorization": f"Bearer {access_token(user_id='u-1')}"}
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
