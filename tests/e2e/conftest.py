"""A real server process on `make run`'s path, shared by the operational e2e tests."""

from __future__ import annotations

import pytest

from tests.e2e.servers import serve


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    """Base URL of a gunicorn server started like `make run`, on SQLite and the local cache."""
    with serve(tmp_path_factory.mktemp("var")) as server:
        yield server.url
