"""A private redis-server for tests that stop it mid-test or count exactly what it was sent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

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


def start_redis_server(port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A redis-server of the test's own on a free loopback port (or `port`, to start one again
    where a killed one listened), ready: (process, URL of db 0). The caller kills it (and may
    stop or freeze it mid-test)."""
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([redis_server_binary(), *arguments], stdout=subprocess.PIPE)
    assert process.stdout is not None
    for line in process.stdout:  # until it says it is ready (or ends: the caller's ping fails)
        if b"Ready to accept connections" in line:
            break
    process.stdout.close()
    return process, f"redis://127.0.0.1:{port}/0"
