"""The worker's poller holds a connection until its request's body is in too (bounded), then
gives it a thread; a body that stops arriving is answered 408 from the main thread. Driven
in-process on loopback sockets, without the worker's threads (tests/factories/gunicorn_worker)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest

from config import gunicorn_worker
from config.gunicorn_worker import RequestLimits, RequestScan, chunk_size
from tests.factories.gunicorn_worker import main_thread_worker

POST = b"POST /ns/a HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: body-test-1\r\n"
LIMITS = RequestLimits(head=10_000, chunk_line=100, body=1000)
NO_EVENT = 0.05


def _is_in(data: bytes, limits: RequestLimits = LIMITS) -> bool:
    return RequestScan(limits).is_in(data)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no body
        POST + b"Content-Length: 5\r\n\r\nhello",
        POST + b"content-length:  5 \r\n\r\nhelloGET / HTTP/1.1\r\n",  # and a pipelined start
        POST + b"Content-Length: 0\r\n\r\n",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        # what a thread refuses at once, as it did
        POST + b"Content-Length: 2000\r\n\r\n",  # over the body limit: 413
        POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        POST + b"Content-Length: +5\r\n\r\n",
        POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        POST + b"Expect: 200-ok\r\nContent-Length: 5\r\n\r\n",
        POST + b"X-A: 1\nContent-Length: 5\r\nX-B: 1\n\r\n\r\n",  # a bare LF
        POST + b"Content-Length: 5\r\n folded\r\n\r\n",
        POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # not a size
        POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabXY",  # no CRLF after the data
        POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 101,  # a line past its limit
        POST + b"Transfer-Encoding: chunked\r\n\r\n3e9\r\n",  # chunks past the body limit
        POST + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n",  # a bare LF in a trailer
        POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\na\r\n" * 200,  # 1 200 bytes
    ],
)
def test_what_a_thread_can_serve_without_waiting(request_bytes):
    assert _is_in(request_bytes)


@pytest.mark.parametrize(
    "request_bytes",
    [
        POST + b"Content-Length: 5\r\n\r\n",
        POST + b"Content-Length: 5\r\n\r\nhell",
        b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhe",
        POST + b"Transfer-Encoding: chunked\r\n\r\n",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r",
        POST + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
    ],
)
def test_what_waits_for_more_of_its_body(request_bytes):
    scan = RequestScan(LIMITS)
    assert not scan.is_in(request_bytes)
    assert scan.awaits_body


def test_a_body_trickling_in_is_scanned_where_it_grew():
    data = bytearray(POST + b"Transfer-Encoding: chunked\r\n\r\n")
    scan = RequestScan(LIMITS)
    for byte in b"3\r\nabc\r\n4;x=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n":
        data.append(byte)
        assert not scan.is_in(data), bytes(data)
    data += b"\r\n"
    assert scan.is_in(data)
    assert scan.sizes == 7


def test_chunk_size_lines_are_read_as_gunicorn_reads_them():
    assert chunk_size(b"1A") == 26
    assert chunk_size(b"5 ; name=value") == 5
    assert chunk_size(b'5;n="quoted"') == 5
    for refused in (b"", b"5 ", b"-5", b"0x5", b"5;", b"5;a b", b"1" * 17):
        assert chunk_size(refused) is None, refused


def test_the_body_limit_is_the_platforms_largest(monkeypatch):
    monkeypatch.delenv("MAX_REQUEST_BODY_BYTES", raising=False)
    monkeypatch.delenv("GATEWAY_MAX_BODY_BYTES", raising=False)
    assert gunicorn_worker.request_body_limit() == 1024 * 1024
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", str(5 * 1024 * 1024))
    assert gunicorn_worker.request_body_limit() == 5 * 1024 * 1024
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "0")  # the API's limit, then
    monkeypatch.setenv("MAX_REQUEST_BODY_BYTES", "2048")
    assert gunicorn_worker.request_body_limit() == 2048


# --- The poller ---------------------------------------------------------------------------


@pytest.fixture
def make_worker(monkeypatch, tmp_path):
    workers = []

    def make(body_timeout="30"):
        monkeypatch.setenv("GUNICORN_REQUEST_HEAD_TIMEOUT", "5")
        monkeypatch.setenv("GUNICORN_REQUEST_BODY_TIMEOUT", body_timeout)
        monkeypatch.setenv("MAX_REQUEST_BODY_BYTES", "4096")
        worker = main_thread_worker(tmp_path)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.poller.close()
        worker.tmp.close()


@pytest.fixture
def connect():
    """`connect(worker)`: a new client connection, as (the worker's TConn, the client socket)."""
    from gunicorn.workers.gthread import TConn

    listener = socket.create_server(("127.0.0.1", 0))
    sockets = [listener]

    def connect(worker):
        client = socket.create_connection(listener.getsockname(), timeout=10)
        ours, address = listener.accept()
        sockets.extend((client, ours))
        return TConn(worker.cfg, ours, address, listener.getsockname()), client

    yield connect
    for sock in sockets:
        sock.close()


def _settle(client_sent, conn):
    """Wait (10 s at most) until what the client sent is in the worker's socket."""
    deadline = time.monotonic() + 10
    while len(conn.sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)) < client_sent:
        assert time.monotonic() < deadline, "the bytes never arrived"
        threading.Event().wait(0.001)


