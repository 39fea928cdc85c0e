"""Admin REST API of composites: /api/v1/aggregation/composites[/{name}]."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.db import connections, transaction
from rest_framework.test import APIClient

from apps.aggregation.models import CompositeRow
from apps.aggregation.repositories import DjangoCompositeRepository
from core.domain.aggregation.composite import Composite, Source
from tests.factories.aggregation import CompositeFactory
from tests.integration.aggregation.conftest import DATABASES
from tests.integration.races import lock_waiters, lose_to_a_vanishing_winner, poll

pytestmark = pytest.mark.django_db(databases=DATABASES)
# Races need requests on their own connections, so these tests commit (and are flushed after).
racing = pytest.mark.django_db(databases=DATABASES, transaction=True)

URL = "/api/v1/aggregation/composites"
DB = "aggregation"
# Readers pass a SHARE lock; writers (INSERT, UPDATE) wait for it.
WRITES_WAIT = "LOCK TABLE aggregation_composite IN SHARE MODE"
# Whoever locks the composite row next (replace, delete) waits for it.
DASH_LOCKED = "SELECT 1 FROM aggregation_composite WHERE name = 'dash' FOR UPDATE"


def definition(**changes):
    body = {
        "name": "dash",
        "description": "Dashboard",
        "auth": "none",
        "cache_ttl_seconds": 10,
        "timeout_ms": 800,
        "sources": [
            {"key": "user", "url": "http://users.internal/users/{id}", "forward_auth": True},
            {
                "key": "orders",
                "url": "http://orders.internal/orders?user={id}",
                "required": False,
                "timeout_ms": 300,
                "fields": ["items", "total"],
                "rename": {"items": "orders"},
            },
        ],
    }
    body.update(changes)
    return body


@pytest.fixture
def created(api_client, admin_headers):
    response = api_client.post(URL, definition(), format="json", **admin_headers)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_answers_the_stored_composite_with_defaults(created):
    assert created["name"] == "dash"
    user, orders = created["sources"]
    assert user == {
        "key": "user",
        "url": "http://users.internal/users/{id}",
        "method": "GET",
        "timeout_ms": 800,
        "required": True,
        "forward_auth": True,
        "fields": None,
        "rename": {},
    }
    assert orders["fields"] == ["items", "total"]
    assert orders["rename"] == {"items": "orders"}


def test_list_read_and_delete(api_client, admin_headers, created):
    listing = api_client.get(URL, **admin_headers).json()
    assert listing["count"] == 1
    assert listing["results"][0]["name"] == "dash"
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created
    assert api_client.delete(f"{URL}/dash", **admin_headers).status_code == 204
    missing = api_client.get(f"{URL}/dash", **admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "composite_not_found"
    assert api_client.delete(f"{URL}/dash", **admin_headers).status_code == 404


def test_duplicate_name_is_409(api_client, admin_headers, created):
    response = api_client.post(URL, definition(), format="json", **admin_headers)
    assert response.status_code == 409
    assert response.json()["code"] == "composite_exists"


def test_patch_changes_only_what_is_given(api_client, admin_headers, created):
    response = api_client.patch(
        f"{URL}/dash", {"timeout_ms": 1500, "auth": "required"}, format="json", **admin_headers
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["timeout_ms"], body["auth"], body["description"]) == (
        1500,
        "required",
        "Dashboard",
    )
    assert body["sources"] == created["sources"]


def test_patch_sources_replaces_the_list(api_client, admin_headers, created):
    response = api_client.patch(
        f"{URL}/dash",
        {"sources": [{"key": "only", "url": "https://x.internal/"}]},
        format="json",
        **admin_headers,
    )
    assert [s["key"] for s in response.json()["sources"]] == ["only"]
    assert response.json()["sources"][0]["timeout_ms"] == 800


def test_patch_rename_and_conflicts(api_client, admin_headers, created):
    api_client.post(URL, definition(name="other"), format="json", **admin_headers)
    conflict = api_client.patch(f"{URL}/dash", {"name": "other"}, format="json", **admin_headers)
    assert conflict.status_code == 409
    renamed = api_client.patch(f"{URL}/dash", {"name": "dash2"}, format="json", **admin_headers)
    assert renamed.json()["name"] == "dash2"
    assert api_client.get(f"{URL}/dash2", **admin_headers).status_code == 200
    assert (
        api_client.patch(
            f"{URL}/nope", {"timeout_ms": 5}, format="json", **admin_headers
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"auth": "maybe"}, "auth"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"cache_ttl_seconds": -1}, "cache_ttl_seconds"),
        ({"sources": []}, "sources"),
        ({"sources": [{"key": "a", "url": "http://{host}/x"}]}, "sources"),
        (
            {"sources": [{"key": "a", "url": "http://h/"}, {"key": "a", "url": "http://h/"}]},
            "sources",
        ),
        ({"sources": [{"key": "a", "url": "http://h/", "method": "POST"}]}, "sources"),
        ({"sources": [{"key": "a", "url": "http://h/", "fields": ["x", "x"]}]}, "sources"),
        (
            {"sources": [{"key": "a", "url": "http://h/", "rename": {"a": "x", "b": "x"}}]},
            "sources",
        ),
        ({"sources": [{"key": "1", "url": "ftp://h/"}]}, "sources"),
        ({"sources": [{"key": "a", "url": "http://[::1/"}]}, "sources"),
        ({"sources": [{"key": "a", "url": "http://h/x/%{x}"}]}, "sources"),  # {x} = 2e: %2e
        ({"sources": [{"key": "a", "url": "http://h/h%00"}]}, "sources"),  # a C upstream ends it
    ],
)
def test_invalid_definitions_are_400_with_field_errors(api_client, admin_headers, changes, field):
    response = api_client.post(URL, definition(**changes), format="json", **admin_headers)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert any(name == field or name.startswith(f"{field}.") for name in body["errors"])
    assert all(isinstance(messages, list) for messages in body["errors"].values())


@pytest.mark.parametrize("method", ["post", "patch"])
def test_too_many_sources_are_refused_before_any_is_validated(
    api_client, admin_headers, created, method
):
    # Invalid items past the limit: had they been validated, their own errors would show.
    sources = [{"key": f"k{i}", "url": "ftp://not-http/"} for i in range(2_000)]
    body = definition(name="many", sources=sources) if method == "post" else {"sources": sources}
    path = URL if method == "post" else f"{URL}/dash"
    response = getattr(api_client, method)(path, body, format="json", **admin_headers)
    assert response.status_code == 400
    assert response.json()["errors"] == {"sources": ["Give between 1 and 20 sources."]}
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created


@pytest.mark.parametrize(
    "change",
    [
        {"sources": [{"key": "a"}]},
        {"sources": ["not an object"]},
        {"sources": [{"key": "a", "url": "http://h/"}, {"key": "a", "url": "http://h/"}]},
        {"name": "UPPER"},
    ],
)
def test_invalid_patches_are_400_and_change_nothing(api_client, admin_headers, created, change):
    response = api_client.patch(f"{URL}/dash", change, format="json", **admin_headers)
    assert response.status_code == 400
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created


@pytest.mark.parametrize(
    ("method", "body", "errors"),
    [
        ("post", definition(name="typo", timout_ms=100), {"timout_ms": ["Unknown field."]}),
        ("patch", {"timout_ms": 100}, {"timout_ms": ["Unknown field."]}),
        (
            "patch",
            {"sources": [{"key": "a", "url": "http://h/", "forward_auht": True}]},
            {"sources.0.forward_auht": ["Unknown field."]},
        ),
        (
            "post",
            definition(name="typo", sources=[{"key": "a", "url": "http://h/", "optional": 1}]),
            {"sources.0.optional": ["Unknown field."]},
        ),
    ],
    ids=["create", "patch", "patched-source", "created-source"],
)
def test_an_unknown_field_is_a_400_not_ignored(
    api_client, admin_headers, created, method, body, errors
):
    # A mistyped field used to be dropped: 200/201, and the change the caller meant not made.
    path = URL if method == "post" else f"{URL}/dash"
    response = getattr(api_client, method)(path, body, format="json", **admin_headers)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"] == errors
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created
    assert api_client.get(f"{URL}/typo", **admin_headers).status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"timeout_ms": "800"},
        {"timeout_ms": "\u0663\u0660\u0660"},
        {"cache_ttl_seconds": True},
        {"sources": [{"key": "a", "url": "http://h/", "required": "no"}]},
        {"sources": [{"key": "a", "url": "http://h/", "timeout_ms": 100.0}]},
        {"description": 7},
        {"sources": [{"key": 1, "url": "http://h/"}]},
        {"sources": [{"key": "a", "url": "http://h/", "fields": [1]}]},
        {"sources": [{"key": "a", "url": "http://h/", "rename": {"x": 2}}]},
    ],
)
def test_numbers_and_booleans_are_json_ones(api_client, admin_headers, created, change):
    # DRF coerced text, floats and booleans: "no" was false, "٣٠٠" 300; and numbers to text.
    response = api_client.patch(f"{URL}/dash", change, format="json", **admin_headers)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created


# JSON escapes of lone surrogates parse into Python strings that PostgreSQL refuses in a JSON
# column. DRF's own fields refuse them; a `rename` key is no field of its own.
SURROGATE_RENAME = '[{"key": "a", "url": "http://h/", "rename": {"\\ud800": "x"}}]'


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_lone_surrogate_in_a_rename_is_a_field_error_and_stores_nothing(
    client, admin_headers, created, method
):
    if method == "post":
        path, raw = URL, f'{{"name": "other", "sources": {SURROGATE_RENAME}}}'
    else:
        path, raw = f"{URL}/dash", f'{{"sources": {SURROGATE_RENAME}}}'
    response = getattr(client, method)(path, raw, content_type="application/json", **admin_headers)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["errors"]) == ["sources.0.rename"]
    assert client.get(f"{URL}/dash", **admin_headers).json() == created
    assert list(CompositeRow.objects.using(DB).values_list("name", flat=True)) == ["dash"]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_rename_onto_a_kept_field_is_a_field_error(api_client, admin_headers, created, method):
    # Both `total` and `items` are kept, and `items` is renamed to `total`: one of the two
    # values would vanish from every answer, without a word.
    source = {
        "key": "orders",
        "url": "http://orders.internal/",
        "fields": ["items", "total"],
        "rename": {"items": "total"},
    }
    if method == "post":
        response = api_client.post(
            URL, definition(name="other", sources=[source]), format="json", **admin_headers
        )
    else:
        response = api_client.patch(
            f"{URL}/dash", {"sources": [source]}, format="json", **admin_headers
        )
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {
        "sources.0.rename": [
            "'items' would be renamed to 'total', which `fields` keeps as it is: rename that "
            "one too, or leave it out of `fields`."
        ]
    }
    assert list(CompositeRow.objects.using(DB).values_list("name", flat=True)) == ["dash"]
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created


def test_malformed_json_is_400(api_client, admin_headers):
    response = api_client.post(URL, "{nope", content_type="application/json", **admin_headers)
    assert response.status_code == 400


def test_a_name_that_is_no_json_string_is_refused(api_client, admin_headers):
    response = api_client.post(URL, definition(name=123), format="json", **admin_headers)
    assert (response.status_code, list(response.json()["errors"])) == (400, ["name"])
    assert not CompositeRow.objects.using(DB).exists()


def test_admin_role_is_required(api_client, user_headers):
    assert api_client.get(URL).status_code == 401
    assert api_client.get(URL, **user_headers).status_code == 403
    assert api_client.post(URL, definition(), format="json", **user_headers).status_code == 403
    assert api_client.delete(f"{URL}/dash", **user_headers).status_code == 403


# --- Races: other requests on their own threads and connections, ordered by PostgreSQL locks
# the test holds, so each interleaving is reached every time (no sleeps, no mocks).


@contextmanager
def holding(lock_sql: str) -> Iterator[None]:
    """Run `lock_sql` in a transaction of the test's own connection; commit on leaving."""
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        cursor.execute(lock_sql)
        yield


