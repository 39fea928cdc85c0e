"""Settings refuse a deployment that would run with a weak key or an unknown log setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_settings(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JWT_", "LOG_", "DJANGO_", "REDIS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_SECRET_KEY="x" * 50,
        VAR_DIR=str(tmp_path),
        **variables,
    )
    code = "import django; django.setup()"
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
