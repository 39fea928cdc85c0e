"""Data migrations of the accounts database."""

import importlib

import pytest
from django.apps import apps
from django.db import connections

from apps.accounts.models import User
from tests.factories.accounts import UserFactory
from tests.integration.accounts.conftest import login

pytestmark = pytest.mark.django_db(databases=["default"])
a_labels = importlib.import_module("apps.accounts.migrations.0003_email_hosts_in_a_labels")


def migrate_hosts_to_a_labels():
    with connections["default"].schema_editor() as editor:
        a_labels.email_hosts_to_a_labels(apps, editor)


def test_an_account_stored_with_an_internationalised_host_moves_to_a_labels(api_client):
    legacy = UserFactory(email="legacy@bücher.example")  # as register stored it before
    kept = UserFactory(email="josé@example.com")  # a non-ASCII local part has no other form
    migrate_hosts_to_a_labels()
    legacy.refresh_from_db()
    kept.refresh_from_db()
    assert (legacy.email, kept.email) == ("legacy@xn--bcher-kva.example", "josé@example.com")
    assert login(api_client, "legacy@bücher.example")["user"]["id"] == str(legacy.id)


def test_an_account_whose_a_label_spelling_is_taken_is_left_as_it_is_and_named(capsys):
    unicode_spelling = UserFactory(email="n1@bücher.example")
    UserFactory(email="n1@xn--bcher-kva.example")
    migrate_hosts_to_a_labels()
    assert str(unicode_spelling.pk) in capsys.readouterr().out
    unicode_spelling.refresh_from_db()
    assert unicode_spelling.email == "n1@bücher.example"
    assert User.objects.count() == 2


def test_a_session_written_without_its_revocation_reason_gets_none():
    # During a rolling deploy the previous release's workers insert sessions without the new
    # column: with a Python-side default only, PostgreSQL refused them (NOT NULL) and every
    # login of those workers answered 500.
    user = UserFactory()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_session (id, user_id, created_at, last_used_at, expires_at,"
            " current_jti, access_jti, user_agent, ip)"
            " VALUES (gen_random_uuid(), %s, now(), now(), now() + interval '1 day', 'j', '',"
            " '', '')",
            [user.pk],
        )
        cursor.execute("SELECT revoked_reason FROM accounts_session WHERE user_id = %s", [user.pk])
        assert cursor.fetchone() == ("",)


def test_a_revocation_reason_this_release_does_not_know_reads_as_none():
    # Written by a later release (and read after a roll back): it was a ValueError, a 500 on
    # every refresh, logout and sessions list of that user.
    from apps.accounts.models import RefreshSession
    from apps.accounts.repositories import DjangoSessionRepository

    user = UserFactory()
    row = RefreshSession.objects.create(
        user=user,
        created_at="2026-01-01T00:00:00Z",
        last_used_at="2026-01-01T00:00:00Z",
        expires_at="2099-01-01T00:00:00Z",
        current_jti="j",
        revoked_at="2026-01-01T00:00:00Z",
        revoked_reason="from_a_later_release",
    )
    session = DjangoSessionRepository().get(str(row.id))
    assert session is not None
    assert session.revoked_reason is None
