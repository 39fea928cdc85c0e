"""redis-py connections that stop trying an unreachable Redis for a moment.

Every Redis-backed adapter degrades on its own when a call fails (docs/operations.md), but each
call first waits for its failure: a Redis that stopped answering (a frozen process, a network
that drops packets) costs `REDIS_SOCKET_TIMEOUT` per call, and a request makes several calls
(the gateway's edge call and breaker, revocation facts, the route version). A connection here
that could not connect, or whose answer timed out, marks its address unreachable for
`REDIS_UNREACHABLE_HOLD_SECONDS`; until then every connection of the process to that address
fails at once, so the adapters take their fallbacks without waiting. The first call after the
hold tries again.

A connection that breaks on an existing socket (Redis restarted, an idle connection closed) marks
nothing: redis-py reconnects it, and only a failed reconnect marks the address. Any answer that
times out marks it, so no client of the process may send a command that legitimately takes
longer than `REDIS_SOCKET_TIMEOUT` (blocking pops, pub/sub listening, a long SCAN): the platform
sends none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class UnreachableAddresses:
    """Which Redis addresses failed moments ago, and until when (one per process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[Any, float] = {}
        self._clock = clock
        self._lock = threading.Lock()  # taken only while an address is held, or being marked

    def __bool__(self) -> bool:
        """Whether any address is held (or was, until a call finds its hold over)."""
        return bool(self._until)

    def mark(self, address: Any) -> None:
        hold = settings.REDIS_UNREACHABLE_HOLD_SECONDS
        if hold > 0:
            with self._lock:
                self._until[address] = self._clock() + hold

    def held(self, address: Any) -> bool:
        with self._lock:  # a hold another thread sets meanwhile is neither lost nor stretched
            until = self._until.get(address)
            if until is None:
                return False
            if self._clock() < until:
                return True
            del self._until[address]  # the hold is over: the next call tries
            return False

    def clear(self) -> None:
        self._until.clear()


UNREACHABLE = UnreachableAddresses()


class HeldUnreachable(RedisConnectionError):
    """A call refused without trying, its address being held: no new failure to mark."""


class FailFastMixin:
    """What the connection classes below add to redis-py's: the unreachable-address hold."""

    unreachable = UNREACHABLE
    _sock: Any

    def _address(self) -> Any:
        return getattr(self, "path", None) or (getattr(self, "host", None), self.port)  # type: ignore[attr-defined]

    def _refuse_while_held(self) -> None:
        memo = self.unreachable
        if memo and memo.held(self._address()):  # the usual case: one falsy check per command
            self.disconnect()  # type: ignore[attr-defined]
            raise HeldUnreachable(
                "Redis was unreachable moments ago; not tried again until the hold is over"
            )

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        if not self._sock:
            self._refuse_while_held()
        try:
            return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except HeldUnreachable:  # the handshake's command found the address held meanwhile
            raise
        except _UNREACHABLE:
            self.unreachable.mark(self._address())
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_while_held()  # a connected socket to a frozen Redis would wait its timeout
        return super().send_packed_command(*args, **kwargs)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except RedisTimeoutError:  # sent, and no answer in time: Redis stopped answering
            self.unreachable.mark(self._address())
            raise


class FailFastConnection(FailFastMixin, Connection):
    pass


class FailFastSSLConnection(FailFastMixin, SSLConnection):
    pass


class FailFastUnixDomainSocketConnection(FailFastMixin, UnixDomainSocketConnection):
    pass


def connection_class(url: str) -> type[Connection]:
    """The connection class for a Redis URL's scheme, as redis-py picks its own."""
    scheme = url.split("://", 1)[0].lower()
    if scheme == "rediss":
        return FailFastSSLConnection
    if scheme == "unix":
        return FailFastUnixDomainSocketConnection  # type: ignore[return-value]
    return FailFastConnection
