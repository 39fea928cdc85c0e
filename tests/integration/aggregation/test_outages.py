"""The aggregation API with a backing service gone (docs/operations.md, "When a backing service
is down" and "Redis memory"): Redis down or full is no 500, and loses nothing but the caches
and the run limit; PostgreSQL gone is 503 `service_unavailable` with `Retry-After` wherever
the database is needed."""

from __future__ import annotations

import copy
import uuid
from contextlib import contextmanager

import pytest
import redis
from django.db import connections
from prometheus_client import REGISTRY

from apps.aggregation.models import CompositeRow, RunRow
from tests.factories.redis_server import start_redis_server
from tests.integration.aggregation.conftest import DATABASES, source

BASE = "/api/v1/aggregation"
DB = "aggregation"
# Port 1 on loopback: nothing listens there, so PostgreSQL's connection is refused at once.
NOWHERE = ("127.0.0.1", "1")


def problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    return response


@pytest.mark.django_db(databases=DATABASES)
def test_with_redis_down_every_aggregation_operation_still_works(
    client, upstream, admin_headers, make_composite, redis_down
):
    definition = {
        "name": "dash",
        "auth": "none",
        "sources": [{"key": "a", "url": upstream.url("/json")}],
    }

    def send(method, path, body=None):
        if body is None:
            return getattr(client, method)(path, **admin_headers)
        return getattr(client, method)(path, body, content_type="application/json", **admin_headers)

    assert send("post", f"{BASE}/composites", definition).status_code == 201
    assert send("get", f"{BASE}/composites/dash").json()["auth"] == "none"
    assert client.get(f"{BASE}/composites/dash/run").status_code == 200
    changed = send("patch", f"{BASE}/composites/dash", {"auth": "required"})
    assert changed.status_code == 200, changed.content
    # No copy of the definition to invalidate: the change holds at once.
    problem(client.get(f"{BASE}/composites/dash/run"), 401, "not_authenticated")
    assert send("get", f"{BASE}/composites/dash/run").status_code == 200
    assert send("get", f"{BASE}/composites").json()["count"] == 1
    runs = send("get", f"{BASE}/runs?composite=dash")
    assert runs.status_code == 200
    assert [run["status"] for run in runs.json()["results"]] == ["complete", "complete"]
    assert send("delete", f"{BASE}/composites/dash").status_code == 204
    problem(client.get(f"{BASE}/composites/dash/run"), 404, "composite_not_found")


@pytest.fixture
def own_redis(settings):
    """A private redis-server on a free port behind every cache alias: a client to it."""
    process, url = start_redis_server()
    client = redis.Redis.from_url(url)
    client.ping()
    configured = copy.deepcopy(settings.CACHES)
    for alias in configured.values():
        alias["LOCATION"] = url
    settings.CACHES = configured
    yield client
    process.kill()
    process.wait(timeout=10)


@pytest.mark.django_db(databases=DATABASES)
def test_with_redis_full_changes_still_hold_at_once_and_runs_answer(
    client, upstream, admin_headers, make_composite, own_redis
):
    # docs/operations.md advises `noeviction`: a full Redis refuses what adds data (a new stamp,
    # a cached copy, a source answer) but still reads and deletes.
    make_composite("dash", source("a", upstream.url("/json")), cache_ttl_seconds=60)
    assert client.get(f"{BASE}/composites/dash/run").status_code == 200  # all cached
    own_redis.config_set("maxmemory-policy", "noeviction")
    own_redis.config_set("maxmemory", 1)  # below what it holds: new data is refused
    with pytest.raises(redis.exceptions.ResponseError, match="used memory > 'maxmemory'"):
        own_redis.set("probe", "1")
    refused = REGISTRY.get_sample_value("platform_aggregation_cache_errors_total")
    definitions = "platform_aggregation_definition_cache_errors_total"
    refused_definitions = REGISTRY.get_sample_value(definitions)

    answered = client.get(f"{BASE}/composites/dash/run")
    assert answered.json()["meta"]["sources"]["a"]["cached"] is True  # reads still work
    for auth, anonymous in (("required", 401), ("none", 200), ("required", 401)):
        changed = client.patch(
            f"{BASE}/composites/dash",
            {"auth": auth},
            content_type="application/json",
            **admin_headers,
        )
        assert changed.status_code == 200, changed.content
        assert client.get(f"{BASE}/composites/dash/run").status_code == anonymous
    fresh = client.get(f"{BASE}/composites/dash/run?new=1", **admin_headers)
    assert fresh.status_code == 200
    changed = client.patch(
        f"{BASE}/composites/dash",
        {"sources": [{"key": "a", "url": upstream.url("/json?name={new}")}]},
        content_type="application/json",
        **admin_headers,
    )
    assert changed.status_code == 200
    fresh = client.get(f"{BASE}/composites/dash/run?new=fresh", **admin_headers)
    assert fresh.json()["data"]["a"]["name"] == "fresh"
    assert fresh.json()["meta"]["sources"]["a"]["cached"] is False
    assert REGISTRY.get_sample_value("platform_aggregation_cache_errors_total") > refused
    # The definitions' new stamps and copies were refused too, each counted.
    assert REGISTRY.get_sample_value(definitions) > refused_definitions


