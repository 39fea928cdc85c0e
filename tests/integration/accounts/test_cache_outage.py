"""With Redis unreachable the accounts API degrades (no rate limits) but never answers 500."""

import pytest
from prometheus_client import REGISTRY
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories.accounts import PASSWORD
from tests.integration.accounts.conftest import bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_login_me_refresh_and_logout_survive_a_cache_outage(api_client, alice, redis_down):
    pair = login(api_client, "alice@example.com")
    unread = _sample("platform_token_revocation_lookup_failures_total")
    written = _sample("platform_token_revocation_write_failures_total")
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    # The revocation facts could not be read: the token passes (fail open), counted.
    assert _sample("platform_token_revocation_lookup_failures_total") > unread
    fresh = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200
    out = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": fresh.json()["refresh_token"]},
        **bearer(fresh.json()["access_token"]),
    )
    assert out.status_code == 204
    # The access token's denial could not be written: counted, and it lives until it expires.
    assert _sample("platform_token_revocation_write_failures_total") > written
    # The family is ended in the database whatever the cache did.
    again = api_client.post(
        "/api/v1/auth/refresh", {"refresh_token": fresh.json()["refresh_token"]}
    )
    assert again.status_code == 401


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_every_other_accounts_operation_answers_with_the_cache_unreachable(
    api_client, alice, admin_user, settings, redis_down
):
    """No 500 anywhere: the per-IP, per-user and per-address limits lapse (even at one call a
    minute), revocations that cannot be written are counted, and what the database holds
    decides."""
    settings.ACCOUNTS_RATE_LIMITS = dict.fromkeys(settings.ACCOUNTS_RATE_LIMITS, "1/m")
    addresses = settings.ACCOUNTS_ADDRESS_RATE_LIMITS
    settings.ACCOUNTS_ADDRESS_RATE_LIMITS = dict.fromkeys(addresses, "1/h")
    new = {"email": "new@example.com", "password": "quiet-meadow-river-7", "full_name": "New"}
    registered = [api_client.post("/api/v1/auth/register", new) for _ in range(2)]
    assert [answer.status_code for answer in registered] == [201, 409]  # not limited: taken
    assert registered[1].json()["code"] == "email_taken"
    for _ in range(2):
        resent = api_client.post("/api/v1/auth/verify-email/resend", {"email": new["email"]})
        assert resent.status_code == 202
    verified = api_client.post("/api/v1/auth/verify-email", {"token": last_mailed_token()})
    assert (verified.status_code, verified.json()["email_verified"]) == (200, True)

    other, pair = login(api_client, "alice@example.com"), login(api_client, "alice@example.com")
    auth = bearer(pair["access_token"])
    assert api_client.patch("/api/v1/auth/me", {"full_name": "A"}, **auth).status_code == 200
    sessions = api_client.get("/api/v1/auth/sessions", **auth)
    assert sessions.status_code == 200
    other_id = next(s["id"] for s in sessions.json() if s["id"] != _sid(pair))
    assert api_client.delete(f"/api/v1/auth/sessions/{other_id}", **auth).status_code == 204
    assert _refresh(api_client, other).status_code == 401  # ended in the database
    current = PASSWORD
    for new_password in ("changed-password-one-1", "changed-password-two-2"):
        changed = api_client.post(
            "/api/v1/auth/password/change",
            {"current_password": current, "new_password": new_password},
            **auth,
        )
        assert changed.status_code == 204, changed.content  # the 2nd too: the limit lapsed
        current = new_password

    for _ in range(2):
        asked = api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
        assert asked.status_code == 202
    reset = api_client.post(
        "/api/v1/auth/password/reset/confirm",
        {"token": last_mailed_token(), "new_password": "reset-password-three-3"},
    )
    assert reset.status_code == 204
    assert _refresh(api_client, pair).status_code == 401  # every session ended

    admin = bearer(login(api_client, "root@example.com")["access_token"])
    assert api_client.get("/api/v1/users", **admin).status_code == 200
    assert api_client.get(f"/api/v1/users/{alice.id}", **admin).status_code == 200
    patched = api_client.patch(f"/api/v1/users/{alice.id}", {"status": "suspended"}, **admin)
    assert (patched.status_code, patched.json()["status"]) == (200, "suspended")
    assert api_client.post("/api/v1/auth/logout-all", **admin).status_code == 204
    # The caller's token is revoked in the database, whatever the cache could not record.
    assert api_client.get("/api/v1/users", **admin).status_code == 401


def _sid(pair):
    return AccessToken(pair["access_token"])["sid"]


def _refresh(client, pair):
    return client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
