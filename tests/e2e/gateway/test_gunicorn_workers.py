"""Through real gunicorn workers (2 processes, Redis): live route changes and exact limits,
proved on each worker (which one answered is read from its own metrics file)."""

import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.db import connections
from prometheus_client.parser import text_string_to_metric_families
from rest_framework_simplejwt.tokens import RefreshToken

from tests.e2e.gateway.platform import (
    WORKERS,
    gunicorn_platform,
)
from tests.e2e.gateway.platform import add_route as _add_route
from tests.e2e.gateway.platform import admin_headers as _admin
from tests.e2e.gateway.platform import fresh_get as _fresh_get
from tests.e2e.gateway.platform import per_worker as _per_worker
from tests.e2e.gateway.platform import until_every_worker_answers as _until_every_worker_answers
from tests.e2e.gateway.platform import until_every_worker_holds as _until_every_worker_holds
from tests.e2e.gateway.platform import worker_pid as _worker_pid
from tests.factories.gateway import UpstreamServer
from tests.factories.relay import TcpRelay
from tests.factories.tokens import access_token

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases=["default", "gateway"]),
]


@pytest.fixture
def postgres_relay():
    """PostgreSQL reached through a relay the test can cut."""
    db = connections["default"].settings_dict
    relay = TcpRelay((db["HOST"], int(db["PORT"]))).start()
    yield relay
    relay.cut()


@pytest.fixture
def platform(tmp_path, request):
    relay = request.getfixturevalue("postgres_relay") if "relayed" in request.keywords else None
    with gunicorn_platform(tmp_path, relay) as running:
        yield running


@pytest.fixture
def upstream():
    server = UpstreamServer().start()
    yield server
    server.stop()


def test_every_worker_serves_route_changes_and_limits_are_exact(platform, upstream):
    limit = {"requests": 10, "window_seconds": 60, "key": "ip"}
    _add_route(
        platform,
        name="limited",
        path_prefix="/limited",
        upstream_url=upstream.url,
        rate_limit=limit,
    )
    _add_route(platform, name="live", path_prefix="/live", upstream_url=upstream.url)
    # A worker that serves /live has reloaded since /limited was created, so it has both.
    _until_every_worker_answers(platform, "/live/x", 200, meanwhile={404})

    statuses = []
    barrier = threading.Barrier(8)

    def burst():
        barrier.wait()
        for _ in range(3):
            statuses.append(_fresh_get(platform.url + "/limited/x").status_code)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 10  # 10 per window, over both workers
    assert statuses.count(429) == 14
    counted = _per_worker(platform.metrics, "platform_gateway_requests_total", route="limited")
    assert len(counted) == WORKERS, counted  # 24 new connections: both workers took some

    changed = httpx.patch(
        platform.url + "/api/v1/gateway/routes/live", json={"enabled": False}, headers=_admin()
    )
    assert changed.status_code == 200
    _until_every_worker_answers(platform, "/live/x", 404, meanwhile={200})