@contextmanager
def aggregation_database_gone():
    """Within: the aggregation database is unreachable (its connection points at a port nobody
    listens on). On leaving, it is back."""
    connection = connections[DB]
    saved = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = NOWHERE
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = saved


def unavailable(response):
    problem(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_with_postgres_gone_a_run_whose_definition_is_cached_answers_and_the_rest_is_503(
    client, upstream, admin_headers, make_composite, caplog
):
    make_composite("warm", source("a", upstream.url("/json")))
    make_composite("cold", source("a", upstream.url("/json")))
    assert client.get(f"{BASE}/composites/warm/run").status_code == 200  # caches its definition
    failures = "platform_aggregation_run_record_failures_total"
    before = REGISTRY.get_sample_value(failures)

    def send(method, path, body):
        return getattr(client, method)(path, body, content_type="application/json", **admin_headers)

    with aggregation_database_gone():
        answered = client.get(f"{BASE}/composites/warm/run")
        assert answered.status_code == 200, answered.content
        assert answered.json()["data"]["a"]["name"] == "json"
        assert REGISTRY.get_sample_value(failures) == before + 1  # answered, not recorded
        # Warned of (at most every 5 s per process), never an error with a traceback.
        assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]

        unavailable(client.get(f"{BASE}/composites/cold/run"))
        unavailable(client.get(f"{BASE}/composites", **admin_headers))
        unavailable(client.get(f"{BASE}/runs", **admin_headers))
        new = {"name": "new", "sources": [{"key": "a", "url": "http://h/"}]}
        unavailable(send("post", f"{BASE}/composites", new))
        unavailable(send("patch", f"{BASE}/composites/warm", {"auth": "required"}))
        unavailable(client.delete(f"{BASE}/composites/warm", **admin_headers))

    # Back: nothing was changed or half-written meanwhile, and runs are recorded again.
    assert sorted(CompositeRow.objects.using(DB).values_list("name", "auth")) == [
        ("cold", "none"),
        ("warm", "none"),
    ]
    assert RunRow.objects.using(DB).count() == 1
    assert client.get(f"{BASE}/composites/warm/run").status_code == 200
    assert RunRow.objects.using(DB).count() == 2


def terminate_backend(connection):
    """PostgreSQL ends the connection's server process, as a restart does (asked from another
    connection, waiting until it is gone)."""
    pid = connection.connection.info.backend_pid
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


def leave_mid_reset(connection):
    """libpq starts connecting the connection anew and is left there: psycopg 3 refuses to use
    it with an InterfaceError ("the connection is in status ..."), Django's InterfaceError, which
    is no DatabaseError. A closed or terminated connection is an OperationalError in psycopg 3
    ("the connection is closed"; psycopg 2 said InterfaceError, "connection already closed")."""
    connection.connection.pgconn.reset_start()


