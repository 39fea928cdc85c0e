"""Every bearer endpoint of the accounts API checks the access token it is given: signature,
algorithm, `type`, expiry, audience, issuer and revocation. A token failing any of them is
401 with the bearer challenge, and the request changes nothing.

Each forged token is the caller's real access token with one thing wrong, so the same request
with the real token would succeed."""

from datetime import UTC, datetime

import jwt
import pytest

from apps.accounts.models import RefreshSession, User
from core.domain.shared.identity import LONGEST_ACCESS_LIFETIME
from tests.factories.accounts import PASSWORD, AdminFactory
from tests.factories.tokens import NOT_COMPACT, claims_of, signed, tampered
from tests.integration.accounts.conftest import bearer, login, logout

pytestmark = pytest.mark.django_db(databases=["default"])
CHALLENGE = 'Bearer realm="api"'


def _changed(token, **changes):
    return signed({**claims_of(token), **changes})


def _without(token, claim):
    return signed({k: v for k, v in claims_of(token).items() if k != claim})


def _expired(token):
    now = int(datetime.now(UTC).timestamp())
    return _changed(token, iat=now - 120, exp=now - 60)


FORGERIES = {
    "another key": lambda pair: signed(
        claims_of(pair["access_token"]), key="another-key-entirely-0123456789abcdef-xyz"
    ),
    "another hmac": lambda pair: signed(claims_of(pair["access_token"]), algorithm="HS512"),
    "alg none": lambda pair: jwt.encode(claims_of(pair["access_token"]), None, algorithm="none"),
    "tampered payload": lambda pair: tampered(
        pair["access_token"], roles=["user", "admin", "root"]
    ),
    "another audience": lambda pair: _changed(pair["access_token"], aud="someone-else"),
    "no audience": lambda pair: _without(pair["access_token"], "aud"),
    "another issuer": lambda pair: _changed(pair["access_token"], iss="evil"),
    "no issuer": lambda pair: _without(pair["access_token"], "iss"),
    "refresh type": lambda pair: _changed(pair["access_token"], type="refresh"),
    "no type": lambda pair: _without(pair["access_token"], "type"),
    "a refresh token": lambda pair: pair["refresh_token"],
    "no expiry": lambda pair: _without(pair["access_token"], "exp"),
    "no jti": lambda pair: _without(pair["access_token"], "jti"),
    "no session": lambda pair: _without(pair["access_token"], "sid"),
    "subject not a user id": lambda pair: _changed(pair["access_token"], sub="alice"),
    "iat true": lambda pair: _changed(pair["access_token"], iat=True),
    "lives longer than any access token": lambda pair: _changed(
        pair["access_token"],
        exp=claims_of(pair["access_token"])["iat"] + LONGEST_ACCESS_LIFETIME + 1,
    ),
    # The real token itself, in another text than its compact form.
    **{
        f"not compact: {name}": (lambda pair, variant=variant: variant(pair["access_token"]))
        for name, variant in NOT_COMPACT.items()
    },
}


SOME_ID = "00000000-0000-0000-0000-000000000000"


def _calls(pair, user_id):
    """Every bearer operation of the accounts API, with a body it would accept."""
    return [
        ("post", "/api/v1/auth/logout", {"refresh_token": pair["refresh_token"]}),
        ("post", "/api/v1/auth/logout-all", {}),
        ("get", "/api/v1/auth/me", None),
        ("patch", "/api/v1/auth/me", {"full_name": "Changed"}),
        (
            "post",
            "/api/v1/auth/password/change",
            {"current_password": PASSWORD, "new_password": "a-changed-password-42"},
        ),
        ("get", "/api/v1/auth/sessions", None),
        ("delete", f"/api/v1/auth/sessions/{claims_of(pair['access_token'])['sid']}", None),
        ("get", "/api/v1/users", None),
        ("get", f"/api/v1/users/{user_id}", None),
        ("patch", f"/api/v1/users/{user_id}", {"status": "suspended", "full_name": "Changed"}),
    ]


def _assert_nothing_changed(api_client, pair, password_hash):
    root = User.objects.get(email="root@example.com")
    assert (root.full_name, root.status, root.password) == ("Root Admin", "active", password_hash)
    assert root.tokens_valid_after is None
    assert RefreshSession.objects.filter(user=root, revoked_at__isnull=True).count() == 1
    me = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert me.status_code == 200, me.content


@pytest.mark.parametrize("forgery", FORGERIES, ids=list(FORGERIES))
def test_every_bearer_endpoint_refuses_a_token_failing_any_check(api_client, admin_user, forgery):
    pair = login(api_client, "root@example.com")
    token = FORGERIES[forgery](pair)
    for method, path, body in _calls(pair, admin_user.id):
        response = getattr(api_client, method)(path, body, format="json", **bearer(token))
        assert (response.status_code, response.json()["code"]) == (401, "token_invalid"), (
            method,
            path,
            response.content,
        )
        assert response["WWW-Authenticate"] == CHALLENGE, (method, path)
    _assert_nothing_changed(api_client, pair, admin_user.password)


def test_every_bearer_endpoint_refuses_an_expired_token(api_client, admin_user):
    pair = login(api_client, "root@example.com")
    token = _expired(pair["access_token"])
    for method, path, body in _calls(pair, admin_user.id):
        response = getattr(api_client, method)(path, body, format="json", **bearer(token))
        assert (response.status_code, response.json()["code"]) == (401, "token_expired"), (
            method,
            path,
        )
        assert response["WWW-Authenticate"] == CHALLENGE, (method, path)
    _assert_nothing_changed(api_client, pair, admin_user.password)


def test_every_bearer_endpoint_refuses_a_revoked_token(api_client, admin_user):
    ended = login(api_client, "root@example.com")
    logout(api_client, ended)
    pair = login(api_client, "root@example.com")
    for method, path, body in _calls(pair, admin_user.id):
        response = getattr(api_client, method)(
            path, body, format="json", **bearer(ended["access_token"])
        )
        assert (response.status_code, response.json()["code"]) == (401, "token_revoked"), (
            method,
            path,
        )
        assert response["WWW-Authenticate"] == CHALLENGE, (method, path)
    _assert_nothing_changed(api_client, pair, admin_user.password)


def test_the_real_token_passes_every_check_the_forgeries_fail(api_client, admin_user):
    """The control: each call with an untouched token of a fresh login succeeds (the password
    change and the suspension last, as they end what follows)."""
    AdminFactory(email="second@example.com")  # so that root, not the last admin, may be suspended
    password = PASSWORD
    for index in (0, 1, 2, 3, 5, 6, 7, 8, 4, 9):
        pair = login(api_client, "root@example.com", password)
        method, path, body = _calls(pair, admin_user.id)[index]
        response = getattr(api_client, method)(
            path, body, format="json", **bearer(pair["access_token"])
        )
        assert response.status_code in (200, 204), (method, path, response.content)
        password = body["new_password"] if path.endswith("/change") else password
