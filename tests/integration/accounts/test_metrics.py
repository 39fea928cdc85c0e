"""The accounts business counters on /metrics."""

import pytest

from tests.integration.accounts.conftest import login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_business_counters_are_exported(client, api_client, alice):
    login(api_client, "alice@example.com")
    api_client.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "wrong-1"})
    text = client.get("/metrics").content.decode()
    assert 'platform_accounts_logins_total{outcome="success"}' in text
    assert 'platform_accounts_logins_total{outcome="wrong_password"}' in text
    for name in (
        "platform_accounts_registrations_total",
        "platform_accounts_token_refreshes_total",
        "platform_accounts_refresh_reuse_total",
        "platform_accounts_lockouts_total",
    ):
        assert name in text
