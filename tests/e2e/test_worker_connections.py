"""The gunicorn worker keeps serving every client while some of them misbehave (raw sockets)."""

import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import serve

pytestmark = pytest.mark.e2e

HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
HEALTH_THEN_CLOSE = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _connect(url: str) -> socket.socket:
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=30)


def _read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _read_head(sock: socket.socket) -> bytes:
    """What the server sent up to the end of its answer's head (the body may follow)."""
    head = b""
    while b"\r\n\r\n" not in head and (chunk := sock.recv(65536)):
        head += chunk
    return head


def test_clients_that_keep_a_closed_connection_open_do_not_hold_up_new_clients(tmp_path):
    # A client that reads a `Connection: close` answer and keeps its end open a while (an
    # HTTP/1.0 client, a pool that closes lazily). gthread closed such a connection gracefully
    # on the worker's main thread, waiting up to 2 s for the client's FIN: meanwhile no
    # connection was accepted or handed to a thread, one client after the other (measured:
    # ~2 s per such client, ~6 s for three, where an answer takes ~2 ms).
    with serve(tmp_path, GUNICORN_THREADS="2") as server:
        lazy = [_connect(server.url) for _ in range(3)]
        try:
            for sock in lazy:
                sock.sendall(HEALTH_THEN_CLOSE)
            for sock in lazy:  # answered, not waiting for the server's end of the connection
                assert _read_head(sock).startswith(b"HTTP/1.1 200 ")
            started = time.monotonic()
            with _connect(server.url) as newcomer:
                newcomer.sendall(HEALTH_THEN_CLOSE)
                answer = _read_until_closed(newcomer)
            answered_in = time.monotonic() - started
        finally:
            for sock in lazy:
                sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answered_in < 2, f"a new client waited {answered_in:.1f} s for its answer"