def _send(worker, conn, client, data, *, first=False):
    """The client sends `data`; the worker takes the connection (`first`) or the poller reads."""
    client.sendall(data)
    _settle(len(data), conn)
    if first:
        worker.enqueue_req(conn)
    else:
        worker.wait_for_and_dispatch_events(10)


def test_a_body_in_pieces_waits_in_the_poller_then_goes_whole_to_a_thread(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    head = POST + b"Content-Length: 10\r\n\r\n"
    _send(worker, conn, client, head[:20], first=True)  # a partial head
    assert list(worker._heads) == [conn]
    _send(worker, conn, client, head[20:] + b"01234")  # the head, and half the body
    assert list(worker._heads) == []
    assert [held for _, _, held in worker._bodies] == [conn]
    assert worker._held == len(head) + 5
    _send(worker, conn, client, b"567")
    assert worker.tpool.submitted == []
    assert worker.poller.select(NO_EVENT) == []  # read, not left in the socket
    _send(worker, conn, client, b"89")
    assert worker.tpool.submitted == [conn]
    assert conn.data_ready
    assert gunicorn_worker.read_ahead(conn) == head + b"0123456789"
    assert worker._held == 0
    with pytest.raises(KeyError):
        worker.poller.get_key(conn.sock)


def test_a_client_that_expects_100_continue_is_told_once_and_gunicorn_stays_quiet(
    make_worker, connect
):
    worker = make_worker()
    conn, client = connect(worker)
    _send(
        worker,
        conn,
        client,
        POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        first=True,
    )
    assert client.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.continued  # `handle_request` clears gunicorn's own 100 for this request
    _send(worker, conn, client, b"ok")
    assert worker.tpool.submitted == [conn]


def test_a_body_that_stops_arriving_is_answered_408_from_the_poller(make_worker, connect, caplog):
    worker = make_worker(body_timeout="0.2")
    conn, client = connect(worker)
    _send(worker, conn, client, POST + b"Content-Length: 10\r\n\r\n01", first=True)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="test.worker"):
        while worker._bodies and time.monotonic() - started < 5:
            worker.wait_for_and_dispatch_events(1.0)  # gthread's own wait: woken at the deadline
            worker.murder_pending()
    took = time.monotonic() - started
    assert 0.15 < took < 0.9
    answer = client.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"X-Request-ID: body-test-1" in head
    assert json.loads(body)["code"] == "request_timeout"
    assert caplog.messages == [
        "Request body stopped arriving for 0.2 s from ip=127.0.0.1 request_id=body-test-1"
    ]
    assert list(worker._closing) == [conn]
    assert worker.tpool.submitted == []
    assert worker._held == 0


def test_each_arrival_gives_a_body_the_whole_timeout_again(make_worker, connect):
    worker = make_worker(body_timeout="0.3")
    conn, client = connect(worker)
    _send(worker, conn, client, POST + b"Content-Length: 10\r\n\r\n0", first=True)
    for byte in b"12345":
        threading.Event().wait(0.15)
        _send(worker, conn, client, bytes([byte]))
        worker.murder_pending()
    assert worker._closing == type(worker._closing)()  # 0.9 s in all, never 0.3 s without a byte
    assert [held for _, _, held in worker._bodies] == [conn]


def test_past_the_bytes_a_worker_holds_for_bodies_a_connection_gets_a_thread(
    make_worker, connect, monkeypatch
):
    worker = make_worker()
    head = POST + b"Content-Length: 100\r\n\r\n"
    monkeypatch.setattr(gunicorn_worker, "MAX_HELD_BODY_BYTES", 2 * len(head) + 15)
    first, first_client = connect(worker)
    _send(worker, first, first_client, head + b"a" * 10, first=True)
    second, second_client = connect(worker)
    _send(worker, second, second_client, head, first=True)
    assert worker.tpool.submitted == []
    _send(worker, second, second_client, b"b" * 10)  # 5 bytes over
    assert worker.tpool.submitted == [second]
    assert worker._held == len(head) + 10
    third, third_client = connect(worker)
    _send(worker, third, third_client, head + b"c" * 10, first=True)
    assert worker.tpool.submitted == [second, third]  # not held at all
    assert worker._held == len(head) + 10


def test_a_lingering_thread_hands_back_a_next_request_whose_body_is_not_all_there(
    make_worker, connect
):
    worker = make_worker()
    conn, client = connect(worker)
    conn.init()  # a lingering connection has been served: its parser exists
    request = POST + b"Content-Length: 4\r\n\r\nab"
    client.sendall(request)
    _settle(len(request), conn)
    assert worker._request_in(conn) is False
    assert gunicorn_worker.read_ahead(conn) == request  # kept for the parser
    # gthread's `finish_request` gives it back to the poller, which reads on from those bytes.
    worker.enqueue_req(conn)
    assert worker.tpool.submitted == []
    _send(worker, conn, client, b"cd")
    assert worker.tpool.submitted == [conn]
    assert gunicorn_worker.read_ahead(conn) == request + b"cd"
