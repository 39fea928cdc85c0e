"""Fixtures of the aggregation integration tests: a real upstream, tokens, composites."""

from __future__ import annotations

import pytest

from apps.aggregation import wiring
from core.domain.aggregation.composite import AuthMode, Composite, Source
from tests.factories.tokens import access_token, user_uuid
from tests.integration.aggregation.upstream import Upstream

# "default" too: Django sets test databases up after `default` (TEST DEPENDENCIES).
DATABASES = ["default", "aggregation"]


@pytest.fixture(scope="session")
def upstream():
    server = Upstream.start()
    yield server
    server.stop()


@pytest.fixture
def admin_headers():
    return {"HTTP_AUTHORIZATION": f"Bearer {access_token(roles=('user', 'admin'))}"}


@pytest.fixture
def user_headers():
    return {"HTTP_AUTHORIZATION": f"Bearer {access_token(user_id=user_uuid('alice'))}"}


@pytest.fixture
def make_composite():
    """Store a composite through the use case; sources given as `(key, url, **options)`."""

    def make(name="combo", *sources, auth=AuthMode.NONE, timeout_ms=2000, cache_ttl_seconds=0):
        composite = Composite(
            name=name,
            auth=auth,
            timeout_ms=timeout_ms,
            cache_ttl_seconds=cache_ttl_seconds,
            sources=tuple(sources),
        )
        wiring.create_composite().execute(composite).unwrap()
        return composite

    return make


def source(key, url, **options) -> Source:
    options.setdefault("timeout_ms", 2000)
    return Source(key=key, url=url, **options)
