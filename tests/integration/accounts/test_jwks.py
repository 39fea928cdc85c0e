"""GET /.well-known/jwks.json."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

pytestmark = pytest.mark.django_db(databases=[])


def _pem(private_key):
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_no_jwks_with_a_shared_secret(client):
    response = client.get("/.well-known/jwks.json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_rsa_public_key_is_published(client, settings):
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_VERIFYING_KEY = _pem(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    settings.JWT_KEY_ID = None
    key = client.get("/.well-known/jwks.json").json()["keys"][0]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert key["kid"]
    assert "d" not in key


def test_ec_public_key_is_published_with_the_configured_kid(client, settings):
    settings.JWT_ALGORITHM = "ES256"
    settings.JWT_VERIFYING_KEY = _pem(ec.generate_private_key(ec.SECP256R1()))
    settings.JWT_KEY_ID = "key-2026"
    key = client.get("/.well-known/jwks.json").json()["keys"][0]
    assert (key["kty"], key["crv"], key["kid"]) == ("EC", "P-256", "key-2026")
