"""Embedded servers (`make run`'s path) whose var/ folder the tests can read (var/mail/)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.servers import serve


@pytest.fixture(scope="module")
def make_run_server(tmp_path_factory):
    with serve(
        tmp_path_factory.mktemp("accounts-var"),
        ACCOUNTS_LOCKOUT_THRESHOLD="3",
        ACCOUNTS_LOGIN_RATE="100/m",  # one client IP runs every test here
    ) as server:
        yield server


ADMIN = {"email": "admin@example.com", "password": "rs256-admin-password-1"}


@pytest.fixture(scope="module")
def rs256_server(tmp_path_factory):
    """An embedded server signing with RS256 (`.private_key`, PEM); the seeded admin is
    `ADMIN`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with serve(
        tmp_path_factory.mktemp("rs256-var"),
        JWT_ALGORITHM="RS256",
        JWT_SIGNING_KEY=private,
        JWT_VERIFYING_KEY=public,
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
    ) as server:
        server.private_key = private  # for tests that sign as the server does, header aside
        yield server
