"""Django admin pages of composites and runs."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.aggregation.models import CompositeRow, RunRow, SourceRow
from tests.integration.aggregation.conftest import DATABASES

pytestmark = pytest.mark.django_db(databases=DATABASES)


@pytest.fixture
def staff_client(client):
    user_model = get_user_model()
    user = user_model.objects.create_superuser(
        **{user_model.USERNAME_FIELD: "root@example.com"}, password="pw-long-enough-123"
    )
    client.force_login(user)
    return client


def inline_form(name, url="http://h/x", key="a"):
    return {
        "name": name,
        "description": "",
        "auth": "none",
        "cache_ttl_seconds": "0",
        "timeout_ms": "1000",
        "sources-TOTAL_FORMS": "1",
        "sources-INITIAL_FORMS": "0",
        "sources-MIN_NUM_FORMS": "0",
        "sources-MAX_NUM_FORMS": "1000",
        "sources-0-position": "0",
        "sources-0-key": key,
        "sources-0-url": url,
        "sources-0-method": "GET",
        "sources-0-timeout_ms": "500",
        "sources-0-required": "on",
        "sources-0-fields": "null",
        "sources-0-rename": "{}",
    }


def test_composites_are_created_with_sources_in_the_admin(staff_client):
    response = staff_client.post("/admin/aggregation/compositerow/add/", inline_form("dash"))
    assert response.status_code == 302, response.content.decode()[:3000]
    row = CompositeRow.objects.using("aggregation").get(name="dash")
    assert [s.key for s in row.sources.all()] == ["a"]
    listing = staff_client.get("/admin/aggregation/compositerow/")
    assert b"dash" in listing.content


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Bad Name"}, b"lowercase"),
        ({"sources-0-url": "http://{host}/"}, b"only in the path or the query"),
        ({"sources-0-key": "1x"}, b"starting with a letter"),
        ({"sources-0-fields": '"text"'}, b"Give a list of field names"),
        ({"sources-0-fields": '["a", "a"]'}, b"List each field once"),
        ({"sources-0-rename": "[1]"}, b"Give an object"),
    ],
)
def test_the_admin_applies_the_domain_rules(staff_client, changes, message):
    form = inline_form("dash") | changes
    response = staff_client.post("/admin/aggregation/compositerow/add/", form)
    assert response.status_code == 200
    assert message in response.content
    assert not CompositeRow.objects.using("aggregation").exists()


def test_runs_are_listed_read_only(staff_client):
    from datetime import UTC, datetime

    run = RunRow.objects.using("aggregation").create(
        composite="dash", status="partial", took_ms=3.0, started_at=datetime.now(UTC)
    )
    assert b"dash" in staff_client.get("/admin/aggregation/runrow/").content
    assert staff_client.get("/admin/aggregation/runrow/add/").status_code == 403
    assert staff_client.get(f"/admin/aggregation/runrow/{run.pk}/change/").status_code == 200
    assert str(run).startswith("dash partial")
    assert str(SourceRow(key="k")) == "k"
