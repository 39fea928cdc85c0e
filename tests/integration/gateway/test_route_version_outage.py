"""With Redis unreachable, a worker cannot read the shared route version: it reloads its table
from the gateway database now and then, so changes made meanwhile still reach it."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from apps.gateway.route_table import _UNREADABLE_RELOAD_SECONDS, VersionedRouteSource
from tests.factories.gateway import route

pytestmark = pytest.mark.django_db(databases=["gateway"])


def test_an_unreadable_version_key_reloads_from_the_database_now_and_then(redis_down):
    clock, loads, routes = [0.0], [], [route(name="orders", path_prefix="/orders")]

    def load():
        loads.append(clock[0])
        return list(routes)

    worker = VersionedRouteSource(load, refresh_seconds=0.5, monotonic=lambda: clock[0])
    unread = _fallbacks("route_version")
    assert worker.current().match("/orders").name == "orders"
    assert _fallbacks("route_version") == unread + 1  # counted
    routes.append(route(name="billing", path_prefix="/billing"))  # changed by another worker
    for step in range(1, 9):  # checked every half second, within one reload period
        clock[0] = step * 0.5
        if clock[0] < _UNREADABLE_RELOAD_SECONDS:
            assert worker.current().match("/billing") is None
    clock[0] = _UNREADABLE_RELOAD_SECONDS + 0.1
    assert worker.current().match("/billing").name == "billing"
    assert len(loads) == 2  # once at start, once per period: not once per check


def test_a_route_change_that_cannot_be_published_is_counted(
    redis_down, django_capture_on_commit_callbacks
):
    from apps.gateway.route_table import CacheRouteChangeNotifier

    before = _fallbacks("route_version_publish")
    with django_capture_on_commit_callbacks(using="gateway", execute=True):  # published at commit
        CacheRouteChangeNotifier().routes_changed()
    assert _fallbacks("route_version_publish") == before + 1


def _fallbacks(component: str) -> float:
    labels = {"component": component}
    return REGISTRY.get_sample_value("platform_gateway_redis_fallbacks_total", labels) or 0.0


def test_without_a_shared_cache_the_table_is_reloaded_once_a_second():
    # Embedded mode: the version key is in this process's own cache, so a change written by
    # another process (`manage.py seed`) could never bump it.
    clock, loads, routes = [0.0], [], [route(name="orders", path_prefix="/orders")]

    def load():
        loads.append(clock[0])
        return list(routes)

    worker = VersionedRouteSource(
        load, refresh_seconds=0.25, monotonic=lambda: clock[0], shared_version=False
    )
    assert worker.current().match("/orders").name == "orders"
    routes.append(route(name="billing", path_prefix="/billing"))  # written by another process
    clock[0] = 0.5
    assert worker.current().match("/billing") is None  # checked, same second: no reload
    clock[0] = 1.0
    assert worker.current().match("/billing").name == "billing"
    assert loads == [0.0, 1.0]
