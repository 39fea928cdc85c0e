"""Fixtures of the accounts HTTP tests: personas and logging in over the API."""

from __future__ import annotations

import re
import time
from concurrent.futures import wait
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.core.cache import cache
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts import background, wiring
from apps.common.tokens import (
    REVOKED_JTI_KEY,
    REVOKED_SID_KEY,
    USER_CUTOFF_KEY,
    SimpleJWTAccessTokenVerifier,
)
from tests.factories.accounts import PASSWORD, AdminFactory, UserFactory
from tests.fakes.clock import FakeClock


@pytest.fixture(autouse=True)
def _mail_in_the_request(settings):
    """Send account emails inline so tests read `mail.outbox` right after the call."""
    settings.ACCOUNTS_EMAIL_IN_BACKGROUND = False


class BackgroundWork:
    """The tasks given to the accounts' background pools (each request's use case and the
    emails those send in turn; the counts of failed logins), still run there as submitted."""

    def __init__(self) -> None:
        self.tasks = []

    def watch(self, pool, monkeypatch) -> None:
        """Note every task given to `pool` from now on."""
        submit = pool.submit

        def noted(*args, **kwargs):
            task = submit(*args, **kwargs)
            self.tasks.append(task)
            return task

        monkeypatch.setattr(pool, "submit", noted)

    def finish(self, timeout=10):
        """Wait until every task is done, those submitted meanwhile by others too."""
        waited = 0
        while waited < len(self.tasks):
            waited = len(self.tasks)
            _, running = wait(self.tasks[:waited], timeout=timeout)
            assert not running, f"background work still running after {timeout} s"
        for task in self.tasks:
            task.result()  # a failure there fails the test


@pytest.fixture
def background_work(settings, monkeypatch):
    """Account emails and login failure counts on the background pools, as in production,
    with every task noted: `background_work.finish()` waits for them, no polling."""
    settings.ACCOUNTS_EMAIL_IN_BACKGROUND = True
    work = BackgroundWork()
    work.watch(background._pool(), monkeypatch)
    work.watch(background._lockout_pool(), monkeypatch)
    return work


@pytest.fixture
def clock():
    """The accounts' clock (use cases, and `iat`/`exp` of the tokens they mint), stopped at a
    whole second a minute ago: a test moves it (`clock.advance(seconds=1)`) instead of sleeping
    into the next second. Behind the wall clock, which simplejwt checks `exp` on and PyJWT
    refuses an `iat` ahead of."""
    fake = FakeClock(datetime.fromtimestamp(int(time.time()) - 60, UTC))
    previous = wiring.use_clock(fake)
    yield fake
    wiring.use_clock(previous)


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", full_name="Alice Liddell")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", full_name="Bob Builder")


@pytest.fixture
def admin_user(db):
    return AdminFactory(email="root@example.com", full_name="Root Admin")


def login(client, email, password=PASSWORD, **extra):
    response = client.post(
        "/api/v1/auth/login", {"email": email, "password": password}, format="json", **extra
    )
    assert response.status_code == 200, response.content
    return response.json()


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def logout(client, pair):
    """End the pair's session over the API (its refresh family and every access token)."""
    response = client.post(
        "/api/v1/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 204, response.content


def forget_revocation_facts(access_token):
    """Lose what the cache knows against this token (a Redis flush, an outage that lost the
    writes), through the real cache, and check the token verifier now lets it through."""
    claims = AccessToken(access_token)
    keys = [
        REVOKED_JTI_KEY.format(claims["jti"]),
        REVOKED_SID_KEY.format(claims["sid"]),
        USER_CUTOFF_KEY.format(claims["sub"]),
    ]
    assert cache.get_many(keys), "the cache held no revocation fact for this token"
    cache.delete_many(keys)
    assert SimpleJWTAccessTokenVerifier().verify(access_token).is_ok()


def ended_and_live_session(client, email="alice@example.com"):
    """Two sessions of one user, the first logged out over the API: (its pair, the other's)."""
    ended, live = login(client, email), login(client, email)
    logout(client, ended)
    return ended, live


def assert_refused_alike(response, refused_by_cache):
    """`response` is the 401 the cache's revocation facts gave: the same problem document and
    bearer challenge (so a lost fact, refused by the database instead, looks no different)."""
    assert response.status_code == 401, response.content
    assert response.json() == refused_by_cache.json()
    assert response["WWW-Authenticate"] == refused_by_cache["WWW-Authenticate"]


def assert_sealed(client, pair, reset_token):
    """A password set outside the API's change ended every session of its user (`pair`'s
    tokens are refused) and voided the reset link mailed before it (`SealPasswordSet`)."""
    assert client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    reset = client.post(
        "/api/v1/auth/password/reset/confirm",
        {"token": reset_token, "new_password": "another-good-5"},
    )
    assert (reset.status_code, reset.json()["code"]) == (400, "invalid_token")


def last_mailed_token():
    assert mail.outbox, "no email was sent"
    match = re.search(r"Token: (\S+)", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


@pytest.fixture
def api_client():
    """DRF's test client speaking JSON by default, like every real client of this API."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.default_format = "json"
    return client