def _circuit_states(platform):
    """Route → value of every `platform_gateway_circuit_state` sample on /metrics."""
    text = httpx.get(platform.url + "/metrics", timeout=10).text
    found = [
        (sample.labels["route"], sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "platform_gateway_circuit_state"
        for sample in family.samples
    ]
    assert len(found) == len(dict(found)), f"a route reported more than once: {found}"
    return dict(found)


def test_an_open_circuit_stays_on_metrics_when_every_worker_is_replaced(platform, upstream):
    """A deploy replaces the workers that saw the circuit open; the new ones refuse every call
    without changing it, and /metrics still says open, once, until `recovery_seconds`."""
    breaker = {"failure_threshold": 1, "recovery_seconds": 3600}
    _add_route(
        platform,
        name="down",
        path_prefix="/down",
        upstream_url=upstream.url + "/fail",
        circuit_breaker=breaker,
    )
    _add_route(platform, name="up", path_prefix="/up", upstream_url=upstream.url)
    # Every table holds both, or the worker answering /metrics may not know `up` yet.
    _until_every_worker_holds(platform, routes=2)
    # The first call to reach /down fails upstream (500) and opens the circuit for everyone.
    _until_every_worker_answers(platform, "/down", 503, meanwhile={404, 500})
    assert _circuit_states(platform) == {"down": 2, "up": 0}
    old = set(_per_worker(platform.metrics, "platform_gateway_route_table_routes"))

    platform.process.send_signal(signal.SIGHUP)  # gunicorn replaces every worker
    deadline = time.monotonic() + 30
    while True:
        tables = _per_worker(platform.metrics, "platform_gateway_route_table_routes")
        if len(tables) == WORKERS and not old & set(tables) and set(tables.values()) == {2}:
            break  # the old workers' files are gone, the new ones have loaded both routes
        assert time.monotonic() < deadline, f"workers {sorted(tables)} (old: {sorted(old)})"
        time.sleep(0.05)

    assert _circuit_states(platform) == {"down": 2, "up": 0}
    assert _fresh_get(platform.url + "/down").status_code == 503  # still open for the new


def _counted(platform):
    """The samples of the proxied requests to the `counted` route on /metrics: its counter and
    its latency histogram (buckets, sum, count)."""
    text = httpx.get(platform.url + "/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in ("platform_gateway_requests", "platform_gateway_request_duration_seconds")
        for sample in family.samples
        if sample.labels.get("route") == "counted"
    }


def _worker_pids(platform):
    return {_worker_pid(path) for path in platform.metrics.glob("*.db")} - {None}


def test_counts_outlive_their_workers_whose_files_go(platform, upstream):
    """Workers recycled (reloads, GUNICORN_MAX_REQUESTS) leave no files behind, so a scrape
    reads a bounded number of them; what they counted stays on /metrics (the archive files)."""
    _add_route(platform, name="counted", path_prefix="/counted", upstream_url=upstream.url)
    _until_every_worker_answers(platform, "/counted/x", 200, meanwhile={404})
    for _ in range(6):
        assert _fresh_get(platform.url + "/counted/x").status_code == 200
    before = _counted(platform)
    assert before[("platform_gateway_requests_total", (("route", "counted"), ("status", "200")))]

    files = []
    for _ in range(4):
        old = _worker_pids(platform)
        platform.process.send_signal(signal.SIGHUP)  # gunicorn replaces every worker
        deadline = time.monotonic() + 30
        while True:
            pids = _worker_pids(platform)
            tables = _per_worker(platform.metrics, "platform_gateway_route_table_routes")
            if not old & pids and len(tables) == WORKERS:
                break  # no file of an old worker is left, the new ones have started
            assert time.monotonic() < deadline, f"files of workers {sorted(pids)} (old: {old})"
            time.sleep(0.05)
        files.append(sorted(path.name for path in platform.metrics.glob("*.db")))

    assert _counted(platform) == before
    for names in files:  # each kind of file once a worker, and once for every ended one
        kinds = {name.rsplit("_", 1)[0] for name in names}
        assert kinds <= {"counter", "histogram", "gauge_liveall"}, names
        assert len(names) <= len(kinds) * (WORKERS + 1), names
    archives = {name for name in files[-1] if _worker_pid(Path(name)) is None}
    assert archives == {"counter_archive.db", "histogram_archive.db"}, files[-1]


def test_a_client_cannot_claim_https_without_trusted_proxies(platform, upstream):
    _add_route(platform, name="scheme", path_prefix="/scheme", upstream_url=upstream.url)
    answers = _until_every_worker_answers(
        platform, "/scheme/x", 200, meanwhile={404}, headers={"X-Forwarded-Proto": "https"}
    )
    assert {answer.json()["headers"]["x-forwarded-proto"] for answer in answers} == {"http"}


@pytest.mark.relayed
def test_with_postgres_gone_the_proxy_serves_its_last_routes_and_the_api_answers_503(
    platform, postgres_relay, upstream
):
    _add_route(platform, name="kept", path_prefix="/kept", upstream_url=upstream.url)
    # No proxied request before the cut: each worker's background refresh alone loads the route.
    _until_every_worker_holds(platform, routes=1)

    postgres_relay.cut()  # PostgreSQL is gone for the platform

    _until_every_worker_answers(platform, "/kept/x", 200)  # and nothing but 200 on the way
    listed = httpx.get(platform.url + "/api/v1/gateway/routes", headers=_admin(), timeout=10)
    assert listed.status_code == 503, listed.text
    assert listed.json()["code"] == "service_unavailable"
    assert listed.headers["retry-after"] == "5"
    ready = httpx.get(platform.url + "/health/ready", timeout=10)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database:gateway"] == {"status": "unavailable", "error": "OperationalError"}
    assert checks["cache"]["status"] == "ok"


@pytest.mark.relayed
def test_with_postgres_hung_the_api_answers_503_in_bounded_time_and_recovers_once_it_answers(
    platform, postgres_relay, upstream
):
    _add_route(platform, name="kept", path_prefix="/kept", upstream_url=upstream.url)
    _until_every_worker_holds(platform, routes=1)
    for _ in range(2 * WORKERS):  # threads that keep a connection, health-checked on reuse
        listed = _fresh_get(platform.url + "/api/v1/gateway/routes", headers=_admin())
        assert listed.status_code == 200, listed.text

    postgres_relay.freeze()  # connections stay open, nothing comes back: a stopped server

    _until_every_worker_answers(platform, "/kept/x", 200)
    started = time.monotonic()
    listed = httpx.get(platform.url + "/api/v1/gateway/routes", headers=_admin(), timeout=60)
    took = time.monotonic() - started
    assert (listed.status_code, listed.json()["code"]) == (503, "service_unavailable")
    # The kept connection's health check (2 + 1 s), then a new connection (2 s); waiting on
    # the frozen server took as long as the client did before (here, the 60 s of httpx).
    assert took < 30, took
    # Readiness checks every alias side by side and gives up at READINESS_TIMEOUT_SECONDS
    # (1 s here): one after another they took each alias's own timeouts, at least a 2 s
    # connect each here (~33 s with the defaults and kept connections).
    started = time.monotonic()
    ready = httpx.get(platform.url + "/health/ready", timeout=60)
    took = time.monotonic() - started
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    for alias in ("default", "gateway", "aggregation"):  # its connect (2 s) may fail first
        assert checks[f"database:{alias}"]["error"] in {"timeout", "OperationalError"}, checks
    assert checks["cache"]["status"] == "ok"
    assert took < 4, took
    postgres_relay.thaw()
    listed = httpx.get(platform.url + "/api/v1/gateway/routes", headers=_admin(), timeout=60)
    assert listed.status_code == 200, listed.text  # no restart, no stale connection kept


@pytest.mark.relayed
def test_with_postgres_gone_each_contexts_api_answers_the_503_its_schema_documents(
    platform, postgres_relay
):
    schema = httpx.get(platform.url + "/api/schema/?format=json", timeout=10).json()
    postgres_relay.cut()  # PostgreSQL is gone for the platform
    user, session = str(uuid.uuid4()), str(uuid.uuid4())
    bearer = {"Authorization": f"Bearer {access_token(user_id=user, sid=session)}"}
    refresh = RefreshToken()
    refresh["sub"], refresh["sid"] = user, session
    password = "a-long-enough-pass-7"
    calls = [
        # Every accounts operation that reads or writes the database in the request. (Reset
        # and resend hand the whole use case to the background pool, the same for every
        # address, and answer 202: their failure is logged there.)
        ("post", "/api/v1/auth/register", {"email": "a@example.com", "password": password}, {}),
        ("post", "/api/v1/auth/verify-email", {"token": "t" * 43}, {}),
        ("post", "/api/v1/auth/login", {"email": "a@example.com", "password": "p" * 12}, {}),
        ("post", "/api/v1/auth/refresh", {"refresh_token": str(refresh)}, {}),
        ("post", "/api/v1/auth/logout", {"refresh_token": str(refresh)}, bearer),
        ("post", "/api/v1/auth/logout-all", None, bearer),
        ("get", "/api/v1/auth/me", None, bearer),
        ("patch", "/api/v1/auth/me", {"full_name": "A"}, bearer),
        (
            "post",
            "/api/v1/auth/password/change",
            {"current_password": password, "new_password": "another-long-pass-8"},
            bearer,
        ),
        (
            "post",
            "/api/v1/auth/password/reset/confirm",
            {"token": "t" * 43, "new_password": password},
            {},
        ),
        ("get", "/api/v1/auth/sessions", None, bearer),
        ("delete", f"/api/v1/auth/sessions/{session}", None, bearer),
        ("get", "/api/v1/users", None, _admin()),
        ("get", f"/api/v1/users/{user}", None, _admin()),
        ("patch", f"/api/v1/users/{user}", {"status": "suspended"}, _admin()),
        ("get", "/api/v1/gateway/routes", None, _admin()),
        ("get", "/api/v1/aggregation/composites", None, _admin()),
    ]
    for method, url, body, headers in calls:
        path = url.replace(user, "{user_id}").replace(session, "{session_id}")  # the schema's
        response = httpx.request(method, platform.url + url, json=body, headers=headers, timeout=10)
        assert (response.status_code, response.json()["code"]) == (503, "service_unavailable"), (
            path,
            response.text,
        )
        assert response.headers["retry-after"] == "5", path
        documented = schema["paths"][path][method]["responses"]["503"]
        assert "`service_unavailable`" in documented["description"], path
        assert "Retry-After" in documented["headers"], path