@pytest.mark.parametrize(
    ("break_connection", "error"),
    [(terminate_backend, "OperationalError"), (leave_mid_reset, "InterfaceError")],
)
@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_run_whose_database_connection_broke_answers_and_its_row_is_counted_as_lost(
    client, upstream, make_composite, caplog, break_connection, error
):
    # Only DatabaseError was caught: an InterfaceError escaped the history's write, and the
    # run's answer failed (in the test client; on a server, the response's close).
    make_composite("warm", source("a", upstream.url("/json")))
    assert client.get(f"{BASE}/composites/warm/run").status_code == 200  # caches its definition
    failures = "platform_aggregation_run_record_failures_total"
    before = REGISTRY.get_sample_value(failures)
    connection = connections[DB]
    break_connection(connection)
    try:
        with caplog.at_level("INFO"):
            answered = client.get(f"{BASE}/composites/warm/run")
    finally:
        connection.close_if_unusable_or_obsolete()  # as at every request's start and end

    assert answered.status_code == 200, answered.content
    assert answered.json()["data"]["a"]["name"] == "json"
    assert REGISTRY.get_sample_value(failures) == before + 1
    # Warned of (at most every 5 s per process: maybe not now), never with a traceback.
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert {r.msg["error"] for r in not_recorded_lines(caplog)} <= {error}
    # The broken connection was dropped, as at every request's start and end: back to normal.
    assert client.get(f"{BASE}/composites/warm/run").status_code == 200
    assert RunRow.objects.using(DB).count() == 2  # the first run's and this one's


def run_record(run_id=None):
    from datetime import UTC, datetime

    from core.domain.aggregation.runs import RunRecord, RunStatus

    return RunRecord(
        id=run_id or str(uuid.uuid4()),
        composite="dash",
        status=RunStatus.COMPLETE,
        took_ms=1.0,
        user_id=None,
        started_at=datetime.now(UTC),
        sources=(),
    )


def not_recorded_lines(caplog):
    event = "aggregation_run_not_recorded"
    return [r for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == event]


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_runs_lost_to_a_database_outage_are_each_counted_and_warned_of_every_few_seconds(caplog):
    # Each run logged an error-level line with a full traceback: an outage paged whoever alerts
    # on errors once per run, for what the platform handled (the run answered as documented).
    from apps.aggregation.repositories import DjangoRunHistory
    from apps.common.logging import CountedEveryFewSeconds

    now = [100.0]
    history = DjangoRunHistory(log_failure=CountedEveryFewSeconds(5.0, lambda: now[0]))
    failures = "platform_aggregation_run_record_failures_total"
    before = REGISTRY.get_sample_value(failures)
    with aggregation_database_gone(), caplog.at_level("INFO"):
        for at in (100.0, 101.0, 104.9, 105.1, 106.0):
            now[0] = at
            history.record(run_record())
    assert REGISTRY.get_sample_value(failures) == before + 5  # every lost row
    lines = not_recorded_lines(caplog)
    assert [(r.levelname, r.exc_info) for r in lines] == [("WARNING", None)] * 2  # 100, 105.1
    assert [r.msg["lost"] for r in lines] == [1, 3]  # how many since the last line
    assert {r.msg["error"] for r in lines} == {"OperationalError"}
    assert all("sqlstate" not in r.msg for r in lines)  # a refused connection has none
    assert RunRow.objects.using(DB).count() == 0


@pytest.mark.django_db(databases=[])
def test_an_unreachable_source_cache_is_counted_every_time_and_warned_of_every_few_seconds(
    redis_down, caplog
):
    # Each run logged two `aggregation_cache_unavailable` lines (its lookup and its store),
    # without the error's type: twenty in eight seconds of a frozen Redis.
    from apps.aggregation.adapters import DjangoSourceCache
    from apps.common.logging import EveryFewSeconds

    now = [100.0]
    source_cache = DjangoSourceCache(log_failure=EveryFewSeconds(5.0, lambda: now[0]))
    errors = "platform_aggregation_cache_errors_total"
    before = REGISTRY.get_sample_value(errors)
    with caplog.at_level("INFO", logger="apps.aggregation.adapters"):
        for at in (100.0, 101.0, 104.9, 105.1):
            now[0] = at
            assert source_cache.get_many(["k"]) == {}
            source_cache.set_many({"k": 1}, ttl_seconds=60)
    assert REGISTRY.get_sample_value(errors) == before + 8  # every failed operation
    lines = [r for r in caplog.records if r.name == "apps.aggregation.adapters"]
    assert [(r.levelname, r.msg["event"]) for r in lines] == [
        ("WARNING", "aggregation_cache_unavailable")
    ] * 2  # at 100 and at 105.1
    assert [r.msg["operation"] for r in lines] == ["get_many", "get_many"]
    # The error's type: refused, or refused at once while the address is held unreachable.
    assert {r.msg["error"] for r in lines} <= {"ConnectionError", "HeldUnreachable"}


