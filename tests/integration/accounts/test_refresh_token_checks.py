"""Refresh tokens are checked for signature, algorithm, `type`, audience and issuer wherever one
is taken: refresh, and logout (which also takes one past its expiry, through a decoding path of
its own). Each forged token is the caller's real refresh token with one thing wrong; it is 401
`token_invalid`, and nothing is ended: the real token still refreshes afterwards."""

from datetime import UTC, datetime

import jwt
import pytest

from tests.factories.tokens import NOT_COMPACT_TEXT, claims_of, signed, tampered
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])
FORGERIES = {
    "another key": lambda c: signed(c, key="another-key-entirely-0123456789abcdef-xyz"),
    "another hmac": lambda c: signed(c, algorithm="HS512"),
    "alg none": lambda c: jwt.encode(c, None, algorithm="none"),
    "another audience": lambda c: signed({**c, "aud": "someone-else"}),
    "no audience": lambda c: signed({k: v for k, v in c.items() if k != "aud"}),
    "another issuer": lambda c: signed({**c, "iss": "evil"}),
    "no issuer": lambda c: signed({k: v for k, v in c.items() if k != "iss"}),
    "access type": lambda c: signed({**c, "type": "access"}),
    "no type": lambda c: signed({k: v for k, v in c.items() if k != "type"}),
}


def _expired(claims):
    now = int(datetime.now(UTC).timestamp())
    return {**claims, "exp": now - 5}


@pytest.mark.parametrize("expired", [False, True], ids=["live", "expired"])
@pytest.mark.parametrize("forgery", FORGERIES, ids=list(FORGERIES))
def test_a_refresh_token_failing_any_check_is_refused_and_ends_nothing(
    api_client, alice, forgery, expired
):
    pair = login(api_client, "alice@example.com")
    claims = claims_of(pair["refresh_token"])
    token = FORGERIES[forgery](_expired(claims) if expired else claims)
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": token}, format="json")
    # Past its `exp` a token may be told expired first (PyJWT checks `exp` before `aud`/`iss`).
    codes = {"token_invalid", "token_expired"} if expired else {"token_invalid"}
    assert refreshed.status_code == 401, refreshed.content
    assert refreshed.json()["code"] in codes, refreshed.content
    out = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": token},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert (out.status_code, out.json()["code"]) == (401, "token_invalid"), out.content
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    again = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200, again.content


@pytest.mark.parametrize("expired", [False, True], ids=["live", "expired"])
@pytest.mark.parametrize("variant", NOT_COMPACT_TEXT, ids=list(NOT_COMPACT_TEXT))
def test_a_refresh_token_in_another_text_than_its_compact_form_is_refused_and_ends_nothing(
    api_client, alice, variant, expired
):
    """The real token's signed bytes, `=`-padded, with a non-canonical last character or with
    whitespace: refresh and logout (whose path for an expired token decodes on its own) refuse
    it as `token_invalid`, as they refuse any token that is not one."""
    pair = login(api_client, "alice@example.com")
    token = pair["refresh_token"]
    if expired:
        token = signed(_expired(claims_of(token)))
    text = NOT_COMPACT_TEXT[variant](token)
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": text}, format="json")
    assert (refreshed.status_code, refreshed.json()["code"]) == (401, "token_invalid")
    out = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": text},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert (out.status_code, out.json()["code"]) == (401, "token_invalid"), out.content
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    again = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200, again.content


def test_a_tampered_refresh_token_is_refused_and_ends_nothing(api_client, alice, bob):
    """Bob's real signature over a payload naming Alice's family."""
    mine, theirs = login(api_client, "alice@example.com"), login(api_client, "bob@example.com")
    token = tampered(theirs["refresh_token"], sid=claims_of(mine["refresh_token"])["sid"])
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": token}, format="json")
    assert (refreshed.status_code, refreshed.json()["code"]) == (401, "token_invalid")
    again = api_client.post("/api/v1/auth/refresh", {"refresh_token": mine["refresh_token"]})
    assert again.status_code == 200, again.content