def wait_for_lock_waiters(count: int) -> None:
    """Return once `count` other backends of this database wait for a lock."""
    with connections[DB].cursor() as cursor:
        poll(lambda: lock_waiters(cursor) >= count, f"{count} requests never reached the lock")


@pytest.fixture
def send(admin_headers):
    """`send(method, path, body)` runs one admin request on a thread of its own: a Future."""
    pool = ThreadPoolExecutor(max_workers=4)

    def request(method, path, body):
        try:
            return getattr(APIClient(), method)(path, body, format="json", **admin_headers)
        finally:
            connections.close_all()  # this thread's connections only

    def submit(method: str, path: str, body=None) -> Future:
        return pool.submit(request, method, path, body)

    yield submit
    pool.shutdown(wait=True)


@racing
def test_two_concurrent_creates_of_one_name_give_201_and_409(send):
    # Both requests find the name free, then both insert: the unique index decides.
    with holding(WRITES_WAIT):
        first, second = send("post", URL, definition()), send("post", URL, definition())
        wait_for_lock_waiters(2)  # both checked the name and now wait to insert
    responses = sorted((first.result(), second.result()), key=lambda r: r.status_code)
    assert [r.status_code for r in responses] == [201, 409]
    assert responses[1].json()["code"] == "composite_exists"
    assert CompositeRow.objects.using(DB).filter(name="dash").count() == 1


