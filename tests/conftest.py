"""Fixtures shared by every test layer."""

from __future__ import annotations

import copy

import pytest

# Every answer of a documented operation is checked against the OpenAPI schema.
pytest_plugins = ["tests.openapi_conformance"]

# Port 1 on loopback: nothing listens there, so a connection is refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


class RatelimitClock:
    """The wall clock django-ratelimit reads (`time()`, in seconds), standing still until a
    test sets `now`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def ratelimit_clock(monkeypatch):
    """django-ratelimit counts in fixed windows of the wall clock, so a test that spends a
    limit could see its window roll over halfway (a run more let through, now and then). Its
    clock stands at the test's start instead, and a test may move it (`ratelimit_clock.now`).
    The library takes no clock parameter, so its module's `time` is replaced: a clock injected
    into a library, not a mock of our code (the counters' expiry in Redis is unaffected)."""
    import time

    from django_ratelimit import core

    clock = RatelimitClock(time.time())
    monkeypatch.setattr(core, "time", clock)
    return clock


@pytest.fixture(autouse=True)
def _no_redis_held():
    """Each test starts with every Redis address tried again (apps/common/redis_connections)."""
    yield
    from apps.common.redis_connections import UNREACHABLE

    UNREACHABLE.clear()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Each test that uses Django starts with an empty cache (the test Redis database)."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker(
        "django_db"
    ):
        yield
        return
    from django.core.cache import caches

    for alias in caches:
        caches[alias].clear()
    yield
    for alias in caches:
        caches[alias].clear()


@pytest.fixture
def redis_down(settings):
    """Redis is gone: every cache alias, with the settings production uses (the errors it
    raises or ignores), points at a port nobody listens on."""
    configured = copy.deepcopy(settings.CACHES)
    for alias in configured.values():
        alias["LOCATION"] = UNREACHABLE_REDIS
    settings.CACHES = configured
