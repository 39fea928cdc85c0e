"""Settings refuse a deployment that would run with a weak key or an unknown log setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_settings(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return run_with_settings(tmp_path, "pass", **variables)


def run_with_settings(
    tmp_path: Path, code: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Set Django up in a fresh process with the variables (base settings and a long enough
    secret key unless given), then run `code`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JWT_", "LOG_", "DJANGO_", "REDIS_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_SECRET_KEY": "x" * 50,
            "VAR_DIR": str(tmp_path),
            **variables,
        }
    )
    code = f"import django; django.setup(); {code}"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("algorithm", "key", "ok"),
    [
        ("HS256", "k" * 31, False),
        ("HS256", "k" * 32, True),
        ("HS512", "k" * 63, False),
        ("HS512", "k" * 64, True),
    ],
)
def test_hmac_signing_keys_are_at_least_as_long_as_the_hash(tmp_path, algorithm, key, ok):
    loaded = load_settings(tmp_path, JWT_ALGORITHM=algorithm, JWT_SIGNING_KEY=key)
    assert (loaded.returncode == 0) is ok, loaded.stderr
    if not ok:
        assert "JWT_SIGNING_KEY must be at least" in loaded.stderr


@pytest.mark.parametrize("variable", ["LOG_LEVEL", "LOG_FORMAT"])
def test_unknown_log_settings_stop_the_start(tmp_path, variable):
    loaded = load_settings(tmp_path, JWT_SIGNING_KEY="k" * 40, **{variable: "loud"})
    assert loaded.returncode != 0
    assert f"{variable} must be one of" in loaded.stderr


def test_a_redis_url_of_another_scheme_stops_the_start_naming_the_variable(tmp_path):
    # redis-py refused it only at the first connection: `check`, `migrate_all` and `seed` ran,
    # then every gunicorn worker failed to boot with a message naming no variable.
    loaded = load_settings(
        tmp_path, JWT_SIGNING_KEY="k" * 40, REDIS_URL="http://ops:s3cret@127.0.0.1:6379/12"
    )
    assert loaded.returncode != 0
    assert "REDIS_URL must be a Redis URL" in loaded.stderr
    assert "s3cret" not in loaded.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "must be at least 1"), ("9", "must be at most 8"), ("two", "must be an integer")],
)
def test_a_bad_per_origin_call_limit_stops_the_start_naming_the_variable(tmp_path, value, message):
    loaded = load_settings(
        tmp_path,
        JWT_SIGNING_KEY="k" * 40,
        AGGREGATION_FETCH_THREADS="8",
        AGGREGATION_MAX_CALLS_PER_ORIGIN=value,
    )
    assert loaded.returncode != 0
    assert f"AGGREGATION_MAX_CALLS_PER_ORIGIN {message}" in loaded.stderr


@pytest.mark.parametrize(("value", "ok"), [("86400", True), ("86401", False)])
def test_an_access_lifetime_past_a_day_stops_the_start(tmp_path, value, ok):
    """A day is the bound the verifier holds every access token's `exp` - `iat` to, whatever
    lifetime is configured now: a lifetime past it would mint tokens the verifier refuses."""
    loaded = load_settings(tmp_path, JWT_SIGNING_KEY="k" * 40, JWT_ACCESS_TTL_SECONDS=value)
    assert (loaded.returncode == 0) is ok, loaded.stderr
    if not ok:
        assert "JWT_ACCESS_TTL_SECONDS must be at most 86400" in loaded.stderr


@pytest.mark.parametrize(("threads", "limit"), [("64", "32"), ("8", "4"), ("1", "1")])
def test_the_per_origin_call_limit_is_half_the_call_threads_by_default(tmp_path, threads, limit):
    shown = "from django.conf import settings; print(settings.AGGREGATION_MAX_CALLS_PER_ORIGIN)"
    loaded = run_with_settings(
        tmp_path, shown, JWT_SIGNING_KEY="k" * 40, AGGREGATION_FETCH_THREADS=threads
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [limit]


def _pem_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def test_an_rs256_key_pair_that_cannot_sign_and_verify_stops_the_start(tmp_path):
    # Found only at run time, each of these was a 500 on every login or bearer request.
    private, public = _pem_pair()
    other_private, other_public = _pem_pair()
    refusals = {
        "JWT_VERIFYING_KEY (the PEM public key) is required": {"JWT_SIGNING_KEY": private},
        "JWT_SIGNING_KEY must be a PEM private key": {
            "JWT_SIGNING_KEY": "k" * 64,
            "JWT_VERIFYING_KEY": public,
        },
        "JWT_VERIFYING_KEY must be the PEM public key of JWT_SIGNING_KEY": {
            "JWT_SIGNING_KEY": private,
            "JWT_VERIFYING_KEY": other_public,
        },
    }
    for message, keys in refusals.items():
        loaded = load_settings(tmp_path, JWT_ALGORITHM="RS256", **keys)
        assert loaded.returncode != 0
        assert message in loaded.stderr, loaded.stderr
    pair = {"JWT_SIGNING_KEY": other_private, "JWT_VERIFYING_KEY": other_public}
    loaded = load_settings(tmp_path, JWT_ALGORITHM="RS256", **pair)
    assert loaded.returncode == 0, loaded.stderr


@pytest.mark.parametrize("entry", ["config.wsgi", "config.asgi"])
def test_a_server_started_without_a_settings_module_runs_production_and_needs_its_secrets(
    tmp_path, entry
):
    # Local settings would generate a secret key into var/ (a new one per container) and leave
    # cookies insecure; production's stop the start, naming the variable.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JWT_", "LOG_", "DJANGO_", "REDIS_"))
    }
    env.update(VAR_DIR=str(tmp_path))
    started = subprocess.run(
        [sys.executable, "-c", f"import {entry}"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr
    assert "DJANGO_SECRET_KEY" in started.stderr
    assert not (tmp_path / "local-secrets.json").exists()


def test_an_email_backend_that_does_not_import_stops_the_start(tmp_path):
    # It was imported at the first email only: `check`, `migrate_all`, `seed` and gunicorn ran,
    # registration answered 201 and every verification email failed in the background.
    loaded = load_settings(tmp_path, JWT_SIGNING_KEY="k" * 40, EMAIL_BACKEND="no.such.Backend")
    assert loaded.returncode != 0
    assert "EMAIL_BACKEND must be the dotted path of an importable class" in loaded.stderr
    assert "no.such.Backend" in loaded.stderr
    pair = load_settings(
        tmp_path,
        JWT_SIGNING_KEY="k" * 40,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    assert pair.returncode == 0, pair.stderr


@pytest.mark.parametrize(
    "url",
    ["notaurl", "ftp://example.com", "http://", "https:///verify", "example.com/app",
     "https://example.com/?next=1", "https://example.com/#top"],
)  # fmt: skip
def test_a_public_base_url_must_be_an_absolute_http_url(tmp_path, url):
    # The links in account emails were built on it as given: `notaurl/verify-email?token=…`.
    loaded = load_settings(tmp_path, JWT_SIGNING_KEY="k" * 40, PUBLIC_BASE_URL=url)
    assert loaded.returncode != 0
    assert "PUBLIC_BASE_URL must be an absolute http(s) URL" in loaded.stderr


def test_a_public_base_url_loses_its_trailing_slash(tmp_path):
    shown = run_with_settings(
        tmp_path,
        "from django.conf import settings; print(settings.PUBLIC_BASE_URL)",
        JWT_SIGNING_KEY="k" * 40,
        PUBLIC_BASE_URL="https://app.example.com/",
    )
    assert shown.returncode == 0, shown.stderr
    # Links join it with `/verify-email?token=…`.
    assert shown.stdout.strip() == "https://app.example.com"


@pytest.mark.parametrize("port", ["abc", "0", "70000"])
def test_a_bad_port_stops_the_start_naming_port(tmp_path, port):
    # The URLs derived from it were refused later, naming AGGREGATION_DEMO_BASE_URL (in `seed
    # --demo`) or not at all (the links in emails); PORT was never named.
    for urls in ({}, {"PUBLIC_BASE_URL": "http://127.0.0.1:8000"}):
        loaded = load_settings(tmp_path, JWT_SIGNING_KEY="k" * 40, PORT=port, **urls)
        assert loaded.returncode != 0
        assert "ImproperlyConfigured: PORT must be" in loaded.stderr, loaded.stderr


def test_an_empty_secret_key_stops_production_naming_the_variable(tmp_path):
    loaded = load_settings(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings.production",
        JWT_SIGNING_KEY="k" * 40,
        DJANGO_SECRET_KEY="",
    )
    assert loaded.returncode != 0
    assert "ImproperlyConfigured: Set the DJANGO_SECRET_KEY environment variable" in (loaded.stderr)


def test_empty_secrets_in_local_settings_are_the_generated_ones(tmp_path):
    # config/settings/local.py: "Secrets not given in the environment are generated".
    code = (
        "import json, os; from django.conf import settings; "
        "store = os.path.join(os.environ['VAR_DIR'], 'local-secrets.json'); "
        "known = json.loads(open(store).read()); "
        "print(settings.SECRET_KEY == known['DJANGO_SECRET_KEY'] != '', "
        "settings.JWT_SIGNING_KEY == known['JWT_SIGNING_KEY'] != '')"
    )
    shown = run_with_settings(
        tmp_path,
        code,
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_SECRET_KEY="",
        JWT_SIGNING_KEY="",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "True True"


def test_an_unknown_traces_exporter_stops_the_start(tmp_path):
    loaded = load_settings(tmp_path, JWT_SIGNING_KEY="k" * 40, OTEL_TRACES_EXPORTER="bogus")
    assert loaded.returncode != 0
    assert "ImproperlyConfigured: OTEL_TRACES_EXPORTER must be" in loaded.stderr
