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
