"""Liveness, readiness, metrics, the schema and the admin login page."""

import contextlib
import copy

import pytest
import redis
from django.core.cache import caches
from django.db import connections

from tests.factories.redis_server import start_redis_server
from tests.metrics import scrape, value

ALL_DATABASES = ["default", "gateway", "aggregation"]


@pytest.fixture
def caches_on_a_private_redis(settings):
    """Every cache alias on a redis-server of the test's own: its command statistics count
    what this test sent and nothing else. Yields a client of it."""
    process, url = start_redis_server()
    try:
        configured = copy.deepcopy(settings.CACHES)
        for alias in configured.values():
            alias["LOCATION"] = url
        settings.CACHES = configured
        with redis.Redis.from_url(url) as server:
            server.ping()
            yield server
    finally:
        process.kill()
        process.wait(timeout=10)


def commands_run(server) -> dict[str, int]:
    """Calls of each command the server has run, but the `INFO` this test reads them with."""
    return {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in server.info("commandstats").items()
        if name != "cmdstat_info"
    }


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_liveness_touches_nothing(
    client, caches_on_a_private_redis, django_assert_num_queries, settings
):
    before = commands_run(caches_on_a_private_redis)
    with contextlib.ExitStack() as no_queries:
        for alias in ALL_DATABASES:
            no_queries.enter_context(django_assert_num_queries(0, connection=connections[alias]))
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert commands_run(caches_on_a_private_redis) == before, "/health called the cache"
    # The server does count what the app's cache aliases send (this check could fail).
    for alias in caches:
        assert caches[alias].get("liveness-probe") is None
    sent = commands_run(caches_on_a_private_redis).get("get")
    assert sent == before.get("get", 0) + len(settings.CACHES)  # one GET by each alias


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_readiness_checks_every_database_and_the_cache(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database:default", "database:gateway", "database:aggregation", "cache"}
    assert all(check["status"] == "ok" for check in checks.values())


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_readiness_is_a_503_problem_naming_each_check_when_the_cache_is_down(client, redis_down):
    # API.md: every error is a problem document; readiness's 503 carries each check's result.
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (503, "service_unavailable")
    assert body["detail"] == "Not ready: cache is unavailable."
    assert body["checks"]["cache"]["status"] == "unavailable"
    assert body["checks"]["database:default"]["status"] == "ok"


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_metrics_expose_prometheus_text(client):
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "django_http_requests_total_by_method_total" in response.content.decode()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_metrics_count_database_and_cache_calls(client):
    """django-prometheus' families (API.md: "database and cache calls") come from its database
    backend and cache backend, which ours wrap: readiness queries every alias (`SELECT 1` on
    a connection of its own) and writes then reads the cache."""
    before = scrape(client)
    assert client.get("/health/ready").status_code == 200
    after = scrape(client)

    def increase(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    for alias in ALL_DATABASES:
        database = {"alias": alias, "vendor": "postgresql"}
        assert increase("platform_django_db_new_connections_total", **database) == 1, alias
        # The check's `SELECT 1`, and whatever Django runs to set a new connection up.
        executed = increase("platform_django_db_execute_total", **database)
        assert executed >= 1, alias
        assert increase("platform_django_db_query_duration_seconds_count", **database) == executed
    assert increase("platform_django_cache_get_total", backend="redis") == 1
    assert increase("platform_django_cache_get_hits_total", backend="redis") == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/no-such-view"])
def test_a_client_chosen_method_adds_no_metric_series(client, path):
    # Every method a client invents was a label of its own on the latency histogram (some 19
    # series each, in every worker): /metrics grew without bound. It counts as the others do.
    for method in ("FOO1", "ZZTOP"):
        assert client.generic(method, path).status_code in (404, 405)
    text = client.get("/metrics").content.decode()
    assert 'method="FOO1"' not in text
    assert 'method="ZZTOP"' not in text
    assert 'method="<invalid method>"' in text


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("method", ["get", "head"])
@pytest.mark.parametrize(
    ("remote", "forwarded_for", "trusted"),
    [
        ("203.0.113.7", None, 0),
        ("::ffff:203.0.113.7", None, 0),
        ("2001:db8::7", None, 0),
        # Through a trusted proxy on the private network: the client's address decides.
        ("10.0.0.2", "203.0.113.7", 1),
    ],
)
def test_metrics_are_refused_outside_the_monitoring_networks(
    client, method, remote, forwarded_for, trusted, settings
):
    """The business counters tell apart a login for an unknown address from a wrong password
    (`logins_total{outcome}`), and lockouts and throttled reset emails happen only to accounts
    that exist: read by anyone, /metrics was an oracle of which addresses have accounts that
    login's one answer and reset's one 202 do not give."""
    settings.TRUSTED_PROXY_COUNT = trusted
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    response = getattr(client, method)("/metrics", REMOTE_ADDR=remote, **extra)
    assert response.status_code == 403
    assert b"platform_" not in response.content
    if method == "get":
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize(
    "remote", ["127.0.0.1", "::1", "10.1.2.3", "172.20.0.5", "192.168.1.9", "::ffff:10.1.2.3"]
)
def test_metrics_are_served_to_loopback_and_private_networks_by_default(client, remote):
    response = client.get("/metrics", REMOTE_ADDR=remote)
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_monitoring_networks_are_configurable(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["198.51.100.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = ["0.0.0.0/0", "::/0"]  # everyone, knowingly
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 200


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("path", ["/health", "/health/ready", "/metrics"])
def test_load_balancers_may_probe_with_head(client, path):
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Type"] == client.get(path)["Content-Type"]


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("path", ["/health", "/health/ready", "/metrics"])
def test_probes_get_their_one_format_whatever_they_accept(client, path):
    assert client.get(path, HTTP_ACCEPT="text/html").status_code == 200
    assert client.get(f"{path}?format=yaml").status_code == 200


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Platform API"
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_schema_and_docs_ignore_a_stale_token(client, path):
    # They are public: a browser or client that still sends an expired token gets them too.
    assert client.get(path, HTTP_AUTHORIZATION="Bearer not.a.token").status_code == 200


@pytest.mark.django_db(databases=["default"])
def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/aggregation/composites/a%00b/run",
        "/api/v1/gateway/routes/%00",
        "/api/v1/aggregation/runs?composite=%00",
        "/admin/accounts/user/?role=%00",
    ],
)
def test_a_nul_in_the_path_or_query_is_400_never_a_500(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_a_readiness_check_still_queued_when_its_probe_answers_never_runs():
    """A hung backing service keeps every readiness thread waiting: the checks of the probes
    that meanwhile gave up must not pile up behind them (one queue entry per check of every
    probe, each opening a connection once a thread frees up, long after its answer)."""
    import threading

    from apps.common import views

    release = threading.Event()
    busy = [views._readiness_pool.submit(release.wait) for _ in range(views._READINESS_THREADS)]
    ran = []
    try:
        results = views._run_checks({"late": lambda: ran.append("late")}, timeout=0)
    finally:
        release.set()
    assert results == {"late": {"status": "unavailable", "error": "timeout"}}
    for future in busy:
        future.result(timeout=10)
    # Every thread passes this barrier only after taking whatever was queued ahead of it.
    barrier = threading.Barrier(views._READINESS_THREADS + 1)
    drained = [views._readiness_pool.submit(barrier.wait, 10) for _ in busy]
    barrier.wait(10)
    for future in drained:
        future.result(timeout=10)
    assert ran == []