@pytest.mark.django_db(databases=DATABASES)
def test_an_unreachable_definition_cache_is_counted_every_time_and_warned_of_every_few_seconds(
    redis_down, caplog
):
    # Each write logged two `aggregation_definition_cache_unavailable` lines (its new stamp and
    # its deletion) on every call, without the error's type; a failed read was neither counted
    # nor logged.
    from apps.aggregation.repositories import CachedCompositeRepository, DjangoCompositeRepository
    from apps.common.logging import EveryFewSeconds
    from core.domain.aggregation.composite import Composite

    dash = Composite(name="dash", sources=(source("a", "http://h/"),))
    DjangoCompositeRepository().add(dash)
    now = [100.0]
    repo = CachedCompositeRepository(log_failure=EveryFewSeconds(5.0, lambda: now[0]))
    errors = "platform_aggregation_definition_cache_errors_total"
    before = REGISTRY.get_sample_value(errors)
    with caplog.at_level("INFO", logger="apps.aggregation.repositories"):
        for at in (100.0, 101.0, 104.9, 105.1):
            now[0] = at
            assert repo.get("dash") == dash  # from the database
            repo.replace("dash", dash)
    assert REGISTRY.get_sample_value(errors) == before + 12  # every failed operation
    lines = [r for r in caplog.records if r.name == "apps.aggregation.repositories"]
    assert [(r.levelname, r.exc_info, r.msg["event"]) for r in lines] == [
        ("WARNING", None, "aggregation_definition_cache_unavailable")
    ] * 2  # at 100 and at 105.1
    assert [r.msg["operation"] for r in lines] == ["get", "get"]
    # The error's type: refused, or refused at once while the address is held unreachable.
    assert {r.msg["error"] for r in lines} <= {"ConnectionError", "HeldUnreachable"}


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_full_definition_cache_warns_of_each_refused_operation_as_its_own_throttle_says(
    own_redis, caplog
):
    # A full Redis refuses a read's copy and a write's new stamp (not the deletion after it):
    # each is counted and warned of by name when the repository's throttle says (here, every
    # time), a write's retirement once committed too. Two writes of each kind: the module's
    # default throttle, used instead of the repository's, says yes at most once in 5 s.
    from django.db import transaction

    from apps.aggregation.repositories import CachedCompositeRepository, DjangoCompositeRepository
    from core.domain.aggregation.composite import Composite

    dash = Composite(name="dash", sources=(source("a", "http://h/"),))
    DjangoCompositeRepository().add(dash)
    own_redis.config_set("maxmemory-policy", "noeviction")
    own_redis.config_set("maxmemory", 1)  # below what it holds: new data is refused
    repo = CachedCompositeRepository(log_failure=lambda: True)
    errors = "platform_aggregation_definition_cache_errors_total"
    before = REGISTRY.get_sample_value(errors)
    with caplog.at_level("INFO", logger="apps.aggregation.repositories"):
        assert repo.get("dash") == dash  # from the database, its copy refused
        for _ in range(2):
            repo.replace("dash", dash)  # retired at once
        with transaction.atomic(using=DB):
            for _ in range(2):
                repo.replace("dash", dash)  # at once, and again once committed
    lines = [r for r in caplog.records if r.name == "apps.aggregation.repositories"]
    assert [r.msg["operation"] for r in lines] == ["set"] + ["stamp"] * 6
    assert {r.msg["error"] for r in lines} == {"OutOfMemoryError"}
    assert REGISTRY.get_sample_value(errors) == before + 7


@pytest.mark.django_db(databases=DATABASES)
def test_the_definition_caches_warnings_are_throttled_as_wiring_builds_it(redis_down, caplog):
    # Built without a throttle (as wiring builds it): at most one line every 5 s per process,
    # maybe none now (an earlier test's line may be that one).
    from apps.aggregation.repositories import CachedCompositeRepository

    with caplog.at_level("INFO", logger="apps.aggregation.repositories"):
        for _ in range(3):
            assert CachedCompositeRepository().get("dash") is None  # from the database
    lines = [r for r in caplog.records if r.name == "apps.aggregation.repositories"]
    assert len(lines) <= 1