@racing
def test_a_create_that_lost_to_a_composite_deleted_at_once_is_still_409(admin_headers):
    # The unique index refused the create for the winner, which was then deleted before the
    # create could look: it still lost the race (it used to re-raise: a 500).
    repository = DjangoCompositeRepository()
    answers = lose_to_a_vanishing_winner(
        DB,
        "aggregation_composite",
        win=lambda: repository.add(Composite("dash", (Source("a", "http://h/"),))),
        race=lambda: APIClient(raise_request_exception=False).post(
            URL, definition(), format="json", **admin_headers
        ),
        vanish=lambda: repository.delete("dash"),
    )
    [created] = answers
    assert created.status_code == 409, created.content
    assert created.json()["code"] == "composite_exists"
    assert not CompositeRow.objects.using(DB).exists()


@racing
def test_a_rename_racing_a_create_of_that_name_is_409(send, created):
    with holding(WRITES_WAIT):
        patch = send("patch", f"{URL}/dash", {"name": "taken"})
        wait_for_lock_waiters(1)  # it found "taken" free and waits to write
        DjangoCompositeRepository().add(Composite("taken", (Source("a", "http://h/"),)))
    assert patch.result().status_code == 409
    assert patch.result().json()["code"] == "composite_exists"
    assert set(CompositeRow.objects.using(DB).values_list("name", flat=True)) == {"dash", "taken"}


