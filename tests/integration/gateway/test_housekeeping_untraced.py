"""A worker's own background work (the route-table poll, the traffic flush) makes no spans."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from apps.gateway.route_table import VersionedRouteSource
from apps.gateway.traffic import RecentTraffic

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


@pytest.fixture(autouse=True)
def tracing_on(settings):
    settings.TRACING = True


def test_the_route_table_poll_is_not_traced():
    # With tracing on, each poll's Redis GET was a root trace of its own: two a second per
    # idle worker, and the database reload a third.
    seen: list[bool] = []
    polled = threading.Event()

    def load():
        seen.append(is_instrumentation_enabled())
        polled.set()
        return []

    VersionedRouteSource(load, refresh_seconds=3600).start_refreshing()
    assert polled.wait(10)
    assert seen == [False]
    assert is_instrumentation_enabled()  # only that thread's


def test_the_traffic_flush_is_not_traced():
    from apps.gateway.redis_support import raw_redis

    seen: list[bool] = []
    flushed = threading.Event()
    client = raw_redis()

    class Watched:  # the real client; notes whether spans were on when the flush used it
        def pipeline(self, **kwargs):
            seen.append(is_instrumentation_enabled())
            flushed.set()
            return client.pipeline(**kwargs)

    recent = RecentTraffic(60, client=Watched(), prefix="housekeeping-test:", flush_every=0.01)
    recent.answered("r", 200, 0.01)
    try:
        assert flushed.wait(10)
    finally:
        recent.close()
    assert seen[0] is False
    for key in client.scan_iter("housekeeping-test:*"):
        client.delete(key)
