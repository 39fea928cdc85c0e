"""A graceful reload (SIGHUP) with SO_REUSEPORT answers every connection, none is reset.

Each worker listens on a socket of its own and the kernel hashes each new connection onto one of
them, a stopping worker's too until it closes it. These tests read the listening sockets, and
the master's workers, from /proc (Linux, as SO_REUSEPORT's spreading is).
"""

import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import serve

pytestmark = pytest.mark.e2e

HEALTH_THEN_CLOSE = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
# How long a new connection may wait for its answer: the new worker boots (Django) first, but
# well below the stopping worker's graceful timeout (20 s), until which a connection left in its
# socket's queue used to wait before it was reset.
ANSWER_SECONDS = 10.0
DEADLINE_SECONDS = 10.0


def _workers(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def _accept_queues(port: int) -> list[int]:
    """The accept queue's length of each socket listening on 127.0.0.1:`port`."""
    host = int.from_bytes(socket.inet_aton("127.0.0.1"), sys.byteorder)  # as the kernel writes it
    local = f"{host:08X}:{port:04X}"
    queues = []
    with open("/proc/net/tcp") as table:
        next(table)
        for row in table:
            fields = row.split()
            if fields[1] == local and fields[3] == "0A":  # LISTEN
                queues.append(int(fields[4].split(":")[1], 16))
    return queues


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=ANSWER_SECONDS)


def _answer(sock: socket.socket) -> str:
    """The status line of what the server sent until it closed, or how the wait ended."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError as error:  # a reset, or no answer within ANSWER_SECONDS
        return f"{type(error).__name__} after {len(answer)} bytes"
    return answer.partition(b"\r\n")[0].decode("latin-1")


def test_a_reload_answers_new_connections_while_the_old_worker_finishes_a_request(tmp_path):
    with serve(tmp_path) as server:
        port = urlsplit(server.url).port
        # A client that sent part of a request's head: one of the worker's threads waits for
        # the rest, and the worker, once stopping, waits for that request for its graceful
        # timeout. Its socket, though, must take no new connection meanwhile.
        with _connect(port) as stalled:
            stalled.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
            _until(lambda: _accept_queues(port) == [0], "the worker never took the connection")
            server.process.send_signal(signal.SIGHUP)
            answered = []
            for _ in range(30):  # SO_REUSEPORT hashes about half of them to the old socket
                started = time.monotonic()
                with _connect(port) as sock:
                    sock.sendall(HEALTH_THEN_CLOSE)
                    answer = _answer(sock)
                assert answer == "HTTP/1.1 200 OK", (
                    f"{answer} ({time.monotonic() - started:.1f} s), after {len(answered)} answers"
                )
                answered.append(answer)
            stalled.sendall(b"\r\n")  # the request's end: the old worker answers it, and stops
            assert _answer(stalled) == "HTTP/1.1 200 OK"


def test_connections_queued_for_a_stopping_worker_are_answered_not_reset(tmp_path):
    with serve(tmp_path) as server:
        port = urlsplit(server.url).port
        [old] = _workers(server.process.pid)
        # A frozen worker accepts nothing: the connections wait in its socket's queue, as
        # those that arrive between a worker's stop and its socket's close do.
        os.kill(old, signal.SIGSTOP)
        try:
            queued = [_connect(port) for _ in range(8)]
            for sock in queued:
                sock.sendall(HEALTH_THEN_CLOSE)
            _until(lambda: _accept_queues(port) == [8], f"queued: {_accept_queues(port)}")
            server.process.send_signal(signal.SIGHUP)  # the master asks the old worker to stop
            _until(lambda: len(_accept_queues(port)) == 2, "the new worker never listened")
        finally:
            os.kill(old, signal.SIGCONT)
        answers = []
        for sock in queued:
            with sock:
                answers.append(_answer(sock))
    assert answers == ["HTTP/1.1 200 OK"] * 8
