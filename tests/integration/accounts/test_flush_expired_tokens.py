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
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    out = StringIO()
    call_command("flush_expired_tokens", stdout=out)
    assert "Deleted 1 sessions and 1 email tokens." in out.getvalue()
    assert RefreshSession.objects.count() == 1
    assert OneTimeToken.objects.count() == 1
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": live["refresh_token"]})
    assert refreshed.status_code == 200
