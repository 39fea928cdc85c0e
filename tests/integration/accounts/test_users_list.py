"""GET /api/v1/users."""

import pytest

from tests.factories.accounts import UserFactory
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def admin_token(api_client, admin_user):
    return login(api_client, "root@example.com")["access_token"]


def test_list_is_paginated_and_filtered(api_client, admin_token, alice, bob):
    UserFactory(email="sleepy@example.com", status="inactive")
    everyone = api_client.get("/api/v1/users", **bearer(admin_token)).json()
    assert everyone["count"] == 4
    page = api_client.get("/api/v1/users?page_size=2&page=2", **bearer(admin_token)).json()
    assert len(page["results"]) == 2
    assert page["previous"]
    assert page["next"] is None
    first = api_client.get("/api/v1/users?page_size=2", **bearer(admin_token)).json()
    assert "page=2" in first["next"]
    by_email = api_client.get("/api/v1/users?email=ALICE", **bearer(admin_token)).json()
    assert [u["email"] for u in by_email["results"]] == ["alice@example.com"]
    by_status = api_client.get("/api/v1/users?status=inactive", **bearer(admin_token)).json()
    assert [u["email"] for u in by_status["results"]] == ["sleepy@example.com"]
    admins = api_client.get("/api/v1/users?role=admin", **bearer(admin_token)).json()
    assert [u["email"] for u in admins["results"]] == ["root@example.com"]


def test_list_rejects_bad_filters(api_client, admin_token):
    response = api_client.get("/api/v1/users?status=sleeping", **bearer(admin_token))
    assert response.status_code == 400
    response = api_client.get("/api/v1/users?role=Not%20A%20Role", **bearer(admin_token))
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert list(response.json()["errors"]) == ["role"]


def test_list_needs_the_admin_role(api_client, alice):
    assert api_client.get("/api/v1/users").status_code == 401
    token = login(api_client, "alice@example.com")["access_token"]
    response = api_client.get("/api/v1/users", **bearer(token))
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_a_page_past_the_end_is_404_as_on_every_paginated_list(api_client, admin_token):
    past = api_client.get("/api/v1/users?page=9", **bearer(admin_token))
    assert (past.status_code, past.json()["code"]) == (404, "not_found")
    none_match = api_client.get("/api/v1/users?email=nobody", **bearer(admin_token))
    assert (none_match.status_code, none_match.json()["count"]) == (200, 0)


@pytest.mark.parametrize("page", ["9223372036854775807", "99999999999999999999999"])
def test_a_page_no_database_integer_holds_is_404_not_500(api_client, admin_token, page):
    past = api_client.get(f"/api/v1/users?page={page}", **bearer(admin_token))
    assert (past.status_code, past.json()["code"]) == (404, "not_found")


def test_a_page_size_over_the_largest_is_cut_to_it_as_on_other_lists(api_client, admin_token):
    from apps.accounts.models import User

    User.objects.bulk_create(
        User(email=f"p{n}@example.com", password="!", roles=["user"]) for n in range(201)
    )
    response = api_client.get("/api/v1/users?page_size=100000", **bearer(admin_token))
    assert response.status_code == 200
    assert len(response.json()["results"]) == 200
    assert response.json()["count"] == 202  # and the admin


def test_the_email_filter_is_normalised_as_addresses_are(api_client, admin_token, alice):
    fullwidth = "\uff21\uff2c\uff29\uff23\uff25"  # ALICE in fullwidth letters
    found = api_client.get(f"/api/v1/users?email={fullwidth}", **bearer(admin_token)).json()
    assert [u["email"] for u in found["results"]] == ["alice@example.com"]


def test_the_email_filter_finds_no_mailbox_for_an_address_folding_into_another(
    api_client, admin_token
):
    UserFactory(email="ss@example.com")
    found = api_client.get("/api/v1/users?email=ß@example.com", **bearer(admin_token)).json()
    assert (found["count"], found["results"]) == (0, [])


def test_the_email_filter_finds_an_internationalised_host_by_either_spelling(
    api_client, admin_token
):
    UserFactory(email="n1@xn--bcher-kva.example")
    for text in ("bücher.example", "xn--bcher-kva", "N1@Bücher.Example"):
        found = api_client.get(f"/api/v1/users?email={text}", **bearer(admin_token)).json()
        assert [u["email"] for u in found["results"]] == ["n1@xn--bcher-kva.example"], text


def test_the_email_filter_finds_both_spellings_of_a_host(api_client, admin_token):
    UserFactory(email="n1@xn--bcher-kva.example")
    UserFactory(email="josé@older.example")  # stored under earlier, looser rules
    for term, expected in (("bücher", "n1@xn--bcher-kva.example"), ("josé", "josé@older.example")):
        found = api_client.get(f"/api/v1/users?email={term}", **bearer(admin_token)).json()
        assert [u["email"] for u in found["results"]] == [expected]
