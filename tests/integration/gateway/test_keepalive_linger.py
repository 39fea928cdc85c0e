"""The platform's gthread worker keeps serving a kept-alive connection while requests come."""

from __future__ import annotations

import io
import socket
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import gunicorn_worker
from config.gunicorn_worker import next_request_arrives, serve_while_kept_alive


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


def _handle(answers):
    calls = []

    def handle(conn):
        calls.append(conn)
        conn.sock.recv(1)  # a one-byte request
        return answers.pop(0)

    return handle, calls


def test_next_request_on_the_connection_is_served_by_the_same_thread(connection):
    conn, client = connection
    handle, calls = _handle([True, True, False])
    client.sendall(b"1")
    client.sendall(b"2")  # arrives within the linger
    assert serve_while_kept_alive(handle, conn, 0.05, lambda: True) is True
    assert len(calls) == 2  # second answer keeps alive, then nothing more arrives


def test_no_linger_after_a_close_when_others_wait_or_when_switched_off(connection):
    conn, client = connection
    handle, calls = _handle([False])
    client.sendall(b"1")
    assert serve_while_kept_alive(handle, conn, 0.05, lambda: True) is False
    assert len(calls) == 1

    for seconds, may_linger in ((0.05, lambda: False), (0.0, lambda: True)):
        handle, calls = _handle([True, True])
        client.sendall(b"23")
        assert serve_while_kept_alive(handle, conn, seconds, may_linger) is True
        assert len(calls) == 1  # back to the poller: a thread is needed elsewhere, or no linger
        conn.sock.recv(1)


def test_http2_connections_are_left_to_gthread(connection):
    conn, client = connection
    conn.is_http2 = True
    handle, calls = _handle([True, True])
    client.sendall(b"12")
    assert serve_while_kept_alive(handle, conn, 0.05, lambda: True) is True
    assert len(calls) == 1


def test_read_ahead_bytes_count_as_the_next_request(connection):
    conn, _client = connection
    conn.parser.unreader.buf.write(b"GET / HTTP/1.1\r\n\r\n")
    assert next_request_arrives(conn, 0.001) is True
    conn.parser.unreader.buf = io.BytesIO()
    assert next_request_arrives(conn, 0.001) is False
    conn.sock.close()
    assert next_request_arrives(conn, 0.001) is False


def test_linger_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("GUNICORN_KEEPALIVE_LINGER_MS", raising=False)
    assert gunicorn_worker.linger_seconds() == pytest.approx(0.002)
    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "0")
    assert gunicorn_worker.linger_seconds() == 0
    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "0.5")
    assert gunicorn_worker.linger_seconds() == pytest.approx(0.0005)


@pytest.mark.parametrize("value", ["2ms", "-5"])
def test_a_bad_linger_stops_the_worker_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", value)
    with pytest.raises(ImproperlyConfigured, match="GUNICORN_KEEPALIVE_LINGER_MS must be"):
        gunicorn_worker.linger_seconds()


class _Pool:
    def __init__(self):
        self.submitted = []

    def submit(self, fn, *args):
        self.submitted.append((fn, args))
        return _Done()


class _Done:
    def add_done_callback(self, callback):
        pass


def test_the_worker_lingers_only_while_no_connection_waits_for_a_thread(monkeypatch, tmp_path):
    from gunicorn.config import Config
    from gunicorn.workers.gthread import ThreadWorker

    from config.gunicorn_worker import LingeringThreadWorker

    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "5")
    cfg = Config()
    cfg.set("worker_tmp_dir", str(tmp_path))
    worker = LingeringThreadWorker(0, 0, [], None, 30, cfg, None)
    assert worker.linger_seconds == pytest.approx(0.005)
    worker.tpool = _Pool()
    worker.enqueue_req("first")
    worker.enqueue_req("second")  # waits for a thread
    lingered = []
    monkeypatch.setattr(
        ThreadWorker, "handle", lambda self, conn: lingered.append(self._nobody_waits()) or False
    )
    assert worker.handle("first") is False  # picked up: one connection still waits
    assert lingered == [False]
    worker.handle("second")  # nobody waits now
    assert lingered == [False, True]
    worker.alive = False  # a stopping worker hands every connection back
    assert worker._nobody_waits() is False
    worker.tmp.close()
