"""Primitives for race tests that let PostgreSQL order the racers (no patching, no sleeps).

A test holds a lock in its own transaction, starts requests on threads of their own
(`in_thread`), and `poll`s until it sees them wait where it wants them: behind its own
transaction (`blocked_by_me`), or behind anyone, one racer behind another (`lock_waiters`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections, transaction

POLL_SECONDS = 10


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `call()` (an API request) in a thread with its own database connections; the
    thread, and the list its answer is appended to."""
    answers: list[Any] = []

    def run() -> None:
        try:
            answers.append(call())
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answers


def blocked_by_me(cursor: Any) -> list[int]:
    """The backends that wait for a lock the cursor's own transaction holds."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is cached per txn
    cursor.execute(
        "SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
    )
    return [pid for (pid,) in cursor.fetchall()]


def lock_waiters(cursor: Any) -> int:
    """How many sessions of the cursor's database wait for a lock, whoever holds it."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
    )
    count: int = cursor.fetchone()[0]
    return count


def poll(condition: Callable[[], bool], what: str) -> None:
    """Return once `condition()` holds; fail with `what` after `POLL_SECONDS`."""
    deadline = time.monotonic() + POLL_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def lose_to_a_vanishing_winner(
    alias: str,
    table: str,
    *,
    win: Callable[[], Any],
    race: Callable[[], Any],
    vanish: Callable[[], Any],
) -> list[Any]:
    """Make `race()` (a request on a thread of its own) lose a unique index to the row `win()`
    inserts, and that row be removed by `vanish()` before the loser can look at the table again.

    `win()` runs in the test's own transaction, uncommitted: the racer passes its checks and
    its write waits for it. `vanish()` runs on another thread once it holds the whole table
    (ACCESS EXCLUSIVE): granted only when the racer's transactions on it are over, so every
    read the racer makes after its write failed waits for the removal to commit. The racer's
    answer (a list of one, or empty if it raised)."""

    def remove() -> None:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            vanish()

    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        win()
        racer, answers = in_thread(race)
        poll(lambda: len(blocked_by_me(cursor)) >= 1, "the racer never reached its write")
        remover, _ = in_thread(remove)
        poll(lambda: len(blocked_by_me(cursor)) >= 2, "the removal never queued for the table")
    racer.join(timeout=30)
    remover.join(timeout=30)
    return answers