@racing
def test_a_patch_that_loses_to_a_delete_is_404_and_recreates_nothing(send, created):
    with holding(DASH_LOCKED):
        delete = send("delete", f"{URL}/dash")
        wait_for_lock_waiters(1)
        patch = send("patch", f"{URL}/dash", {"timeout_ms": 900})
        wait_for_lock_waiters(2)  # the PATCH read the composite; the DELETE is ahead of it
    assert delete.result().status_code == 204
    assert patch.result().status_code == 404
    assert patch.result().json()["code"] == "composite_not_found"
    assert not CompositeRow.objects.using(DB).exists()


@racing
def test_a_patch_that_wins_against_a_delete_is_applied_then_deleted(send, created):
    # Both lock the composite before its sources, so they queue instead of deadlocking.
    with holding(DASH_LOCKED):
        patch = send("patch", f"{URL}/dash", {"timeout_ms": 900})
        wait_for_lock_waiters(1)
        delete = send("delete", f"{URL}/dash")
        wait_for_lock_waiters(2)
    assert patch.result().status_code == 200
    assert delete.result().status_code == 204
    assert not CompositeRow.objects.using(DB).exists()


@racing
def test_two_concurrent_patches_of_different_fields_both_hold(send, created, admin_headers):
    # One after the other, each would change its own field and keep the other's: each must
    # merge into the composite as the other left it, not as both found it.
    with holding(DASH_LOCKED):
        first = send("patch", f"{URL}/dash", {"description": "changed"})
        wait_for_lock_waiters(1)
        second = send("patch", f"{URL}/dash", {"timeout_ms": 900})
        wait_for_lock_waiters(2)
    assert first.result().status_code == second.result().status_code == 200
    stored = APIClient().get(f"{URL}/dash", **admin_headers).json()
    assert (stored["description"], stored["timeout_ms"]) == ("changed", 900)
    assert stored["sources"] == created["sources"]


