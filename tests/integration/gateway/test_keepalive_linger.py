"""gunicorn's gthread worker keeps serving a kept-alive connection while requests keep coming."""

from __future__ import annotations

import importlib
import io
import queue
import socket
from types import SimpleNamespace

import pytest


@pytest.fixture
def gunicorn_config(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.delenv("GUNICORN_KEEPALIVE_LINGER_MS", raising=False)
    import config.gunicorn as module

    return importlib.reload(module)


@pytest.fixture
def connection():
    ours, client = socket.socketpair()
    conn = SimpleNamespace(
        sock=ours,
        is_http2=False,
        parser=SimpleNamespace(unreader=SimpleNamespace(buf=io.BytesIO())),
    )
    yield conn, client
    ours.close()
    client.close()


def _worker(answers, work_queue=None):
    calls = []

    def handle(conn):
        calls.append(conn)
        conn.sock.recv(1)  # a one-byte request
        return answers.pop(0)

    pool = SimpleNamespace(
        _work_queue=work_queue if work_queue is not None else queue.SimpleQueue()
    )
    return SimpleNamespace(handle=handle, tpool=pool, alive=True), calls


def test_next_request_on_the_connection_is_served_by_the_same_thread(gunicorn_config, connection):
    conn, client = connection
    worker, calls = _worker([True, True, False])
    gunicorn_config.post_worker_init(worker)
    gunicorn_config.post_worker_init(worker)  # installed once
    client.sendall(b"1")
    client.sendall(b"2")  # arrives within the linger
    assert worker.handle(conn) is True  # second answer keeps alive, then nothing more arrives
    assert len(calls) == 2


def test_no_linger_after_a_close_or_when_others_wait(gunicorn_config, connection):
    conn, client = connection
    worker, calls = _worker([False])
    gunicorn_config.post_worker_init(worker)
    client.sendall(b"1")
    assert worker.handle(conn) is False
    assert len(calls) == 1

    waiting = queue.SimpleQueue()
    waiting.put("another connection")
    busy, busy_calls = _worker([True], work_queue=waiting)
    gunicorn_config.post_worker_init(busy)
    client.sendall(b"2")
    assert busy.handle(conn) is True
    assert len(busy_calls) == 1  # back to the poller: a thread is needed elsewhere


def test_read_ahead_bytes_count_as_the_next_request(gunicorn_config, connection):
    conn, _client = connection
    conn.parser.unreader.buf.write(b"GET / HTTP/1.1\r\n\r\n")
    assert gunicorn_config._next_request_arrives(conn, 0.001) is True
    conn.parser.unreader.buf = io.BytesIO()
    assert gunicorn_config._next_request_arrives(conn, 0.001) is False
    conn.sock.close()
    assert gunicorn_config._next_request_arrives(conn, 0.001) is False


def test_linger_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "0")
    import config.gunicorn as module

    module = importlib.reload(module)
    worker, _ = _worker([True])
    original = worker.handle
    module.post_worker_init(worker)
    assert worker.handle is original
    monkeypatch.delenv("GUNICORN_KEEPALIVE_LINGER_MS")
    importlib.reload(module)
