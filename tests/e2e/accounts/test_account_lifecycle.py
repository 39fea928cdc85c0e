"""The whole identity lifecycle through a real HTTP server (pytest-django's live_server)."""

import re
import threading

import httpx
import pytest
from django.core import mail

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases=["default"]),
]


@pytest.fixture(autouse=True)
def _mail_in_the_request(settings):
    settings.ACCOUNTS_EMAIL_IN_BACKGROUND = False


def mailed_token(to):
    """The token of the last email sent to `to`. Not simply the last email: an earlier test's
    background pool may still deliver one into this test's outbox on a loaded machine."""
    sent = [message for message in mail.outbox if message.to == [to]]
    return re.search(r"Token: (\S+)", sent[-1].body).group(1)


def test_register_verify_login_refresh_logout(live_server):
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        registered = http.post(
            "/api/v1/auth/register",
            json={
                "email": "Eve@Example.com",
                "password": "a-long-enough-pass-7",
                "full_name": "Eve",
            },
        )
        assert registered.status_code == 201
        assert registered.headers["X-Request-ID"]
        early = http.post(
            "/api/v1/auth/login",
            json={"email": "eve@example.com", "password": "a-long-enough-pass-7"},
        )
        assert early.json()["code"] == "email_not_verified"
        verified = http.post(
            "/api/v1/auth/verify-email", json={"token": mailed_token("eve@example.com")}
        )
        assert verified.json()["email_verified"] is True

        pair = http.post(
            "/api/v1/auth/login",
            json={"email": "eve@example.com", "password": "a-long-enough-pass-7"},
        ).json()
        auth = {"Authorization": f"Bearer {pair['access_token']}"}
        assert http.get("/api/v1/auth/me", headers=auth).json()["email"] == "eve@example.com"

        rotated = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert rotated.status_code == 200
        new = rotated.json()

        # Two clients race with the same (new) refresh token: exactly one wins.
        results = []

        def race():
            with httpx.Client(base_url=live_server.url, timeout=10) as other:
                results.append(
                    other.post(
                        "/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]}
                    ).status_code
                )

        threads = [threading.Thread(target=race) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [200, 401, 401]

        again = http.post(
            "/api/v1/auth/login",
            json={"email": "eve@example.com", "password": "a-long-enough-pass-7"},
        ).json()
        auth = {"Authorization": f"Bearer {again['access_token']}"}
        out = http.post(
            "/api/v1/auth/logout", json={"refresh_token": again["refresh_token"]}, headers=auth
        )
        assert out.status_code == 204
        assert http.get("/api/v1/auth/me", headers=auth).json()["code"] == "token_revoked"


def test_password_reset_by_email(live_server, django_user_model):
    from tests.factories.accounts import UserFactory

    UserFactory(email="frank@example.com")
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        assert (
            http.post(
                "/api/v1/auth/password/reset", json={"email": "frank@example.com"}
            ).status_code
            == 202
        )
        confirm = http.post(
            "/api/v1/auth/password/reset/confirm",
            json={
                "token": mailed_token("frank@example.com"),
                "new_password": "a-brand-new-secret-8",
            },
        )
        assert confirm.status_code == 204
        login = http.post(
            "/api/v1/auth/login",
            json={"email": "frank@example.com", "password": "a-brand-new-secret-8"},
        )
        assert login.status_code == 200
