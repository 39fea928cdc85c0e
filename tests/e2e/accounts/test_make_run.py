"""Every accounts flow against `make run`'s server (SQLite, local cache, mail in var/mail/)."""

import re
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "analytical-engine-1843"


_READ: set = set()  # emails already read by earlier calls (the server lives for the module)


def last_token(mail_dir):
    """The token of the newest email not read yet; emails leave on a background thread."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fresh = [m for m in sorted(mail_dir.glob("*.log")) if m not in _READ]
        tokens = re.findall(r"^Token: (\S+)$", fresh[-1].read_text(), re.M) if fresh else []
        if tokens:
            _READ.update(fresh)
            return tokens[-1]
        time.sleep(0.05)
    raise AssertionError("no new email in var/mail")


def bearer(pair):
    return {"Authorization": f"Bearer {pair['access_token']}"}


def test_register_verify_login_refresh_reuse_logout(make_run_server):
    with httpx.Client(base_url=make_run_server.url, timeout=10) as http:
        assert (
            http.post(
                "/api/v1/auth/register",
                json={"email": "Ada@Example.com", "password": PASSWORD, "full_name": "Ada"},
            ).status_code
            == 201
        )
        token = last_token(make_run_server.mail)
        assert http.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200
        login = {"email": "ada@example.com", "password": PASSWORD}
        pair = http.post("/api/v1/auth/login", json=login).json()
        assert http.get("/api/v1/auth/me", headers=bearer(pair)).json()["email_verified"]

        fresh = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        reused = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert (fresh.status_code, reused.json()["code"]) == (200, "token_reused")
        newest = http.post(
            "/api/v1/auth/refresh", json={"refresh_token": fresh.json()["refresh_token"]}
        )
        assert (newest.status_code, newest.json()["code"]) == (401, "token_reused")

        pair = http.post("/api/v1/auth/login", json=login).json()
        statuses = []

        def race():
            with httpx.Client(base_url=make_run_server.url, timeout=10) as other:
                answer = other.post(
                    "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
                )
                statuses.append(answer.status_code)

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 401, 401, 401]

        pair = http.post("/api/v1/auth/login", json=login).json()
        out = http.post(
            "/api/v1/auth/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers=bearer(pair),
        )
        assert out.status_code == 204
        assert http.get("/api/v1/auth/me", headers=bearer(pair)).json()["code"] == "token_revoked"


def test_lockout_then_reset_by_email(make_run_server):
    with httpx.Client(base_url=make_run_server.url, timeout=10) as http:
        http.post("/api/v1/auth/register", json={"email": "bo@example.com", "password": PASSWORD})
        http.post("/api/v1/auth/verify-email", json={"token": last_token(make_run_server.mail)})
        for _ in range(3):
            wrong = http.post(
                "/api/v1/auth/login", json={"email": "bo@example.com", "password": "wrong-pass-1"}
            )
        locked = http.post(
            "/api/v1/auth/login", json={"email": "bo@example.com", "password": PASSWORD}
        )
        assert locked.status_code == 401
        assert locked.json() == wrong.json()

        assert (
            http.post("/api/v1/auth/password/reset", json={"email": "bo@example.com"}).status_code
            == 202
        )
        confirm = http.post(
            "/api/v1/auth/password/reset/confirm",
            json={
                "token": last_token(make_run_server.mail),
                "new_password": "difference-engine-22",
            },
        )
        assert confirm.status_code == 204
        again = http.post(
            "/api/v1/auth/login",
            json={"email": "bo@example.com", "password": "difference-engine-22"},
        )
        assert again.status_code == 200
