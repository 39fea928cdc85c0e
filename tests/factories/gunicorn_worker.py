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


def main_thread_worker(
    tmp_path: Any, *, listeners: list[Any] | None = None, master: int = 0, **settings: Any
) -> Any:
    """The platform's worker built in-process as gunicorn forks it, with `settings` in its
    config, a poller of its own and a `RecordingPool` for threads. The caller closes its
    `poller` and `tmp`."""
    import logging
    import selectors

    from gunicorn.config import Config

    from config.gunicorn_worker import LingeringThreadWorker

    cfg = Config()
    cfg.set("worker_tmp_dir", str(tmp_path))
    for name, value in settings.items():
        cfg.set(name, value)
    worker = LingeringThreadWorker(
        0, master, listeners or [], None, 30, cfg, logging.getLogger("test.worker")
    )
    worker.tpool = RecordingPool()
    worker.poller = selectors.DefaultSelector()
    return worker
