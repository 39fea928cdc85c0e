"""A private redis-server for tests that stop it mid-test or count exactly what it was sent."""

from __future__ import annotations

import os
import shutil

import pytest

# Where packages put redis-server when it is not on the PATH of the test run (sbin, Homebrew).
USUAL_PLACES = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin")


def redis_server_binary(environ=os.environ, places=USUAL_PLACES) -> str:
    """The redis-server to start: `$REDIS_SERVER`, else the one on PATH, else a usual place.

    `make test` needs Redis anyway, so a missing binary fails the run with what to do rather
    than skipping these tests quietly.
    """
    explicit = environ.get("REDIS_SERVER")
    found = (
        shutil.which(explicit)
        if explicit
        else shutil.which("redis-server", path=environ.get("PATH"))
        or shutil.which("redis-server", path=os.pathsep.join(places))
    )
    if found is None:
        where = f"REDIS_SERVER={explicit!r}" if explicit else f"PATH or {', '.join(places)}"
        pytest.fail(
            f"redis-server not found ({where}): these tests start a private Redis to stop it"
            " mid-test. Install it (apt-get install redis-server) or set REDIS_SERVER to its"
            " path.",
            pytrace=False,
        )
    return found
