"""Django admin pages of composites and runs."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from apps.aggregation.models import CompositeRow, SourceRow
from apps.aggregation.repositories import CachedCompositeRepository
from tests.factories.aggregation import CompositeFactory, RunFactory
from tests.integration.aggregation.conftest import DATABASES

pytestmark = pytest.mark.django_db(databases=DATABASES)
ADD = "/admin/aggregation/compositerow/add/"


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
        # JSON escapes of lone surrogates parse, but PostgreSQL refuses them in a JSON column.
        ({"sources-0-fields": '["\\ud800"]'}, b"without control characters"),
        ({"sources-0-rename": '{"\\ud800": "x"}'}, b"without control characters"),
        (
            {"sources-0-fields": '["a", "b"]', "sources-0-rename": '{"a": "b"}'},
            b"which `fields` keeps as it is",
        ),
    ],
)
def test_the_admin_applies_the_domain_rules(staff_client, changes, message):
    form = inline_form("dash") | changes
    response = staff_client.post("/admin/aggregation/compositerow/add/", form)
    assert response.status_code == 200
    assert message in response.content
    assert not CompositeRow.objects.using("aggregation").exists()


NOT_ASCII_DIGITS = ["\uff11\uff12", "\u0661\u0662", "1_2", "12.0"]  # full-width, Arabic-Indic


@pytest.mark.parametrize("digits", NOT_ASCII_DIGITS)
@pytest.mark.parametrize(
    "field", ["timeout_ms", "cache_ttl_seconds", "sources-0-position", "sources-0-timeout_ms"]
)
def test_the_admin_refuses_numbers_the_rest_api_refuses(staff_client, field, digits):
    response = staff_client.post(ADD, inline_form("dash") | {field: digits})
    assert response.status_code == 200
    assert b"Enter a whole number." in response.content
    assert not CompositeRow.objects.using("aggregation").exists()


@pytest.mark.parametrize("field", ["timeout_ms", "sources-0-timeout_ms"])
def test_the_admin_change_form_refuses_numbers_the_rest_api_refuses(staff_client, field):
    row = CompositeFactory(name="dash", timeout_ms=2000)
    form = change_form(row) | {field: "\uff11\uff12\uff10\uff10"}
    response = staff_client.post(f"{CHANGELIST}{row.pk}/change/", form)
    assert response.status_code == 200
    assert b"Enter a whole number." in response.content
    row.refresh_from_db()
    assert (row.timeout_ms, row.sources.get().timeout_ms) == (2000, 500)


def sources_form(name, count):
    """A composite form with `count` inline sources `s0`, `s1`, ..."""
    form = {key: value for key, value in inline_form(name).items() if not key.startswith("sources")}
    form |= {
        "sources-TOTAL_FORMS": str(count),
        "sources-INITIAL_FORMS": "0",
        "sources-MIN_NUM_FORMS": "0",
        "sources-MAX_NUM_FORMS": "1000",
    }
    for index in range(count):
        form |= {
            f"sources-{index}-position": str(index),
            f"sources-{index}-key": f"s{index}",
            f"sources-{index}-url": "http://h/x",
            f"sources-{index}-method": "GET",
            f"sources-{index}-timeout_ms": "500",
            f"sources-{index}-fields": "null",
            f"sources-{index}-rename": "{}",
        }
    return form


@pytest.mark.parametrize("count", [0, 21])
def test_the_admin_refuses_a_composite_with_too_few_or_too_many_sources(staff_client, count):
    response = staff_client.post(ADD, sources_form("dash", count))
    assert response.status_code == 200
    assert b"Give between 1 and 20 sources." in response.content
    assert not CompositeRow.objects.using("aggregation").exists()


@pytest.mark.parametrize("count", ["21", "2000", str(10**20)])
def test_the_admin_builds_no_more_source_forms_than_a_composite_may_have(staff_client, count):
    # Django's formsets build up to 2 000 forms for a forged TOTAL_FORMS (42 s of one worker).
    form = inline_form("dash") | {"sources-TOTAL_FORMS": count}
    response = staff_client.post(ADD, form)
    assert response.status_code == 200
    assert b"Give between 1 and 20 sources." in response.content
    (inline,) = response.context["inline_admin_formsets"]
    assert len(inline.formset.forms) <= 20
    assert not CompositeRow.objects.using("aggregation").exists()


def test_the_admin_allows_twenty_sources(staff_client):
    response = staff_client.post("/admin/aggregation/compositerow/add/", sources_form("dash", 20))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert CompositeRow.objects.using("aggregation").get(name="dash").sources.count() == 20


def test_the_admin_refuses_removing_the_last_source(staff_client, admin_headers):
    row = CompositeFactory(name="dash")
    source = row.sources.get()
    form = inline_form("dash") | {
        "sources-INITIAL_FORMS": "1",
        "sources-0-id": str(source.pk),
        "sources-0-composite": str(row.pk),
        "sources-0-DELETE": "on",
    }
    response = staff_client.post(f"/admin/aggregation/compositerow/{row.pk}/change/", form)
    assert response.status_code == 200
    assert b"Give between 1 and 20 sources." in response.content
    assert row.sources.count() == 1
    # The stored composite stays one the API can change.
    patched = staff_client.patch(
        "/api/v1/aggregation/composites/dash",
        {"description": "still valid"},
        content_type="application/json",
        **admin_headers,
    )
    assert patched.status_code == 200, patched.content


@pytest.mark.parametrize("rename", ["", "null"])
def test_an_empty_rename_is_stored_as_an_empty_object(staff_client, rename):
    form = inline_form("dash") | {"sources-0-rename": rename}
    response = staff_client.post("/admin/aggregation/compositerow/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert SourceRow.objects.using("aggregation").get(key="a").rename == {}


def test_runs_are_listed_read_only(staff_client):
    run = RunFactory(composite="dash", status="partial")
    assert b"dash" in staff_client.get("/admin/aggregation/runrow/").content
    assert staff_client.get("/admin/aggregation/runrow/add/").status_code == 403
    assert staff_client.get(f"/admin/aggregation/runrow/{run.pk}/change/").status_code == 200
    assert str(run).startswith("dash partial")
    assert str(SourceRow(key="k")) == "k"


# The admin retires a composite's cached definition (what a run reads) once its transaction
# commits, so these tests commit theirs.
COMMITTED = pytest.mark.django_db(databases=DATABASES, transaction=True)
CHANGELIST = "/admin/aggregation/compositerow/"


def cached(name):
    """The definition a run would read now: the cached copy, while it is current."""
    return CachedCompositeRepository().get(name)


def stored_and_cached(name="dash"):
    """A composite as `inline_form(name)` posts it, with a 2 s timeout, read once (cached)."""
    row = CompositeFactory(name=name, timeout_ms=2000)
    assert cached(name).timeout_ms == 2000
    return row


def change_form(row, **changes):
    """The change form of `row` (one source), as it is stored unless `changes` say otherwise."""
    (stored,) = row.sources.all()
    return (
        inline_form(row.name)
        | {"timeout_ms": str(row.timeout_ms), "sources-INITIAL_FORMS": "1"}
        | {"sources-0-id": str(stored.pk), "sources-0-composite": str(row.pk)}
        | changes
    )


@COMMITTED
def test_an_admin_change_retires_the_cached_definition(staff_client):
    row = stored_and_cached()
    form = change_form(row, timeout_ms="1500")
    response = staff_client.post(f"{CHANGELIST}{row.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert cached("dash").timeout_ms == 1500


@COMMITTED
def test_an_admin_change_of_an_inline_source_only_retires_the_cached_definition(staff_client):
    row = stored_and_cached()
    form = change_form(row, **{"sources-0-url": "http://h/changed"})
    response = staff_client.post(f"{CHANGELIST}{row.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert cached("dash").sources[0].url == "http://h/changed"


@COMMITTED
def test_an_admin_rename_retires_the_old_names_cached_definition(staff_client):
    row = stored_and_cached()
    response = staff_client.post(f"{CHANGELIST}{row.pk}/change/", change_form(row, name="board"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert cached("dash") is None
    assert cached("board").name == "board"


@COMMITTED
def test_an_admin_delete_retires_the_cached_definition(staff_client):
    row = stored_and_cached()
    response = staff_client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert cached("dash") is None


@COMMITTED
def test_the_admins_bulk_delete_retires_every_cached_definition(staff_client):
    rows = [stored_and_cached(name) for name in ("dash", "board")]
    form = {"action": "delete_selected", "_selected_action": [row.pk for row in rows]}
    response = staff_client.post(CHANGELIST, form | {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not CompositeRow.objects.using("aggregation").exists()
    assert (cached("dash"), cached("board")) == (None, None)


@COMMITTED
def test_an_admin_add_retires_a_copy_cached_under_its_name(staff_client):
    stored_and_cached()
    # Deleted behind the cache's back (as a delete made while Redis was unreachable is): the
    # copy of the deleted composite is still current when the admin adds one of that name.
    with connections["aggregation"].cursor() as cursor:
        cursor.execute("DELETE FROM aggregation_source")
        cursor.execute("DELETE FROM aggregation_composite")
    assert cached("dash").timeout_ms == 2000
    response = staff_client.post(ADD, inline_form("dash"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert cached("dash").timeout_ms == 1000
