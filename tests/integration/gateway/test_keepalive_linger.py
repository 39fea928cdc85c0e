"""The platform's gthread worker keeps serving a kept-alive connection while requests come."""

from __future__ import annotations

import fcntl
import io
import os
import resource
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import gunicorn_worker
from config.gunicorn_worker import next_request_arrives, serve_while_kept_alive


@pytest.fixture(autouse=True)
def no_request_deadlines(monkeypatch):
    """These workers serve one-byte requests over socket pairs, and some "connections" are
    mere names: the request-head guard and the socket timeouts (test_request_deadlines.py) are
    off."""
    monkeypatch.setenv("GUNICORN_REQUEST_HEAD_TIMEOUT", "0")
    monkeypatch.setenv("GUNICORN_REQUEST_BODY_TIMEOUT", "0")


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


def _within(seconds):
    return lambda conn: next_request_arrives(conn, seconds)


def test_next_request_on_the_connection_is_served_by_the_same_thread(connection):
    conn, client = connection
    handle, calls = _handle([True, True, False])
    client.sendall(b"1")
    client.sendall(b"2")  # arrives within the linger
    assert serve_while_kept_alive(handle, conn, _within(0.05)) is True
    assert len(calls) == 2  # second answer keeps alive, then nothing more arrives


def test_no_linger_after_a_close_or_when_the_wait_gives_up(connection):
    conn, client = connection
    handle, calls = _handle([False])
    client.sendall(b"1")
    assert serve_while_kept_alive(handle, conn, _within(0.05)) is False
    assert len(calls) == 1

    handle, calls = _handle([True, True])
    client.sendall(b"23")
    assert serve_while_kept_alive(handle, conn, lambda conn: False) is True
    assert len(calls) == 1  # back to the poller: a thread is needed elsewhere, or no linger


def test_http2_connections_are_left_to_gthread(connection):
    conn, client = connection
    conn.is_http2 = True
    handle, calls = _handle([True, True])
    client.sendall(b"12")
    assert serve_while_kept_alive(handle, conn, _within(0.05)) is True
    assert len(calls) == 1


def test_read_ahead_bytes_count_as_the_next_request(connection):
    conn, _client = connection
    conn.parser.unreader.buf.write(b"GET / HTTP/1.1\r\n\r\n")
    assert next_request_arrives(conn, 0.001) is True
    conn.parser.unreader.buf = io.BytesIO()
    assert next_request_arrives(conn, 0.001) is False
    conn.sock.close()
    assert next_request_arrives(conn, 0.001) is False


def test_a_readable_wake_pipe_ends_the_wait_at_once(connection):
    conn, client = connection
    wake_r, wake_w = os.pipe()
    try:
        os.write(wake_w, b"!")
        started = time.monotonic()
        assert next_request_arrives(conn, 30, wake_r) is False
        assert time.monotonic() - started < 10  # at once, not after the 30 s linger
        client.sendall(b"1")
        # A wake-up wins over a request that came with it: back to the poller, behind the
        # connection that waits for a thread.
        assert next_request_arrives(conn, 30, wake_r) is False
        os.read(wake_r, 1)
        assert next_request_arrives(conn, 30, wake_r) is True
    finally:
        os.close(wake_r)
        os.close(wake_w)


def test_a_worker_without_linger_hands_each_connection_back_after_one_answer(
    monkeypatch, tmp_path, connection
):
    from gunicorn.config import Config
    from gunicorn.workers.gthread import ThreadWorker

    from config.gunicorn_worker import LingeringThreadWorker

    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "0")
    cfg = Config()
    cfg.set("worker_tmp_dir", str(tmp_path))
    worker = LingeringThreadWorker(0, 0, [], None, 30, cfg, None)
    worker.tpool = _Pool()
    conn, client = connection
    handle, calls = _handle([True, True])
    monkeypatch.setattr(ThreadWorker, "handle", lambda self, conn: handle(conn))
    client.sendall(b"12")  # the next request is already there
    worker.enqueue_req(conn)
    assert worker.handle(conn) is True
    assert len(calls) == 1
    worker.tmp.close()


def test_linger_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("GUNICORN_KEEPALIVE_LINGER_MS", raising=False)
    assert gunicorn_worker.linger_seconds() == pytest.approx(1.0)
    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "0")
    assert gunicorn_worker.linger_seconds() == 0
    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "0.5")
    assert gunicorn_worker.linger_seconds() == pytest.approx(0.0005)


@pytest.mark.parametrize("value", ["2ms", "-5", "inf", "nan", "60001"])
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


