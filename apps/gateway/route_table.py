"""The in-process route table of each worker, refreshed through a version key in the cache.

Proxied requests read the table from memory. At most every `refresh_seconds` one request
compares the shared version key (Redis, or the in-process cache in embedded mode) with the
table's and reloads from the gateway database only when it changed, so every worker sees a
change within a second and no request pays a database query. In embedded mode the version key
lives in the server's own in-process cache, which another process (`manage.py seed`, a shell)
cannot bump, so there the table is also reloaded once a second (`shared_version=False`).
If the gateway database cannot be read, a worker keeps serving the last table it loaded (as a
Kong data plane keeps its last configuration) and tries again a refresh later; one that never
loaded a table answers 503.
Under gunicorn a background thread per worker also runs the check, so idle workers keep up,
and then the worker's other housekeeping (`housekeeping`: closing idle upstream connections).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import structlog
from django.core.cache import cache
from django.db import DatabaseError, connections, transaction

from apps.common.tracing import untraced
from apps.gateway.redis_support import REDIS_FALLBACKS, redis_unavailable
from apps.gateway.repositories import DB
from core.domain.gateway.matching import RouteTable
from core.domain.gateway.route import Route

log = structlog.get_logger("platform.gateway")

VERSION_KEY = "gateway:routes:version"
_UNREADABLE_RELOAD_SECONDS = 5.0
_LOCAL_RELOAD_SECONDS = 1.0
_WARN_EVERY_SECONDS = 60.0


class RoutesUnavailable(Exception):
    """No route table yet, and the gateway database cannot be read (the proxy answers 503)."""


class VersionedRouteSource:
    """`RouteSource`: a table per process, reloaded when the shared version key changes."""

    def __init__(
        self,
        load: Callable[[], list[Route]],
        refresh_seconds: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        shared_version: bool = True,
    ) -> None:
        self._load = load
        self._shared_version = shared_version  # False: the version key is this process's own
        self._refresh = refresh_seconds
        self._monotonic = monotonic
        self._table: RouteTable | None = None
        self._next_check = 0.0
        self._stale = True
        self._retry_at = 0.0  # after a failed reload, the next attempt waits until then
        self._warn_after = 0.0
        self._lock = threading.Lock()
        self.on_reload: list[Callable[[RouteTable], None]] = []  # each gets the new table
        # Each is called after every check of the background thread (`start_refreshing`).
        self.housekeeping: list[Callable[[], None]] = []

    def current(self) -> RouteTable:
        table = self._table
        if table is not None and not self._stale and self._monotonic() < self._next_check:
            return table
        if table is None:
            with self._lock:
                return self._refresh_now()
        if not self._lock.acquire(blocking=False):
            return table  # another thread is refreshing; this request uses the current table
        try:
            return self._refresh_now()
        finally:
            self._lock.release()

    def loaded(self) -> RouteTable | None:
        """The table in hand, without a check for a newer one (None before the first load): for
        readers off the request path, such as /metrics, which must not reach the database.
        Under gunicorn the refresh thread keeps it current (`start_refreshing`)."""
        return self._table

    def start_refreshing(self) -> threading.Thread:
        """Keep the table current from a background thread, one check per refresh period, so a
        worker that serves nothing for a while still has the latest routes when the database
        goes away. gunicorn starts it in each worker (config/gunicorn.py, post_worker_init)."""

        def refresh_forever() -> None:
            with untraced():  # housekeeping: no request's trace, and no trace of its own
                while True:
                    try:
                        self.current()
                    except Exception as error:  # logged by the reload; try again next period
                        log.debug("gateway_routes_refresh_failed", error=type(error).__name__)
                    for task in self.housekeeping:
                        try:
                            task()
                        except Exception:  # the next period tries again; the thread goes on
                            log.exception("gateway_housekeeping_failed")
                    time.sleep(self._refresh)

        thread = threading.Thread(target=refresh_forever, name="gateway-routes", daemon=True)
        thread.start()
        return thread

    def mark_stale(self) -> None:
        """This process changed the routes: reload on the next request."""
        self._stale = True

    def _refresh_now(self) -> RouteTable:
        now = self._monotonic()
        if self._table is not None and not self._stale and now < self._next_check:
            return self._table
        try:
            version = str(cache.get(VERSION_KEY) or "")
        except Exception as error:  # cache unreachable: reload now and then from the database
            redis_unavailable("route_version", error)  # counted; logged at most every 5 s
            version = f"unreadable:{int(now // _UNREADABLE_RELOAD_SECONDS)}"
        if not self._shared_version:  # changes of other processes: reload once a second
            version = f"{version}:{int(now // _LOCAL_RELOAD_SECONDS)}"
        if self._table is None or self._stale or version != self._table.version:
            if self._table is not None and now < self._retry_at:
                return self._table  # the database failed a moment ago: not once per request
            try:
                _fresh_connection()
                routes = self._load()
            except DatabaseError as error:
                return self._last_known(error, now)
            self._stale = False
            self._table = RouteTable(routes, version)
            for callback in self.on_reload:
                callback(self._table)
        self._next_check = now + self._refresh
        return self._table

    def _last_known(self, error: DatabaseError, now: float) -> RouteTable:
        """The database is unreadable: keep the table in hand (retry after a refresh period),
        or, with none, refuse."""
        if now >= self._warn_after:  # at most one line per outage minute and worker
            self._warn_after = now + _WARN_EVERY_SECONDS
            log.warning("gateway_routes_unloadable", error=type(error).__name__)
        if self._table is None:
            raise RoutesUnavailable from error
        self._retry_at = self._next_check = now + self._refresh
        return self._table


def _fresh_connection() -> None:
    # The proxy path runs outside Django's request signals: retire a stale connection here.
    connection = connections[DB]
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


class CacheRouteChangeNotifier:
    """`RouteChangeNotifier`: a new version key for every worker, and a stale local table.

    The key changes once the change is committed: Django admin saves inside a transaction on
    the gateway database, and a worker that read the new key before the commit would reload
    the old rows under it and keep them until the next change. Outside a transaction (the REST
    API's writes) that is at once.
    """

    def __init__(self, source: VersionedRouteSource | None = None) -> None:
        self._source = source

    def routes_changed(self) -> None:
        if self._source is not None:
            self._source.mark_stale()
        transaction.on_commit(self._publish, using=DB)

    def _publish(self) -> None:
        if self._source is not None:
            self._source.mark_stale()  # a reload during the transaction read the old rows
        try:
            cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        except Exception as error:
            # Rare (an admin's change) and serious: other workers that still read Redis keep
            # their old table until the next change, or reload within 5 s if Redis is down for
            # them too. Counted, and logged every time.
            REDIS_FALLBACKS.labels("route_version_publish").inc()
            log.error("gateway_route_version_not_published", error=type(error).__name__)
