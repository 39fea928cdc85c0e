"""A real server process on `make run`'s path, shared by the operational e2e tests."""

from __future__ import annotations

import pytest

from tests.e2e.servers import serve


@pytest.fixture(scope="session")
def embedded_process(tmp_path_factory):
    """A gunicorn server started like `make run`, on SQLite and the local cache: `.url`, and
    `.var_dir`, which holds its log (`server.log`)."""
    with serve(tmp_path_factory.mktemp("var")) as server:
        yield server


@pytest.fixture(scope="session")
def embedded_server(embedded_process):
    """Base URL of the `make run` server."""
    return embedded_process.url
