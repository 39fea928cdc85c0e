"""A per-user cut-off refuses its whole second, and a token minted after it works.

`iat` has whole seconds, so a cut-off at 12:00:00.5 cannot tell a token minted at .1 (before
it) from one minted at .9 (after it): it refuses both (published, and checked in the database,
as the next whole second), and login and refresh mint no token of that user before that second
(they wait for it, a second at most). The clock is the accounts' fake one, at a whole second.
"""

from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.common.tokens import SimpleJWTAccessTokenVerifier
from core.domain.shared.identity import TokenError
from core.domain.shared.result import Err
from tests.integration.accounts.conftest import bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])


def refresh(client, pair):
    answer = client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_a_token_minted_earlier_in_the_second_of_a_roles_change_is_refused(
    api_client, alice, admin_user, clock
):
    admin = bearer(login(api_client, "root@example.com")["access_token"])
    second = clock.now()
    clock.advance(milliseconds=100)
    earlier = login(api_client, "alice@example.com")  # not the session's last access token
    clock.advance(milliseconds=100)
    latest = refresh(api_client, earlier)
    clock.advance(milliseconds=300)
    changed = api_client.patch(f"/api/v1/users/{alice.id}", {"roles": ["user", "billing"]}, **admin)
    assert changed.status_code == 200, changed.content
    verifier = SimpleJWTAccessTokenVerifier()
    for pair in (earlier, latest):  # the cache's facts (the gateway reads the same)
        assert verifier.verify(pair["access_token"]) == Err(TokenError.REVOKED)
        me = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
        assert (me.status_code, me.json()["code"]) == (401, "token_revoked")
    # A refresh in the same second waits for the next one: its pair works, with the new roles.
    clock.advance(milliseconds=100)
    rotated = refresh(api_client, latest)
    assert AccessToken(rotated["access_token"])["iat"] == int(second.timestamp()) + 1
    assert verifier.verify(rotated["access_token"]).unwrap().roles == {"user", "billing"}
    me = api_client.get("/api/v1/auth/me", **bearer(rotated["access_token"]))
    assert me.status_code == 200, me.content


def test_a_login_right_after_a_password_reset_works_at_once(api_client, alice, clock):
    """The user who just reset their password is not locked out for the rest of the second."""
    second = clock.now()
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    clock.advance(milliseconds=200)
    confirm = api_client.post(
        "/api/v1/auth/password/reset/confirm",
        {"token": last_mailed_token(), "new_password": "fresh-orchard-lantern-4"},
    )
    assert confirm.status_code == 204
    clock.advance(milliseconds=100)
    pair = login(api_client, "alice@example.com", "fresh-orchard-lantern-4")
    assert AccessToken(pair["access_token"])["iat"] == int(second.timestamp()) + 1
    assert SimpleJWTAccessTokenVerifier().verify(pair["access_token"]).is_ok()
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    assert clock.now() == second + timedelta(seconds=1)
