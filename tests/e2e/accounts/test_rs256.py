"""Asymmetric signing: tokens verify against the key published at /.well-known/jwks.json."""

import httpx
import jwt
import pytest

from tests.e2e.accounts.conftest import ADMIN

pytestmark = pytest.mark.e2e


def test_rs256_tokens_verify_with_the_published_jwk(rs256_server):
    with httpx.Client(base_url=rs256_server.url, timeout=10) as http:
        pair = http.post("/api/v1/auth/login", json=ADMIN).json()
        me = http.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.json()["roles"] == ["user", "admin"]
        jwks = http.get("/.well-known/jwks.json").json()
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(
        pair["access_token"],
        key.key,
        algorithms=["RS256"],
        audience="platform-api",
        issuer="platform",
    )
    assert claims["type"] == "access"
    assert claims["roles"] == ["user", "admin"]
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "RS256"


def test_each_token_names_the_published_key_so_a_jwks_client_finds_it(rs256_server):
    # PyJWKClient (and every JWKS client) picks the key by the token's `kid`: without one in the
    # header, a published set with a kid matched no token.
    with httpx.Client(base_url=rs256_server.url, timeout=10) as http:
        pair = http.post("/api/v1/auth/login", json=ADMIN).json()
        refreshed = http.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        ).json()
        jwks = jwt.PyJWKSet.from_dict(http.get("/.well-known/jwks.json").json())
    [published] = jwks.keys
    for pair_ in (pair, refreshed):
        for token in (pair_["access_token"], pair_["refresh_token"]):
            assert jwks[jwt.get_unverified_header(token)["kid"]] is published


def test_a_token_signed_with_the_key_but_not_naming_it_is_refused(rs256_server):
    """The accounts name the published key in every token they sign: the same signature under
    a header with another `kid`, or none, is no token of theirs (the key was not looked at)."""
    with httpx.Client(base_url=rs256_server.url, timeout=10) as http:
        pair = http.post("/api/v1/auth/login", json=ADMIN).json()
        kid = http.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
        claims = jwt.decode(pair["access_token"], options={"verify_signature": False})

        def me(headers):
            token = jwt.encode(claims, rs256_server.private_key, "RS256", headers=headers)
            return http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

        assert me({"kid": kid}).status_code == 200  # the same claims, re-signed, as issued
        for header in ({"kid": kid + "x"}, {"kid": "another-key"}, {}):
            refused = me(header)
            assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid"), header
