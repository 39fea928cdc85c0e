"""The accounts business counters on /metrics."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.accounts.conftest import bearer, login

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


def sample(client, name, **labels):
    """The value /metrics shows for one sample (0 when it is not there yet)."""
    text = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


def test_rate_limited_calls_are_counted_by_endpoint(client, api_client, alice, settings):
    settings.ACCOUNTS_RATE_LIMITS = {
        **settings.ACCOUNTS_RATE_LIMITS,
        "login": "1/m",
        "password_change": "1/m",
    }
    name = "platform_accounts_rate_limited_total"
    before_login = sample(client, name, endpoint="login")
    before_change = sample(client, name, endpoint="password_change")
    pair = login(api_client, "alice@example.com")
    for _ in range(2):
        refused = api_client.post("/api/v1/auth/login", {"email": "a@example.com", "password": "x"})
        assert refused.status_code == 429
    change = {"current_password": "wrong-guess-1", "new_password": "fresh-orchard-lantern-4"}
    for expected in (400, 429):
        answer = api_client.post(
            "/api/v1/auth/password/change", change, **bearer(pair["access_token"])
        )
        assert answer.status_code == expected
    assert sample(client, name, endpoint="login") == before_login + 2
    assert sample(client, name, endpoint="password_change") == before_change + 1


def test_a_public_client_cannot_tell_from_metrics_whether_an_address_has_an_account(
    client, api_client, alice
):
    """Login answers an unknown address and a wrong password alike; its counters do not, so a
    client outside the monitoring networks does not get to read them."""
    outsider = {"REMOTE_ADDR": "203.0.113.7"}
    for email in ("alice@example.com", "nobody@example.com"):
        refused = api_client.post(
            "/api/v1/auth/login", {"email": email, "password": "wrong-guess-1"}, **outsider
        )
        assert refused.status_code == 401
        scraped = client.get("/metrics", **outsider)
        assert scraped.status_code == 403
        assert b"logins_total" not in scraped.content
