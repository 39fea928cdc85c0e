"""GET /api/v1/aggregation/composites/{name}/run against real upstreams and the real Postgres."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import pytest

from apps.aggregation.models import RunRow, SourceRow
from core.domain.aggregation.composite import AuthMode
from tests.factories.tokens import access_token, user_uuid
from tests.integration.aggregation.conftest import DATABASES, source
from tests.tracing import CLIENT_SPAN, CLIENT_TRACE

pytestmark = pytest.mark.django_db(databases=DATABASES)


def run(client, name="combo", query="", **headers):
    return client.get(f"/api/v1/aggregation/composites/{name}/run{query}", **headers)


def test_the_sources_of_a_run_are_called_concurrently(client, upstream, make_composite):
    # Each source answers once all three calls are waiting at the upstream together: called one
    # after another, the first would get a 504 after 5 s and the run would not be complete.
    group = uuid.uuid4().hex  # a barrier of its own, even when the test runs again
    make_composite(
        "combo",
        *(
            source(
                key,
                upstream.url(f"/gather?group={group}&parties=3&ms=5000&name={key}"),
                timeout_ms=10_000,
            )
            for key in ("a", "b", "c")
        ),
        timeout_ms=10_000,
    )
    response = run(client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["data"] == {key: {"name": key} for key in ("a", "b", "c")}
    assert body["errors"] == {}
    assert body["meta"]["partial"] is False
    assert body["meta"]["status"] == "complete"


def test_fields_are_filtered_and_renamed(client, upstream, make_composite):
    make_composite(
        "combo",
        source(
            "a",
            upstream.url("/json?name=alpha"),
            fields=("name", "delay_ms"),
            rename={"name": "title"},
        ),
    )
    assert run(client).json()["data"] == {"a": {"title": "alpha", "delay_ms": 0}}


def test_failing_optional_source_gives_a_partial_200(client, upstream, make_composite):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("broken", upstream.url("/json?status=503"), required=False),
    )
    response = run(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body["data"]) == {"ok"}
    assert body["errors"]["broken"]["status"] == 503
    assert body["errors"]["broken"]["code"] == "source_http_error"
    assert body["meta"]["partial"] is True
    assert body["meta"]["sources"]["broken"]["status"] == "failed"


def test_failing_required_source_gives_502_source_failed_with_the_answer(
    client, upstream, make_composite
):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("broken", upstream.url("/json?status=500")),
    )
    response = run(client)
    assert response.status_code == 502
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "source_failed"
    assert body["status"] == 502
    assert set(body["data"]) == {"ok"}
    assert body["errors"]["broken"]["code"] == "source_http_error"
    assert body["meta"]["status"] == "failed"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/text", "source_invalid_json"),
        ("/big?bytes=3000000", "source_too_large"),
        ("/big-chunked?bytes=3000000", "source_too_large"),
    ],
)
def test_bad_answers_are_that_sources_error(client, upstream, make_composite, path, code):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("bad", upstream.url(path), required=False),
    )
    response = run(client)
    assert response.status_code == 200
    assert response.json()["errors"]["bad"]["code"] == code
    assert response.json()["data"]["ok"]["name"] == "json"


def test_a_source_answering_an_error_fails_at_once_whatever_its_body(
    client, upstream, make_composite
):
    # The status comes with the headers: a 503 whose body trickles for 5 s is that source's
    # HTTP error at once (not its timeout, after the run waited for a body nobody reads), and
    # a 500 with a body past the size limit is its HTTP error too, not an oversized answer.
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source(
            "trickling",
            upstream.url("/drip?status=503&chunks=100&every_ms=50"),
            required=False,
            timeout_ms=5000,
        ),
        source("huge", upstream.url("/big?status=500&bytes=3000000"), required=False),
        timeout_ms=5000,
    )
    started = time.perf_counter()
    response = run(client)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content
    assert elapsed < 2, f"took {elapsed:.3f}s"  # the trickle alone lasts 5 s
    errors = response.json()["errors"]
    assert errors["trickling"] == {
        "status": 503,
        "code": "source_http_error",
        "detail": "The source answered 503.",
    }
    assert errors["huge"] == {
        "status": 500,
        "code": "source_http_error",
        "detail": "The source answered 500.",
    }


def test_a_source_answering_204_no_content_answers_null(client, upstream, make_composite):
    # 204 says "done, nothing to send": a success whose JSON value is null, not a non-JSON
    # answer. An empty 200 claims a body it does not send, and stays that source's error.
    make_composite(
        "combo",
        source("nothing", upstream.url("/nothing?status=204"), fields=("a",), rename={"a": "b"}),
        source("empty", upstream.url("/nothing?status=200"), required=False),
    )
    response = run(client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["data"] == {"nothing": None}
    assert body["errors"]["empty"]["code"] == "source_invalid_json"
    assert body["meta"]["sources"]["nothing"]["status"] == "ok"


def test_a_sources_redirect_is_its_http_error_and_is_not_followed(
    client, upstream, make_composite, user_headers
):
    # Followed, it could lead the call, and the caller's forwarded token, to another origin.
    make_composite(
        "combo",
        source("moved", upstream.url("/redirect?to=/echo/redirected"), forward_auth=True),
    )
    before = upstream.calls["/echo/redirected"]
    response = run(client, **user_headers)
    assert response.status_code == 502
    error = response.json()["errors"]["moved"]
    assert (error["status"], error["code"]) == (302, "source_http_error")
    assert upstream.calls["/echo/redirected"] == before


def test_unreachable_source_is_reported(client, make_composite):
    make_composite("combo", source("gone", "http://127.0.0.1:9/x", required=False))
    body = run(client).json()
    assert body["errors"]["gone"] == {
        "status": None,
        "code": "source_unreachable",
        "detail": body["errors"]["gone"]["detail"],
    }


def test_a_hanging_source_does_not_hold_the_answer_past_its_timeout(
    client, upstream, make_composite
):
    make_composite(
        "combo",
        source("fast", upstream.url("/json?delay_ms=20")),
        source("stuck", upstream.url("/hang"), required=False, timeout_ms=300),
        timeout_ms=5000,
    )
    started = time.perf_counter()
    response = run(client)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < 1.5, f"took {elapsed:.3f}s"  # /hang never answers
    body = response.json()
    assert body["errors"]["stuck"]["code"] == "source_timeout"
    assert body["meta"]["partial"] is True
    assert "fast" in body["data"]


def test_the_composite_deadline_caps_every_source(client, upstream, make_composite):
    make_composite(
        "combo",
        source("slow", upstream.url("/json?delay_ms=2000"), timeout_ms=5000),
        source("drip", upstream.url("/drip?chunks=50&every_ms=50"), timeout_ms=5000),
        timeout_ms=300,
    )
    started = time.perf_counter()
    response = run(client)
    elapsed = time.perf_counter() - started
    assert response.status_code == 502
    assert elapsed < 1.5, f"took {elapsed:.3f}s"  # the sources alone would take 2 s and more
    errors = response.json()["errors"]
    assert errors["slow"]["code"] == errors["drip"]["code"] == "source_timeout"


def test_placeholders_are_filled_url_encoded_from_the_query_string(
    client, upstream, make_composite
):
    make_composite("combo", source("echo", upstream.url("/echo/users/{id}?q={term}")))
    response = run(client, query="?id=a%3Bb%3Fc&term=x%26admin%3D1%23frag%2F")
    assert response.status_code == 200
    echo = response.json()["data"]["echo"]
    assert echo["path"] == "/echo/users/a%3Bb%3Fc"
    assert echo["raw_query"] == "q=x%26admin%3D1%23frag%2F"
    assert echo["query"] == {"q": "x&admin=1#frag/"}


@pytest.mark.parametrize(
    "value",
    ["evil.example:80", "@evil.example", "//evil.example/x", "..", "http://evil.example/"],
)
def test_placeholder_values_never_change_the_origin_or_path(
    client, upstream, make_composite, value
):
    make_composite("combo", source("echo", upstream.url("/echo/{id}")))
    calls_before = dict(upstream.calls)
    response = run(client, query="?" + urlencode({"id": value}))
    if value == ".." or "/" in value:
        assert response.status_code == 400
        assert response.json()["errors"] == {
            "id": [
                "This value may not be a relative path segment."
                if value == ".."
                else "A value in the path may not contain / or \\."
            ]
        }
        assert upstream.calls == calls_before  # no source was called
        return
    assert response.status_code == 200, response.content
    assert response.json()["data"]["echo"]["path"].startswith("/echo/")
    assert upstream.calls["/echo/" + quote(value, safe="")] >= 1


@pytest.mark.parametrize("value", ["csv", "xml", "api", "json"])
def test_the_query_string_is_the_composites_even_a_format_placeholder(
    client, upstream, make_composite, value
):
    # `?format=` is DRF's renderer override elsewhere; here it fills the placeholder.
    make_composite("combo", source("echo", upstream.url("/echo/report.{format}")))
    response = run(client, query=f"?format={value}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["data"]["echo"]["path"] == f"/echo/report.{value}"


def test_unfilled_placeholder_is_400_and_calls_nothing(client, upstream, make_composite):
    make_composite("combo", source("echo", upstream.url("/echo/nothing/{id}")))
    before = sum(upstream.calls.values())
    response = run(client, query="?other=1")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"] == {"id": ["This query parameter is required."]}
    assert sum(upstream.calls.values()) == before
    assert not RunRow.objects.using("aggregation").exists()


def test_a_placeholder_given_twice_is_400_and_calls_nothing(client, upstream, make_composite):
    # Which of two values would be used is a guess a filter in front of the platform may make
    # differently (it checked `id=1`, the source got `id=2`): neither is, the run is refused.
    make_composite("combo", source("echo", upstream.url("/echo/twice/{id}")))
    before = sum(upstream.calls.values())
    response = run(client, query="?id=1&id=2&unused=a&unused=b")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"] == {"id": ["Give this query parameter once."]}
    assert sum(upstream.calls.values()) == before
    assert not RunRow.objects.using("aggregation").exists()
    assert run(client, query="?id=1&unused=a&unused=b").status_code == 200  # unused: no matter


def test_unknown_composite_is_404(client):
    response = run(client, name="nope")
    assert response.status_code == 404
    assert response.json()["code"] == "composite_not_found"


def test_auth_required_composite_needs_a_token(client, upstream, make_composite, user_headers):
    make_composite("combo", source("a", upstream.url("/json")), auth=AuthMode.REQUIRED)
    anonymous = run(client)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert run(client, HTTP_AUTHORIZATION="Bearer forged").status_code == 401
    assert run(client, **user_headers).status_code == 200


def test_token_is_forwarded_only_to_forward_auth_sources(
    client, upstream, make_composite, user_headers
):
    make_composite(
        "combo",
        source("trusted", upstream.url("/echo/trusted"), forward_auth=True),
        source("other", upstream.url("/echo/other")),
    )
    data = run(client, HTTP_X_REQUEST_ID="req-42", **user_headers).json()["data"]
    assert data["trusted"]["headers"]["authorization"] == user_headers["HTTP_AUTHORIZATION"]
    assert "authorization" not in data["other"]["headers"]
    assert data["other"]["headers"]["x-request-id"] == "req-42"


def test_sources_get_no_other_header_of_the_callers_request(
    client, upstream, make_composite, user_headers
):
    make_composite(
        "combo",
        source("trusted", upstream.url("/echo/trusted"), forward_auth=True),
        source("other", upstream.url("/echo/other")),
    )
    callers = {
        "HTTP_COOKIE": "sessionid=secret",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9",
        "HTTP_X_USER_ID": "admin",
        "HTTP_ACCEPT_LANGUAGE": "fr",
        "HTTP_X_CUSTOM": "1",
        "HTTP_X_REQUEST_ID": "req-7",
        **user_headers,
    }
    data = run(client, **callers).json()["data"]
    sent = {"host", "connection", "accept", "accept-encoding", "user-agent"}
    sent |= {"x-request-id", "x-aggregation-chain", "traceparent"}
    assert set(data["other"]["headers"]) == sent
    assert set(data["trusted"]["headers"]) == sent | {"authorization"}
    assert data["other"]["headers"]["accept"] == "application/json"
    assert data["other"]["headers"]["x-request-id"] == "req-7"


def received_traceparents(data):
    """(trace id, span id, flags) of the `traceparent` each echo source received, by key."""
    found = {}
    for key, echoed in data.items():
        version, trace_id, span_id, flags = echoed["headers"]["traceparent"].split("-")
        assert version == "00", echoed["headers"]
        found[key] = (trace_id, span_id, flags)
    return found


def test_each_source_call_continues_the_callers_trace_as_a_span_of_its_own(
    client, upstream, make_composite
):
    make_composite(
        "combo",
        source("a", upstream.url("/echo/trace-a")),
        source("b", upstream.url("/echo/trace-b")),
    )
    data = run(
        client,
        HTTP_TRACEPARENT=f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
        HTTP_TRACESTATE="vendor=client",
    ).json()["data"]
    received = received_traceparents(data)
    assert {trace for trace, _, _ in received.values()} == {CLIENT_TRACE}
    assert {flags for _, _, flags in received.values()} == {"01"}
    spans = {span for _, span, _ in received.values()}
    assert len(spans) == 2  # each call a hop of its own
    assert CLIENT_SPAN not in spans
    assert [echoed["headers"]["tracestate"] for echoed in data.values()] == ["vendor=client"] * 2


@pytest.mark.parametrize("traceparent", [None, "00-not-a-trace-01"], ids=["none", "invalid"])
def test_a_run_without_a_valid_traceparent_calls_its_sources_in_one_new_trace(
    client, upstream, make_composite, traceparent
):
    make_composite(
        "combo",
        source("a", upstream.url("/echo/new-trace-a")),
        source("b", upstream.url("/echo/new-trace-b")),
    )
    caller = {"HTTP_TRACESTATE": "vendor=client"}
    if traceparent is not None:
        caller["HTTP_TRACEPARENT"] = traceparent
    first_data = run(client, **caller).json()["data"]
    first = received_traceparents(first_data)
    second = received_traceparents(run(client, **caller).json()["data"])
    assert first["a"][0] == first["b"][0] != second["a"][0] == second["b"][0]
    assert first["a"][1] != first["b"][1]
    assert CLIENT_TRACE not in {first["a"][0], second["a"][0]}
    assert all("tracestate" not in echoed["headers"] for echoed in first_data.values())


def test_sources_are_told_the_chain_of_composites_and_a_loop_is_508(
    client, upstream, make_composite
):
    make_composite("combo", source("echo", upstream.url("/echo/chain")))
    echoed = run(client, HTTP_X_AGGREGATION_CHAIN="outer").json()["data"]["echo"]
    assert echoed["headers"]["x-aggregation-chain"] == "outer,combo"
    calls = sum(upstream.calls.values())
    refused = run(client, HTTP_X_AGGREGATION_CHAIN="outer,combo,inner")
    assert refused.status_code == 508
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "composite_loop"
    assert sum(upstream.calls.values()) == calls
    assert RunRow.objects.using("aggregation").count() == 1  # the first run only


def test_answers_are_cached_per_user_when_the_token_is_forwarded(
    client, upstream, make_composite, user_headers
):
    make_composite(
        "cached",
        source("mine", upstream.url("/echo/cache-mine"), forward_auth=True),
        source("shared", upstream.url("/echo/cache-shared")),
        cache_ttl_seconds=60,
    )
    first = run(client, "cached", **user_headers).json()
    second = run(client, "cached", **user_headers).json()
    anonymous = run(client, "cached").json()
    assert first["meta"]["sources"]["mine"]["cached"] is False
    assert second["meta"]["sources"]["mine"]["cached"] is True
    assert second["data"] == first["data"]
    assert anonymous["meta"]["sources"]["mine"]["cached"] is False
    assert "authorization" not in anonymous["data"]["mine"]["headers"]
    assert anonymous["meta"]["sources"]["shared"]["cached"] is True
    assert upstream.calls["/echo/cache-mine"] == 2
    assert upstream.calls["/echo/cache-shared"] == 1


def test_failures_are_not_cached(client, upstream, make_composite):
    make_composite(
        "combo", source("bad", upstream.url("/json?status=500&name=nocache")), cache_ttl_seconds=60
    )
    run(client)
    assert run(client).json()["meta"]["sources"]["bad"]["cached"] is False


def _sample(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0


def test_a_placeholder_written_into_a_stored_host_fails_its_source_not_the_run(
    client, upstream, make_composite
):
    # The API and the admin refuse a placeholder in the host; a row written straight into the
    # database still answers as a source that cannot be reached, never a 500.
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("odd", upstream.url("/json"), required=False),
    )
    SourceRow.objects.using("aggregation").filter(key="odd").update(
        url="http://{tenant}.127.0.0.1/json?id={id}"
    )
    response = run(client, query="?tenant=evil.com&id=7")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body["data"]) == {"ok"}
    assert body["errors"]["odd"]["code"] == "source_unreachable"
    assert body["meta"]["partial"] is True


def test_a_down_cache_is_bypassed_not_a_500(client, upstream, make_composite, request):
    make_composite("combo", source("a", upstream.url("/json")), cache_ttl_seconds=60)
    failures = _sample("platform_aggregation_cache_errors_total")
    request.getfixturevalue("redis_down")
    response = run(client)
    assert response.status_code == 200
    assert response.json()["meta"]["sources"]["a"]["cached"] is False
    assert _sample("platform_aggregation_cache_errors_total") > failures


def test_every_run_is_recorded(client, upstream, make_composite, user_headers):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("bad", upstream.url("/text"), required=False),
    )
    run(client, **user_headers)
    row = RunRow.objects.using("aggregation").get()
    assert row.composite == "combo"
    assert row.status == "partial"
    assert row.user_id == user_uuid("alice")
    assert row.took_ms > 0
    assert [(s["key"], s["status"], s["code"]) for s in row.sources] == [
        ("ok", "ok", None),
        ("bad", "failed", "source_invalid_json"),
    ]


def test_complete_and_failed_runs_are_recorded_too(
    client, upstream, make_composite, admin_headers, user_headers
):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("flaky", upstream.url("/json?status={status}")),  # required
    )
    assert run(client, query="?status=200").status_code == 200
    assert run(client, query="?status=503", **user_headers).status_code == 502
    history = client.get("/api/v1/aggregation/runs?composite=combo", **admin_headers).json()
    failed, complete = history["results"]
    assert (failed["status"], failed["user_id"]) == ("failed", user_uuid("alice"))
    assert [(s["key"], s["status"], s["code"]) for s in failed["sources"]] == [
        ("ok", "ok", None),
        ("flaky", "failed", "source_http_error"),
    ]
    assert (complete["status"], complete["user_id"]) == ("complete", None)
    assert [s["status"] for s in complete["sources"]] == ["ok", "ok"]
    assert failed["took_ms"] > 0
    assert complete["took_ms"] > 0


def test_a_recorded_run_carries_when_it_started_as_an_rfc3339_utc_time(
    client, upstream, make_composite, admin_headers
):
    make_composite("combo", source("a", upstream.url("/json?delay_ms=50")))
    before = datetime.now(UTC)
    took_ms = run(client).json()["meta"]["took_ms"]
    after = datetime.now(UTC)
    [recorded] = client.get("/api/v1/aggregation/runs", **admin_headers).json()["results"]
    assert recorded["started_at"].endswith("Z")
    started = datetime.fromisoformat(recorded["started_at"])
    assert before <= started <= after - timedelta(milliseconds=took_ms)
    assert recorded["took_ms"] == took_ms


# PostgreSQL itself refuses the history row (a trigger), so the write really fails. The test
# commits (no surrounding test transaction) as the server does, and drops the trigger after.
REFUSE_RUN_ROWS = """
    CREATE FUNCTION test_refuse_run_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the run history refuses writes'; END $$;
    CREATE TRIGGER test_refuse_run_rows BEFORE INSERT ON aggregation_run
        FOR EACH ROW EXECUTE FUNCTION test_refuse_run_rows();
