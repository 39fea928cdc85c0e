"""The image is built from the checkout: what must never go into it is kept out of the context."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_local_secrets_the_host_venv_and_git_stay_out_of_the_image():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"var", ".venv", ".git"} <= ignored, "docker/Dockerfile runs COPY . ."
    assert not any(line.startswith("!") for line in ignored), "no re-includes"
