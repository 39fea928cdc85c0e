"""GET /api/v1/aggregation/runs: the admin's view of the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.aggregation.repositories import DjangoRunHistory
from core.domain.aggregation.runs import RunRecord, RunStatus, SourceSummary
from tests.integration.aggregation.conftest import DATABASES

pytestmark = pytest.mark.django_db(databases=DATABASES)

URL = "/api/v1/aggregation/runs"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def record(composite, status, minutes_ago, user_id=None, run_id=None):
    DjangoRunHistory().record(
        RunRecord(
            id=f"00000000-0000-0000-0000-{minutes_ago if run_id is None else run_id:012d}",
            composite=composite,
            status=status,
            took_ms=12.5,
            user_id=user_id,
            started_at=NOW - timedelta(minutes=minutes_ago),
            sources=(
                SourceSummary("a", True, 12.0, False),
                SourceSummary("b", False, 3.0, True, "x"),
            ),
        )
    )


@pytest.fixture
def runs():
    record("dash", RunStatus.COMPLETE, 1, user_id="alice")
    record("dash", RunStatus.FAILED, 2)
    record("other", RunStatus.PARTIAL, 3)


def test_runs_are_listed_newest_first(api_client, admin_headers, runs):
    body = api_client.get(URL, **admin_headers).json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first == {
        "id": "00000000-0000-0000-0000-000000000001",
        "composite": "dash",
        "status": "complete",
        "took_ms": 12.5,
        "user_id": "alice",
        "started_at": "2026-03-01T11:59:00Z",
        "sources": [
            {"key": "a", "status": "ok", "took_ms": 12.0, "cached": False, "code": None},
            {"key": "b", "status": "failed", "took_ms": 3.0, "cached": True, "code": "x"},
        ],
    }
    assert body["results"][1]["user_id"] is None


def test_filters_and_pagination(api_client, admin_headers, runs):
    by_composite = api_client.get(URL, {"composite": "dash"}, **admin_headers).json()
    assert [r["status"] for r in by_composite["results"]] == ["complete", "failed"]
    by_status = api_client.get(URL, {"status": "partial"}, **admin_headers).json()
    assert [r["composite"] for r in by_status["results"]] == ["other"]
    both = api_client.get(URL, {"composite": "dash", "status": "failed"}, **admin_headers).json()
    assert [(r["composite"], r["status"]) for r in both["results"]] == [("dash", "failed")]
    assert api_client.get(URL, {"composite": "gone"}, **admin_headers).json()["count"] == 0
    page = api_client.get(URL, {"page_size": 2, "page": 2}, **admin_headers).json()
    assert page["count"] == 3
    assert len(page["results"]) == 1
    assert page["previous"] is not None


def test_unknown_status_filter_is_400(api_client, admin_headers):
    response = api_client.get(URL, {"status": "weird"}, **admin_headers)
    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_only_admins_see_runs(api_client, user_headers):
    assert api_client.get(URL).status_code == 401
    assert api_client.get(URL, **user_headers).status_code == 403


def test_runs_that_started_at_the_same_moment_page_in_one_stable_order(api_client, admin_headers):
    # Inserted out of id order: without a tie-break the database's own order would show.
    for n in (3, 1, 5, 2, 4):
        record("dash", RunStatus.COMPLETE, 0, run_id=n)
    pages = [
        api_client.get(URL, {"page_size": 2, "page": page}, **admin_headers).json()
        for page in (1, 2, 3)
    ]
    listed = [run["id"][-1] for page in pages for run in page["results"]]
    assert listed == ["5", "4", "3", "2", "1"]
    assert [page["count"] for page in pages] == [5, 5, 5]
    assert pages[2]["next"] is None