def test_patch_of_a_stored_composite_that_breaks_a_rule_is_the_documented_400(
    api_client, admin_headers
):
    # Written past the API and the admin (or before a rule existed): no sources at all.
    CompositeFactory(name="legacy", timeout_ms=800, source=None)
    response = api_client.patch(
        f"{URL}/legacy", {"description": "x"}, format="json", **admin_headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_composite"
    schema = api_client.get("/api/schema/?format=json").json()
    patch = schema["paths"][f"{URL}/{{name}}"]["patch"]
    assert "`invalid_composite`" in schema_description(schema, patch["responses"]["400"])
    # Giving what fixes it is accepted.
    fixed = api_client.patch(
        f"{URL}/legacy",
        {"sources": [{"key": "a", "url": "http://h/"}]},
        format="json",
        **admin_headers,
    )
    assert fixed.status_code == 200, fixed.content


def schema_description(schema, node):
    while "$ref" in node:
        target = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node["description"]


# PostgreSQL refuses every source row as a server shutting down would (SQLSTATE 57P01, an
# OperationalError): the composite's own row is written, then its sources fail. The test
# commits, as the server does, and drops the trigger after.
SOURCES_FAIL = """
    CREATE FUNCTION test_sources_fail() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'terminating connection' USING ERRCODE = 'admin_shutdown'; END $$;
    CREATE TRIGGER test_sources_fail BEFORE INSERT ON aggregation_source
        FOR EACH ROW EXECUTE FUNCTION test_sources_fail();
"""
SOURCES_WORK = """
    DROP TRIGGER IF EXISTS test_sources_fail ON aggregation_source;
    DROP FUNCTION IF EXISTS test_sources_fail();
"""


@racing
def test_a_database_failing_mid_write_is_503_and_leaves_nothing_half_written(
    api_client, admin_headers, created
):
    with connections[DB].cursor() as cursor:
        cursor.execute(SOURCES_FAIL)
    try:
        new = api_client.post(URL, definition(name="new"), format="json", **admin_headers)
        changed = api_client.patch(
            f"{URL}/dash",
            {"description": "changed", "sources": [{"key": "only", "url": "http://h/"}]},
            format="json",
            **admin_headers,
        )
    finally:
        with connections[DB].cursor() as cursor:
            cursor.execute(SOURCES_WORK)
    for response in (new, changed):
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "service_unavailable"
        assert response["Retry-After"] == "5"
    assert list(CompositeRow.objects.using(DB).values_list("name", flat=True)) == ["dash"]
    assert api_client.get(f"{URL}/dash", **admin_headers).json() == created
    assert [s.key for s in CompositeRow.objects.using(DB).get(name="dash").sources.all()] == [
        "user",
        "orders",
    ]