@pytest.fixture
def lingering_worker(monkeypatch, tmp_path):
    """A worker whose pool threads linger up to 30 s, and whose requests are one byte each."""
    from gunicorn.config import Config
    from gunicorn.workers.gthread import ThreadWorker

    from config.gunicorn_worker import LingeringThreadWorker

    monkeypatch.setenv("GUNICORN_KEEPALIVE_LINGER_MS", "30000")
    cfg = Config()
    cfg.set("worker_tmp_dir", str(tmp_path))
    cfg.set("threads", 2)
    worker = LingeringThreadWorker(0, 0, [], None, 30, cfg, None)
    worker.tpool = _Pool()
    served = []

    def one_byte_request(self, conn):
        served.append(conn.sock.recv(1))
        return True

    monkeypatch.setattr(ThreadWorker, "handle", one_byte_request)
    yield worker, served
    worker.tmp.close()


def _lingering_thread(worker, conn):
    """Start a pool thread serving `conn`; returns it and a list that gets handle's result."""
    worker.enqueue_req(conn)
    result = []
    thread = threading.Thread(target=lambda: result.append(worker.handle(conn)), daemon=True)
    thread.start()
    return thread, result


def _wait_until_lingering(worker, count, served=None, requests=0):
    """Wait (10 s at most) until `count` threads linger, after `requests` were served."""
    for _ in range(10_000):
        with worker._queued_lock:
            if len(worker._lingering) == count and (served is None or len(served) == requests):
                return
        threading.Event().wait(0.001)
    raise AssertionError(f"{count} threads never lingered")


def test_a_queued_connection_with_no_free_thread_cuts_the_longest_linger_short(
    lingering_worker, connection
):
    worker, served = lingering_worker
    conn, client = connection
    other = socket.socketpair()
    try:
        other_conn = SimpleNamespace(
            sock=other[0],
            is_http2=False,
            parser=SimpleNamespace(unreader=SimpleNamespace(buf=io.BytesIO())),
        )
        client.sendall(b"1")
        first, first_result = _lingering_thread(worker, conn)
        _wait_until_lingering(worker, 1)
        other[1].sendall(b"2")
        second, second_result = _lingering_thread(worker, other_conn)
        _wait_until_lingering(worker, 2)  # both threads of the pool linger, oldest first
        worker.enqueue_req("a third connection")  # no thread is free for it
        first.join(timeout=10)
        assert not first.is_alive(), "the oldest lingering thread kept its connection"
        assert first_result == [True]  # handed back to the poller, kept alive
        with worker._queued_lock:  # one wake-up per queued connection, not one per thread
            assert list(worker._lingering) == [second.ident]
        assert served == [b"1", b"2"]
        worker.alive = False
        worker.handle_exit(None, None)  # a stopping worker ends every linger
        second.join(timeout=10)
        assert not second.is_alive()
        assert second_result == [True]
    finally:
        other[0].close()
        other[1].close()


def test_a_queued_connection_a_free_thread_can_take_leaves_the_linger_alone(
    lingering_worker, connection
):
    worker, served = lingering_worker
    conn, client = connection
    client.sendall(b"1")
    thread, result = _lingering_thread(worker, conn)
    _wait_until_lingering(worker, 1)
    worker.enqueue_req("a second connection")  # the pool's other thread is free for it
    client.sendall(b"2")  # so the lingering thread serves its connection's next request
    _wait_until_lingering(worker, 1, served, requests=2)  # ... and lingers again
    assert served == [b"1", b"2"]
    worker.alive = False
    worker.handle_exit(None, None)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert result == [True]


def test_a_connection_whose_descriptor_passes_1024_still_lingers(connection):
    conn, client = connection
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1100:
        pytest.skip("the open-file limit leaves no descriptor above 1 024")
    # The lowest free descriptor above 1 024: what a worker with many connections hands out.
    high = fcntl.fcntl(conn.sock.fileno(), fcntl.F_DUPFD, 1025)
    try:
        conn.sock = socket.socket(fileno=high)
        client.sendall(b"1")
        assert next_request_arrives(conn, 1) is True
    finally:
        conn.sock.detach()
        os.close(high)


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/2"])
def test_reaching_max_requests_ends_every_linger(
    lingering_worker, connection, monkeypatch, protocol
):
    from gunicorn.workers.gthread import ThreadWorker

    worker, served = lingering_worker
    conn, client = connection
    client.sendall(b"1")
    thread, result = _lingering_thread(worker, conn)
    _wait_until_lingering(worker, 1, served, requests=1)

    def last_request(self, *args):
        self.alive = False  # what gthread does when the worker reaches `max_requests`
        return True

    if protocol == "HTTP/1.1":
        monkeypatch.setattr(ThreadWorker, "handle_request", last_request)
        request = SimpleNamespace(version=(1, 1), headers=[("HOST", "localhost")])
        assert worker.handle_request(request, "another connection") is True
    else:
        monkeypatch.setattr(ThreadWorker, "handle_http2_request", last_request)
        assert worker.handle_http2_request("a stream", "another connection", None) is True
    thread.join(timeout=10)  # not after the 30 s linger
    assert not thread.is_alive()
    assert result == [True]
