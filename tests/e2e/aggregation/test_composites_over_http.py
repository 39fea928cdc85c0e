"""The aggregation API through a real HTTP server: define, run, and read back a composite."""

from __future__ import annotations

import time
from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from tests.factories.tokens import access_token
from tests.integration.aggregation.upstream import Upstream

ALL_DATABASES = ["default", "gateway", "aggregation"]  # the demo reads /health/ready

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
]


@pytest.fixture(autouse=True)
def _close_live_server_connections():
    """The live server's request threads keep persistent connections (CONN_MAX_AGE) that
    would block dropping the test databases; end them after each test."""
    yield
    from django.db import connections

    for alias in ALL_DATABASES:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def upstream():
    server = Upstream.start()
    yield server
    server.stop()


@pytest.fixture
def admin():
    return {"Authorization": f"Bearer {access_token(roles=('user', 'admin'))}"}


# Each of the four slow sources answers after this long, and the stuck source is cut at it.
SOURCE_SECONDS = 1.0


def test_an_admin_defines_a_composite_and_anyone_runs_it(live_server, upstream, admin):
    api = f"{live_server.url}/api/v1/aggregation"
    delay_ms = int(SOURCE_SECONDS * 1000)
    slow = upstream.url(f"/json?delay_ms={delay_ms}")
    definition = {
        "name": "profile",
        "auth": "none",
        "timeout_ms": 6000,  # the run's cap: the stuck source must be cut by its own timeout
        "sources": [
            {"key": "user", "url": f"{slow}&name={{user}}"},
            {"key": "orders", "url": slow, "fields": ["name"]},
            {"key": "stock", "url": slow, "fields": ["name"]},
            {"key": "fx", "url": slow, "fields": ["name"]},
            {
                "key": "stuck",
                "url": upstream.url("/hang"),
                "required": False,
                "timeout_ms": delay_ms,
            },
        ],
    }
    with httpx.Client(timeout=10) as http:
        created = http.post(f"{api}/composites", json=definition, headers=admin)
        assert created.status_code == 201, created.text
        started = time.perf_counter()
        answer = http.get(f"{api}/composites/profile/run", params={"user": "ada"})
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        # Side by side the run takes about SOURCE_SECONDS (1 s). One source after another it
        # takes 4 s or more, and with the stuck source cut only at the run's cap 6 s: 2.5 s
        # leaves room for a busy machine on either side.
        assert SOURCE_SECONDS <= elapsed < 2.5, f"{elapsed:.2f} s"
        body = answer.json()
        assert body["data"]["user"]["name"] == "ada"
        for key in ("orders", "stock", "fx"):
            assert body["data"][key] == {"name": "json"}
        assert body["errors"]["stuck"]["code"] == "source_timeout"
        assert body["meta"]["partial"] is True
        assert answer.headers["X-Request-ID"]

        deadline = time.monotonic() + 5  # the row is written just after the answer went out
        while True:
            runs = http.get(f"{api}/runs", params={"composite": "profile"}, headers=admin).json()
            if runs["count"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert runs["count"] == 1
        assert runs["results"][0]["status"] == "partial"

        missing = http.get(f"{api}/composites/profile/run")
        assert missing.status_code == 400
        assert missing.headers["Content-Type"] == "application/problem+json"


def test_the_demo_composite_runs_against_the_platform_itself(live_server, settings):
    settings.AGGREGATION_DEMO_BASE_URL = live_server.url
    call_command("seed", "--demo", stdout=StringIO())
    with httpx.Client(timeout=10) as http:
        response = http.get(f"{live_server.url}/api/v1/aggregation/composites/demo/run")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["health"] == {"status": "ok"}
    assert body["meta"]["status"] == "complete", body["errors"]
    assert body["data"]["readiness"] == {"state": "ok"}
    assert set(body["data"]["api"]) == {"info", "openapi_version"}


def recorded_runs(http, api, admin, expected):
    """The history once `expected` rows are in (each is written just after its answer)."""
    deadline = time.monotonic() + 5
    while True:
        runs = http.get(f"{api}/runs", params={"page_size": 200}, headers=admin).json()
        if runs["count"] >= expected or time.monotonic() > deadline:
            return runs["results"]
        time.sleep(0.05)


def test_a_composite_reached_again_through_its_own_sources_is_refused(live_server, admin):
    # ping's source runs pong, whose source runs ping: without a check each run would call
    # the next until the run limit or the threads ran out, each holding a server thread.
    api = f"{live_server.url}/api/v1/aggregation"

    def calling(name, target):
        source = {"key": target, "url": f"{api}/composites/{target}/run", "timeout_ms": 3000}
        return {"name": name, "auth": "none", "timeout_ms": 3000, "sources": [source]}

    with httpx.Client(timeout=10) as http:
        for name, target in (("ping", "pong"), ("pong", "ping"), ("selfish", "selfish")):
            created = http.post(f"{api}/composites", json=calling(name, target), headers=admin)
            assert created.status_code == 201, created.text

        answer = http.get(f"{api}/composites/selfish/run")
        assert answer.status_code == 502, answer.text
        error = answer.json()["errors"]["selfish"]
        assert (error["status"], error["code"]) == (508, "source_http_error")

        answer = http.get(f"{api}/composites/ping/run")
        assert answer.status_code == 502, answer.text
        assert answer.json()["errors"]["pong"]["status"] == 502  # pong's own source got the 508

        runs = recorded_runs(http, api, admin, expected=3)
        assert sorted((run["composite"], run["status"]) for run in runs) == [
            ("ping", "failed"),
            ("pong", "failed"),
            ("selfish", "failed"),
        ]
        direct = http.get(
            f"{api}/composites/ping/run", headers={"X-Aggregation-Chain": "pong,ping"}
        )
        assert direct.status_code == 508
        assert direct.json()["code"] == "composite_loop"
