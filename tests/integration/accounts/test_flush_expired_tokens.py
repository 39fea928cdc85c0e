"""`manage.py flush_expired_tokens`."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import OneTimeToken, RefreshSession
from tests.integration.accounts.conftest import login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_flush_expired_tokens_deletes_only_what_ended(api_client, alice):
    login(api_client, "alice@example.com")
    live = login(api_client, "alice@example.com")
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})  # voids 1st
    oldest = RefreshSession.objects.order_by("created_at").first()
    RefreshSession.objects.filter(pk=oldest.pk).update(
        expires_at=timezone.now() - timedelta(seconds=2),
        access_expires_at=timezone.now() - timedelta(seconds=1),
    )
    out = StringIO()
    call_command("flush_expired_tokens", stdout=out)
    assert "Deleted 1 sessions and 1 email tokens." in out.getvalue()
    assert RefreshSession.objects.count() == 1
    assert OneTimeToken.objects.count() == 1
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": live["refresh_token"]})
    assert refreshed.status_code == 200


def test_a_family_whose_last_access_token_lives_is_kept_until_it_expires(api_client, alice):
    login(api_client, "alice@example.com")
    family = RefreshSession.objects.get()
    RefreshSession.objects.filter(pk=family.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    call_command("flush_expired_tokens", stdout=StringIO())
    assert RefreshSession.objects.filter(pk=family.pk).exists()  # password change still finds it
    RefreshSession.objects.filter(pk=family.pk).update(
        access_expires_at=timezone.now() - timedelta(seconds=1)
    )
    call_command("flush_expired_tokens", stdout=StringIO())
    assert not RefreshSession.objects.exists()


def test_a_family_revoked_for_reuse_is_kept_until_it_expires(api_client, alice):
    """Each later presentation of its tokens answers `token_reused`, which needs the row."""
    first = login(api_client, "alice@example.com")
    second = api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    ended_long_ago = timezone.now() - timedelta(hours=1)
    RefreshSession.objects.update(revoked_at=ended_long_ago, access_expires_at=ended_long_ago)
    call_command("flush_expired_tokens", stdout=StringIO())
    newest = second.json()["refresh_token"]
    answer = api_client.post("/api/v1/auth/refresh", {"refresh_token": newest})
    assert answer.json()["code"] == "token_reused"
    RefreshSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("flush_expired_tokens", stdout=StringIO())
    assert not RefreshSession.objects.exists()
