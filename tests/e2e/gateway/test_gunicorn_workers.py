"""Through real gunicorn workers (2 processes, Redis): live route changes and exact limits,
proved on each worker (which one answered is read from its own metrics file)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from django.conf import settings
from django.db import connections
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories.gateway import UpstreamServer
from tests.factories.relay import TcpRelay
from tests.factories.tokens import access_token

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases=["default", "gateway"]),
]
ROOT = Path(__file__).resolve().parents[3]
WORKERS = 2
# Routes refresh every 0.5 s; a loaded 2-core machine can take much longer, so poll up to this.
DEADLINE_SECONDS = 10.0


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_relay():
    """PostgreSQL reached through a relay the test can cut."""
    db = connections["default"].settings_dict
    relay = TcpRelay((db["HOST"], int(db["PORT"]))).start()
    yield relay
    relay.cut()


@pytest.fixture
def platform(tmp_path, request):
    port = _free_port()
    env = dict(os.environ)
    relay = request.getfixturevalue("postgres_relay") if "relayed" in request.keywords else None
    for alias, variable in (
        ("default", "ACCOUNTS_DATABASE_URL"),
        ("gateway", "GATEWAY_DATABASE_URL"),
        ("aggregation", "AGGREGATION_DATABASE_URL"),
    ):
        db = connections[alias].settings_dict
        db_port = relay.port if relay else db["PORT"]
        env[variable] = f"postgresql://{db['USER']}@{db['HOST']}:{db_port}/{db['NAME']}"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "JWT_SIGNING_KEY": settings.SIMPLE_JWT["SIGNING_KEY"],
            "REDIS_URL": settings.REDIS_URL,
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "PORT": str(port),
            "WEB_CONCURRENCY": str(WORKERS),
            "GUNICORN_THREADS": "4",
            "VAR_DIR": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            "LOG_LEVEL": "WARNING",
        }
    )
    if relay:  # a frozen database fails a call within 2 * 2 + 1 s rather than 2 * 5 + 1 s
        env["DATABASE_TIMEOUT_SECONDS"] = "2"
        env["READINESS_TIMEOUT_SECONDS"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
    yield SimpleNamespace(url=base, metrics=tmp_path / "prometheus", process=process)
    process.terminate()
    process.wait(timeout=30)


def _fresh_get(url, **kwargs):
    # A new connection per call, so both worker processes answer over time.
    return httpx.get(url, headers={"Connection": "close", **kwargs.pop("headers", {})}, timeout=5)


def _per_worker(metrics_dir, sample, **labels):
    """`sample` summed over the label sets matching `labels`, by worker pid.

    In prometheus_client's multiprocess mode every worker writes its own files in
    PROMETHEUS_MULTIPROC_DIR, named after its pid (`counter_<pid>.db`, `gauge_liveall_<pid>.db`):
    that tells the workers apart without anything in the answers themselves.
    """
    values = {}
    for path in metrics_dir.glob("*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            entries = MmapedDict.read_all_values_from_file(str(path))
        except FileNotFoundError:  # a worker that ended meanwhile: its files are removed
            continue
        for key, value, *_ in entries:
            _, name, sample_labels, _ = json.loads(key)
            if name == sample and labels.items() <= sample_labels.items():
                values[pid] = values.get(pid, 0) + value
    return values


def _answered_by(platform, path, **kwargs):
    """GET `path` on a new connection: the answer, and the pid of the worker that gave it (the
    one whose request count went up; the gateway counts before it answers)."""
    before = _per_worker(platform.metrics, "platform_gateway_requests_total")
    response = _fresh_get(platform.url + path, **kwargs)
    after = _per_worker(platform.metrics, "platform_gateway_requests_total")
    [pid] = [pid for pid, count in after.items() if count > before.get(pid, 0)]
    return response, pid


def _until_every_worker_answers(platform, path, status, *, meanwhile=(), **kwargs):
    """New connections to `path` until each worker has answered `status` at least once.

    SO_REUSEPORT hashes each new connection onto one worker's socket, so a handful of requests
    may all land on the same worker; counting who answered is what proves both did. Answers in
    `meanwhile` (e.g. the old route table, before a worker's refresh) are allowed on the way,
    anything else fails. Gives up after DEADLINE_SECONDS; returns the `status` answers.
    """
    answered, wanted = set(), []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(answered) < WORKERS:
        assert time.monotonic() < deadline, f"only workers {answered} answered {status} on {path}"
        response, pid = _answered_by(platform, path, **kwargs)
        if response.status_code == status:
            answered.add(pid)
            wanted.append(response)
        else:
            assert response.status_code in meanwhile, (response.status_code, response.text)
            time.sleep(0.05)  # a worker refreshes its routes every 0.5 s
    return wanted


def _until_every_worker_holds(platform, routes):
    """Wait, without proxied requests, until each worker's table has `routes` enabled routes
    (the `platform_gateway_route_table_routes` gauge each worker sets when it reloads)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        tables = _per_worker(platform.metrics, "platform_gateway_route_table_routes")
        if len(tables) == WORKERS and set(tables.values()) == {routes}:
            return
        assert time.monotonic() < deadline, f"route tables by worker pid: {tables}"
        time.sleep(0.05)


@pytest.fixture
def upstream():
    server = UpstreamServer().start()
    yield server
    server.stop()


def _admin():
    return {"Authorization": f"Bearer {access_token(roles=('admin',))}"}


def _add_route(platform, **route):
    created = httpx.post(platform.url + "/api/v1/gateway/routes", json=route, headers=_admin())
    assert created.status_code == 201, created.text


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