"""
ACCEPT_RUN_ROWS = """
    DROP TRIGGER IF EXISTS test_refuse_run_rows ON aggregation_run;
    DROP FUNCTION IF EXISTS test_refuse_run_rows();
"""


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_failed_history_write_still_answers(client, upstream, make_composite, caplog):
    from django.db import connections
    from prometheus_client import REGISTRY

    make_composite("combo", source("a", upstream.url("/json")))
    failures = "platform_aggregation_run_record_failures_total"
    before = REGISTRY.get_sample_value(failures)
    with connections["aggregation"].cursor() as cursor:
        cursor.execute(REFUSE_RUN_ROWS)
    try:
        response = run(client)
    finally:
        with connections["aggregation"].cursor() as cursor:
            cursor.execute(ACCEPT_RUN_ROWS)
    assert response.status_code == 200
    assert response.json()["data"]["a"]["name"] == "json"
    # Handled: a warning (at most every 5 s per process), never an error with a traceback.
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert REGISTRY.get_sample_value(failures) == before + 1
    assert not RunRow.objects.using("aggregation").exists()  # nothing half-written
    run(client)  # the connection is still good: the next run is recorded
    assert RunRow.objects.using("aggregation").count() == 1


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_history_row_the_database_refused_is_a_warning_naming_its_sqlstate(caplog):
    from django.db import connections

    from apps.aggregation.repositories import DjangoRunHistory
    from apps.common.logging import CountedEveryFewSeconds
    from tests.integration.aggregation.test_outages import not_recorded_lines, run_record

    history = DjangoRunHistory(log_failure=CountedEveryFewSeconds(5.0, lambda: 100.0))
    with connections["aggregation"].cursor() as cursor:
        cursor.execute(REFUSE_RUN_ROWS)
    try:
        with caplog.at_level("INFO"):
            history.record(run_record())
    finally:
        with connections["aggregation"].cursor() as cursor:
            cursor.execute(ACCEPT_RUN_ROWS)
    [line] = not_recorded_lines(caplog)
    assert (line.levelname, line.exc_info) == ("WARNING", None)
    # PostgreSQL's RAISE EXCEPTION: SQLSTATE P0001, which psycopg and Django raise as a
    # ProgrammingError.
    assert line.msg["error"] == "ProgrammingError"
    assert line.msg["sqlstate"] == "P0001"
    assert (line.msg["composite"], line.msg["lost"]) == ("dash", 1)


def test_run_metrics_are_exported(client, upstream, make_composite):
    make_composite("metered", source("a", upstream.url("/json")))
    run(client, "metered")
    text = client.get("/metrics").content.decode()
    assert 'platform_aggregation_runs_total{composite="metered",status="complete"}' in text
    assert (
        'platform_aggregation_source_latency_seconds_count{composite="metered",source="a"}' in text
    )


def test_runs_are_limited_per_client_ip_and_a_refused_run_calls_and_records_nothing(
    client, upstream, make_composite, settings
):
    settings.AGGREGATION_RUN_RATE = "2/m"
    make_composite("combo", source("a", upstream.url("/json?name=limited")))
    refusals = _sample("platform_aggregation_rate_limited_total")
    assert [run(client, query=f"?n={n}").status_code for n in range(2)] == [200, 200]
    calls = sum(upstream.calls.values())
    refused = run(client, query="?n=3")
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert sum(upstream.calls.values()) == calls
    assert RunRow.objects.using("aggregation").count() == 2
    assert _sample("platform_aggregation_rate_limited_total") == refusals + 1
    # Every composite shares the caller's budget, an unknown name included.
    assert run(client, name="nope").status_code == 429
    assert run(client, REMOTE_ADDR="10.0.0.9").status_code == 200


def test_a_run_that_waits_out_retry_after_is_let_through_and_one_a_second_sooner_is_not(
    client, upstream, make_composite, settings, ratelimit_clock
):
    """Retry-After is the whole seconds until the caller's next window starts (django-ratelimit's
    clock moved by the test): no earlier, or a client honouring it is refused again."""
    settings.AGGREGATION_RUN_RATE = "5/m"
    make_composite("combo", source("a", upstream.url("/json")))
    refused_at = ratelimit_clock.now = int(ratelimit_clock.now) + 0.25
    assert [run(client, query=f"?n={n}").status_code for n in range(5)] == [200] * 5
    refused = run(client, query="?n=5")
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 60
    ratelimit_clock.now = refused_at + wait - 1
    sooner = run(client, query="?n=6")
    assert (sooner.status_code, sooner["Retry-After"]) == (429, "1")
    ratelimit_clock.now = refused_at + wait
    assert run(client, query="?n=7").status_code == 200


def test_a_caller_with_a_token_is_counted_by_user_not_by_ip(
    client, upstream, make_composite, settings
):
    settings.AGGREGATION_RUN_RATE = "1/m"
    make_composite("combo", source("a", upstream.url("/json")))
    alice = {"HTTP_AUTHORIZATION": f"Bearer {access_token(user_id=user_uuid('alice'))}"}
    bob = {"HTTP_AUTHORIZATION": f"Bearer {access_token(user_id=user_uuid('bob'))}"}
    assert run(client).status_code == 200
    assert run(client).status_code == 429
    assert run(client, **alice).status_code == 200
    assert run(client, **alice, REMOTE_ADDR="10.0.0.9").status_code == 429
    assert run(client, **bob).status_code == 200


def test_a_bad_token_is_401_and_spends_nothing(client, upstream, make_composite, settings):
    settings.AGGREGATION_RUN_RATE = "1/m"
    make_composite("combo", source("a", upstream.url("/json")))
    assert run(client, HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401
    assert run(client).status_code == 200


def test_an_ipv6_client_is_counted_by_its_64(client, upstream, make_composite, settings):
    settings.AGGREGATION_RUN_RATE = "1/m"
    make_composite("combo", source("a", upstream.url("/json")))
    assert run(client, REMOTE_ADDR="2001:db8:0:1::1").status_code == 200
    assert run(client, REMOTE_ADDR="2001:db8:0:1:ffff::2").status_code == 429
    assert run(client, REMOTE_ADDR="2001:db8:0:2::1").status_code == 200


@pytest.mark.parametrize(("rate", "enabled"), [(None, True), ("1/m", False)])
def test_without_a_rate_or_with_rate_limits_off_runs_are_not_limited(
    client, upstream, make_composite, settings, rate, enabled
):
    settings.AGGREGATION_RUN_RATE = rate
    settings.RATELIMIT_ENABLE = enabled
    make_composite("combo", source("a", upstream.url("/json")))
    assert {run(client).status_code for _ in range(3)} == {200}


def test_with_redis_unreachable_the_run_limit_lapses(
    client, upstream, make_composite, settings, redis_down
):
    settings.AGGREGATION_RUN_RATE = "1/m"
    make_composite("combo", source("a", upstream.url("/json")))
    assert [run(client).status_code for _ in range(2)] == [200, 200]


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_change_committed_while_a_run_reads_the_definition_is_not_hidden_by_its_copy(
    client, upstream, make_composite, admin_headers
):
    # A run that read the definition just before a change committed caches what it read just
    # after the change dropped the cached copy: without a check, that old copy (anyone may run
    # it) would be served for the cache's 60 s, as if the change had never been made.
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.test import Client

    make_composite("combo", source("a", upstream.url("/json")))  # auth: none
    read, release = threading.Event(), threading.Event()

    def pause_once_the_sources_are_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if '"aggregation_source"' in sql and not read.is_set():
            read.set()  # the definition is read, and not cached yet
            release.wait(10)
        return result

    def run_reading_before_the_change():
        try:
            with connections["aggregation"].execute_wrapper(pause_once_the_sources_are_read):
                return run(Client())
        finally:
            connections.close_all()  # this thread's connections only

    with ThreadPoolExecutor(max_workers=1) as pool:
        earlier = pool.submit(run_reading_before_the_change)
        assert read.wait(10), "the run never read the definition"
        changed = client.patch(
            "/api/v1/aggregation/composites/combo",
            {"auth": "required"},
            content_type="application/json",
            **admin_headers,
        )
        assert changed.status_code == 200, changed.content
        release.set()
        assert earlier.result().status_code == 200  # it ran the composite as it began
    assert run(client).status_code == 401


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_concurrent_runs_of_one_composite_each_answer_in_full_and_are_each_recorded(
    upstream, make_composite
):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.test import Client

    # The `slow` source answers once every run's call has reached it: runs that waited for each
    # other would never gather, and each would fail on that required source's timeout.
    runs = 6
    make_composite(
        "combo",
        source("slow", upstream.url(f"/gather?group=runs&parties={runs}&ms=5000&name=slow")),
        source("echo", upstream.url("/echo/{n}")),
        source("broken", upstream.url("/json?status=503"), required=False),
        timeout_ms=10_000,
    )
    together = threading.Barrier(runs)

    def one_run(n):
        try:
            together.wait(10)
            return run(Client(), query=f"?n={n}")
        finally:
            connections.close_all()  # this thread's connections only

    with ThreadPoolExecutor(max_workers=runs) as pool:
        answers = list(pool.map(one_run, range(runs)))
    assert [answer.status_code for answer in answers] == [200] * runs, answers[0].content
    for n, answer in enumerate(answers):  # each its own answer, none mixed with another's
        body = answer.json()
        assert body["data"]["echo"]["path"] == f"/echo/{n}"
        assert body["data"]["slow"]["name"] == "slow"
        assert body["errors"]["broken"]["code"] == "source_http_error"
        assert body["meta"]["partial"] is True
    rows = RunRow.objects.using("aggregation").all()
    assert len({row.id for row in rows}) == runs
    assert {row.status for row in rows} == {"partial"}


# A deferred trigger makes a change's COMMIT wait for an advisory lock the test holds: the
# change is written (and its cached copy already retired) but not committed until released.
HOLD_COMMITS = """
    CREATE FUNCTION test_hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER test_hold_commit AFTER UPDATE ON aggregation_composite
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_hold_commit();
"""
LET_COMMITS_GO = """
    DROP TRIGGER IF EXISTS test_hold_commit ON aggregation_composite;
    DROP FUNCTION IF EXISTS test_hold_commit();
