"""Settings for pytest: the real PostgreSQL and Redis on loopback (see the Makefile).

`make test` exports the database and Redis URLs; these defaults match it so a bare `pytest`
run behaves the same. Passwords hash at bcrypt's minimum cost to keep the suite fast.
"""

from __future__ import annotations

import os

_PG = os.environ.get("TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
_PREFIX = os.environ.get("DB_PREFIX", "platform")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault(
    "JWT_SIGNING_KEY",
    "test-only-jwt-signing-key-long-enough-for-every-hmac-variant-0123456789abcdef",
)
os.environ.setdefault("ACCOUNTS_DATABASE_URL", f"{_PG}/{_PREFIX}_accounts")
os.environ.setdefault("GATEWAY_DATABASE_URL", f"{_PG}/{_PREFIX}_gateway")
os.environ.setdefault("AGGREGATION_DATABASE_URL", f"{_PG}/{_PREFIX}_aggregation")
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
os.environ.setdefault("CACHE_KEY_PREFIX", f"test-{_PREFIX}")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

# Bcrypt at its minimum cost: the hasher is the same, only cheaper (benchmarks use cost 12).
from apps.accounts.hashers import NormalisingBCryptSHA256PasswordHasher  # noqa: E402
from config.settings.base import *  # noqa: E402,F403


class FastBCryptSHA256PasswordHasher(NormalisingBCryptSHA256PasswordHasher):
    """The platform's bcrypt-SHA256 (NFKC first) at cost 4, for tests only."""

    rounds = 4


PASSWORD_HASHERS = ["config.settings.test.FastBCryptSHA256PasswordHasher"]

# Tests never run collectstatic; the plain storage needs no manifest.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None  # WhiteNoise serves nothing collected in tests

# Each context's test database stands alone, so a test may ask for `gateway` or `aggregation`
# without `default` (Django otherwise makes every alias depend on `default`).
for _alias in ("gateway", "aggregation"):
    DATABASES[_alias]["TEST"] = {"DEPENDENCIES": []}  # noqa: F405
