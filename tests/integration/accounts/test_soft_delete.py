"""A soft delete (status `deleted`) stands for removal: the address is free again, as after
Keycloak's delete, while the deleted account keeps showing admins the address it had."""

import importlib

import pytest
from django.apps import apps
from django.db import connections

from apps.accounts.models import User
from tests.factories.accounts import PASSWORD, UserFactory
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])
released = importlib.import_module("apps.accounts.migrations.0007_user_deleted_email")


def _delete(api_client, admin_user, user_id):
    token = login(api_client, admin_user.email)["access_token"]
    response = api_client.patch(f"/api/v1/users/{user_id}", {"status": "deleted"}, **bearer(token))
    assert response.status_code == 200, response.content
    return token


def test_the_address_of_a_deleted_account_can_register_again(api_client, admin_user, alice):
    token = _delete(api_client, admin_user, alice.id)
    again = api_client.post(
        "/api/v1/auth/register",
        {"email": "ALICE@example.com", "password": "a-new-start-77", "full_name": "Alice"},
    )
    assert again.status_code == 201, again.content
    assert again.json()["id"] != str(alice.id)
    User.objects.filter(pk=again.json()["id"]).update(email_verified=True)
    assert (
        login(api_client, "alice@example.com", "a-new-start-77")["user"]["id"] == again.json()["id"]
    )
    # The deleted account is still what it was, to admins: its address, its status.
    gone = api_client.get(f"/api/v1/users/{alice.id}", **bearer(token)).json()
    assert (gone["email"], gone["status"]) == ("alice@example.com", "deleted")
    found = api_client.get("/api/v1/users?email=alice@", **bearer(token)).json()
    assert {(user["id"], user["status"]) for user in found["results"]} == {
        (str(alice.id), "deleted"),
        (again.json()["id"], "active"),
    }


def test_a_deleted_accounts_password_signs_nobody_in(api_client, admin_user, alice):
    _delete(api_client, admin_user, alice.id)
    refused = api_client.post(
        "/api/v1/auth/login", {"email": "alice@example.com", "password": PASSWORD}
    )
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")


def test_an_account_deleted_before_the_rule_releases_its_address():
    old = UserFactory(email="old@example.com", status="deleted")
    with connections["default"].schema_editor() as editor:
        released.release_deleted_addresses(apps, editor)
    old.refresh_from_db()
    assert (old.deleted_email, old.email) == ("old@example.com", f"{old.pk}@deleted.invalid")
