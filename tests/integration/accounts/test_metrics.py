"""The accounts business counters on /metrics."""

import pytest

from tests.factories.accounts import PASSWORD, UserFactory
from tests.integration.accounts.conftest import bearer, login
from tests.metrics import scrape, value

pytestmark = pytest.mark.django_db(databases=["default"])


COUNTERS = (
    "platform_accounts_registrations_total",
    "platform_accounts_logins_total",
    "platform_accounts_token_refreshes_total",
    "platform_accounts_refresh_reuse_total",
    "platform_accounts_lockouts_total",
)


def counted(client, action) -> dict[str, float]:
    """What `action()` added to the business counters: `name` or `name{label="value"}` →
    increase (counters that did not move are left out)."""
    before = scrape(client, only=COUNTERS)
    action()
    after = scrape(client, only=COUNTERS)
    increases = {}
    for (name, labels), now in after.items():
        increase = now - before.get((name, labels), 0.0)
        if increase:
            shown = ",".join(f'{key}="{label}"' for key, label in labels)
            increases[f"{name}{{{shown}}}" if shown else name] = increase
    return increases


def test_each_business_counter_counts_what_happened(client, api_client, alice, settings):
    """Each action moves its own counter by one and no other: counters without labels are on
    the page at 0 from the start, so only their values tell whether anything was counted."""
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 2
    UserFactory(email="gone@example.com", status="suspended")
    logins = "platform_accounts_logins_total"

    def post(url, body, status):
        def action():
            answer = api_client.post(url, body)
            assert answer.status_code == status, answer.content
            return answer.json()

        return action

    def log_in(email, password=PASSWORD, status=401):
        return post("/api/v1/auth/login", {"email": email, "password": password}, status)

    new = {"email": "new@example.com", "password": "quiet-meadow-river-7", "full_name": "New"}
    assert counted(client, post("/api/v1/auth/register", new, 201)) == {
        "platform_accounts_registrations_total": 1
    }
    assert counted(client, log_in(new["email"], new["password"], 403)) == {
        f'{logins}{{outcome="unverified"}}': 1
    }
    assert counted(client, log_in("gone@example.com", status=403)) == {
        f'{logins}{{outcome="inactive"}}': 1
    }
    assert counted(client, log_in("nobody@example.com")) == {
        f'{logins}{{outcome="unknown_user"}}': 1
    }
    pair = {}
    assert counted(client, lambda: pair.update(log_in("alice@example.com", status=200)())) == {
        f'{logins}{{outcome="success"}}': 1
    }
    rotate = {"refresh_token": pair["refresh_token"]}
    assert counted(client, post("/api/v1/auth/refresh", rotate, 200)) == {
        "platform_accounts_token_refreshes_total": 1
    }
    assert counted(client, post("/api/v1/auth/refresh", rotate, 401)) == {  # used already
        "platform_accounts_refresh_reuse_total": 1
    }
    assert counted(client, log_in("alice@example.com", "wrong-guess-1")) == {
        f'{logins}{{outcome="wrong_password"}}': 1
    }
    assert counted(client, log_in("alice@example.com", "wrong-guess-2")) == {  # the 2nd: locked
        f'{logins}{{outcome="wrong_password"}}': 1,
        "platform_accounts_lockouts_total": 1,
    }
    assert counted(client, log_in("alice@example.com")) == {f'{logins}{{outcome="locked"}}': 1}


def sample(client, name, **labels):
    """The value /metrics shows for one sample (0 when it is not there yet)."""
    return value(scrape(client, only={name}), name, **labels)


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
