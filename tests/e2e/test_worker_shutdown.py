"""A stopping gunicorn worker does not wait out the threads that linger on kept-alive clients."""

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import serve

pytestmark = pytest.mark.e2e


def test_a_stopping_server_ends_the_linger_of_an_idle_kept_alive_connection(tmp_path):
    # A linger longer than gunicorn's graceful timeout (20 s): were the lingering thread not
    # woken, the worker would wait for it until the master killed it.
    with serve(tmp_path, GUNICORN_KEEPALIVE_LINGER_MS="60000") as server:
        address = urlsplit(server.url)
        client = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
        try:
            client.request("GET", "/health")
            assert client.getresponse().read()
            kept_alive = client.sock
            client.request("GET", "/health")
            assert client.getresponse().status == 200
            assert client.sock is kept_alive is not None  # one connection, kept alive
            started = time.monotonic()
            server.process.terminate()
            server.process.wait(timeout=60)
            stopped_in = time.monotonic() - started
        finally:
            client.close()
        assert stopped_in < 12, f"the server took {stopped_in:.1f} s to stop"


def _answer(sock: socket.socket) -> bytes:
    """One answer's head, its body (Content-Length) read off the kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return head


def test_a_stopping_server_answers_a_kept_alive_request_while_a_closed_client_lingers(tmp_path):
    # While stopping, the worker answers a kept-alive connection's request with
    # `Connection: close` for 2 s. gthread closed such a connection on its main thread, waiting
    # up to 2 s for the client's FIN: a client keeping its end open stopped the worker that
    # long, so the next kept-alive request was read only once its connection had expired, and
    # the connection was closed with the request unread: a reset instead of an answer.
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with serve(tmp_path, GUNICORN_THREADS="2") as server:
        address = urlsplit(server.url)
        waiting, lazy, third, fourth = (
            socket.create_connection((address.hostname, address.port), timeout=10) for _ in range(4)
        )
        with waiting, lazy, third, fourth:
            # The two threads linger on `waiting` and `lazy`; the third and fourth connections
            # take their threads, so both wait in the poller when the worker begins to stop.
            for sock in (waiting, lazy, third, fourth):
                sock.sendall(request)
                assert b"keep-alive" in _answer(sock).lower()
            server.process.terminate()
            deadline = time.monotonic() + 10
            while True:  # until the worker answers as a stopping worker does
                fourth.sendall(request)
                if b"connection: close" in _answer(fourth).lower():
                    break
                assert time.monotonic() < deadline, "the worker never began to stop"
            fourth.close()
            lazy.sendall(request)
            assert b"connection: close" in _answer(lazy).lower()
            assert lazy.recv(65536) == b""  # the server's end: it is closing the connection
            waiting.sendall(request)  # while `lazy` keeps its own end open
            head = _answer(waiting)
            server.process.wait(timeout=30)
    assert head.startswith(b"HTTP/1.1 200 ")
