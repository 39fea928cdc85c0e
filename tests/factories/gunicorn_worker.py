"""Helpers for tests that drive the gunicorn worker's main-thread logic without its threads."""

from __future__ import annotations

from typing import Any


class RecordingPool:
    """Stands in for the worker's thread pool: records the connections it is given instead of
    serving them (what `enqueue_req` hands over is what a test asserts on)."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, fn: Any, conn: Any, *args: Any) -> RecordingPool:
        self.submitted.append(conn)
        return self

    def add_done_callback(self, callback: Any) -> None:
        """gthread attaches `finish_request`; nothing finishes here."""