"""


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_run_reading_a_change_not_yet_committed_does_not_hide_it_once_it_is(
    client, upstream, make_composite, admin_headers
):
    # A PATCH retires the cached copy as it writes, then commits: a run in between reads the
    # old row and caches it under the new stamp. The commit must retire that copy too.
    from django.db import connections
    from django.test import Client

    from tests.integration.races import in_thread, lock_waiters, poll

    make_composite("combo", source("a", upstream.url("/json")))  # auth: none
    with connections["aggregation"].cursor() as cursor:
        cursor.execute(HOLD_COMMITS)
        cursor.execute("SELECT pg_advisory_lock(4242)")
    try:
        thread, patched = in_thread(
            lambda: Client().patch(
                "/api/v1/aggregation/composites/combo",
                {"auth": "required"},
                content_type="application/json",
                **admin_headers,
            )
        )
        with connections["aggregation"].cursor() as cursor:
            poll(lambda: lock_waiters(cursor) >= 1, "the change never waited to commit")
        assert run(client).status_code == 200  # the old definition, read and cached
    finally:
        with connections["aggregation"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(4242)")
        thread.join(10)
        with connections["aggregation"].cursor() as cursor:
            cursor.execute(LET_COMMITS_GO)
    assert patched[0].status_code == 200
    assert run(client).status_code == 401
