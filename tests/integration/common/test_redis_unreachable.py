"""A Redis that stops answering costs one wait, not one per call (apps/common/redis_connections)."""

from __future__ import annotations

import signal
import time
from urllib.parse import urlsplit

import pytest
import redis

from apps.common.redis_connections import (
    UNREACHABLE,
    FailFastConnection,
    UnreachableAddresses,
    connection_class,
)
from tests.factories.redis_server import start_redis_server

TIMEOUT = 0.2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def private_redis():
    process, url = start_redis_server()
    yield process, url
    process.send_signal(signal.SIGCONT)
    process.kill()
    process.wait(timeout=10)


@pytest.fixture
def clock():
    return FakeClock()


def connection(url: str, clock: FakeClock, memo: UnreachableAddresses | None = None):
    """A connection with a hold of its own on the fake clock."""
    address = urlsplit(url)

    class Connection(FailFastConnection):
        unreachable = memo if memo is not None else UnreachableAddresses(clock)

    return Connection(
        host=address.hostname,
        port=address.port,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )


def ping(conn) -> object:
    conn.send_command("PING")
    return conn.read_response()


def test_a_frozen_redis_is_waited_for_once_then_refused_at_once_until_the_hold_is_over(
    private_redis, clock, settings
):
    settings.REDIS_UNREACHABLE_HOLD_SECONDS = 1.0
    process, url = private_redis
    memo = UnreachableAddresses(clock)
    first, second = connection(url, clock, memo), connection(url, clock, memo)
    assert ping(first) == b"PONG"
    assert ping(second) == b"PONG"
    process.send_signal(signal.SIGSTOP)

    with pytest.raises(redis.TimeoutError):  # waited REDIS_SOCKET_TIMEOUT: no answer
        ping(first)
    assert memo
    for conn in (first, second):  # a connected socket too: a frozen Redis takes what is sent
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError, match="unreachable moments ago"):
            ping(conn)
        assert time.monotonic() - started < TIMEOUT / 2  # refused, not waited for

    clock.now += 1.0  # the hold is over: the next call tries again, and waits again
    with pytest.raises(redis.TimeoutError):
        ping(first)
    clock.now += 0.5
    with pytest.raises(redis.ConnectionError, match="unreachable moments ago"):
        ping(second)

    process.send_signal(signal.SIGCONT)
    clock.now += 0.5
    assert ping(first) == b"PONG"
    assert ping(second) == b"PONG"


def test_a_refused_connect_holds_the_address_and_a_restarted_redis_is_no_outage(
    private_redis, clock, settings
):
    settings.REDIS_UNREACHABLE_HOLD_SECONDS = 1.0
    process, url = private_redis
    memo = UnreachableAddresses(clock)
    kept = connection(url, clock, memo)
    assert ping(kept) == b"PONG"
    process.kill()
    process.wait(timeout=10)

    # The kept socket breaks (Redis restarted, or an idle connection closed): nothing held,
    # since redis-py reconnects such a connection; the reconnect, refused here, holds it.
    with pytest.raises(redis.ConnectionError) as broken:
        ping(kept)
    assert "moments ago" not in str(broken.value)
    assert not memo
    with pytest.raises(redis.ConnectionError, match=r"Connection refused|Error 111"):
        connection(url, clock, memo).connect()
    with pytest.raises(redis.ConnectionError, match="unreachable moments ago"):
        connection(url, clock, memo).connect()


def test_a_hold_of_zero_always_tries(private_redis, clock, settings):
    settings.REDIS_UNREACHABLE_HOLD_SECONDS = 0
    process, url = private_redis
    memo = UnreachableAddresses(clock)
    conn = connection(url, clock, memo)
    assert ping(conn) == b"PONG"
    process.send_signal(signal.SIGSTOP)
    for _ in range(2):
        with pytest.raises(redis.TimeoutError):
            ping(conn)
    assert not memo


def test_the_configured_cache_uses_these_connections_for_every_url_scheme(settings):
    assert connection_class("redis://h:6379/0") is FailFastConnection
    assert connection_class("rediss://h:6380/0").__name__ == "FailFastSSLConnection"
    assert connection_class("unix:///run/redis.sock").__name__ == (
        "FailFastUnixDomainSocketConnection"
    )
    from django_redis import get_redis_connection

    pool = get_redis_connection("default").connection_pool
    assert issubclass(pool.connection_class, FailFastConnection)
    assert FailFastConnection.unreachable is UNREACHABLE
