"""The worker's poller holds a connection until its request's body is in too (bounded), then
gives it a thread; a body that stops arriving is answered 408 from the main thread. Driven
in-process on loopback sockets, without the worker's threads (tests/factories/gunicorn_worker)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time

import pytest

from apps.common.problems import problem_body
from config import gunicorn_worker
from config.gunicorn_worker import RequestLimits, RequestScan, chunk_size_or_refusal
from tests.factories.gunicorn_worker import main_thread_worker

POST = b"POST /ns/a HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: body-test-1\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
LIMITS = RequestLimits(head=10_000, chunk_line=100, body=1000, trailer=2000, fields=20)
# A chunk of one byte whose size line carries a long extension: framing, nearly all of it.
FRAMED_BYTE = b"1;" + b"e" * 90 + b"\r\na\r\n"
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
        POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 101,  # a line past its limit
        CHUNKED + b"0\r\nX-T: " + b"t" * 2001,  # a trailer section past gunicorn's limit: 431
        POST + b"Content-Length: 0" + b"0" * 4300 + b"5\r\n\r\n",  # more digits than int() takes
        POST + b"Content-Length: 000000000000000000001001\r\n\r\n",  # over the limit
    ],
)
def test_what_a_thread_can_serve_without_waiting(request_bytes):
    scan = RequestScan(LIMITS)
    assert scan.is_in(request_bytes)
    assert not scan.too_large  # the thread answers


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /ns/a HTTP/1.1\r\nContent-Length: 5\r\n\r\n",  # no Host
        b"POST /ns/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        b"POST /ns/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        POST + b"host: again\r\nContent-Length: 5\r\n\r\n",  # two
        POST + b"Bad[Name]: x\r\nContent-Length: 5\r\n\r\n",  # not a token
        POST + b"X-A : x\r\nContent-Length: 5\r\n\r\n",  # a space before the colon
        POST + b"No-Colon\r\nContent-Length: 5\r\n\r\n",
        POST + b": no-name\r\nContent-Length: 5\r\n\r\n",
        POST + b"Content-Type: a\r\ncontent-type: b\r\nContent-Length: 5\r\n\r\n",
        POST + b"X-A: a\x01b\r\nContent-Length: 5\r\n\r\n",  # a control character
        POST + b"X-A: a\rb\r\nContent-Length: 5\r\n\r\n",  # a bare CR
        POST + b"X-A: 1\r\n" * 18 + b"Content-Length: 5\r\n\r\n",  # 21 fields, 20 allowed
    ],
)
def test_a_head_gunicorn_refuses_goes_to_a_thread_without_waiting_for_its_body(request_bytes):
    # RFC 9110 §10.1.1: the head alone decides, so the answer comes at once (no 100 first).
    scan = RequestScan(LIMITS)
    assert scan.is_in(request_bytes)
    assert not scan.awaits_body
    assert not scan.expects_continue


@pytest.mark.parametrize(
    "request_bytes",
    [
        CHUNKED + b"3e9\r\n",  # 1 001 bytes declared, 1 000 allowed
        CHUNKED + b"5\r\nhello\r\n3e4\r\n",  # in all
        CHUNKED + b"FFFFFFFF\r\n",
        CHUNKED + b"0" * 50 + b"FFFFFFFFFFFFFFFFFFFF\r\n",
        CHUNKED + FRAMED_BYTE * 700,  # 700 bytes, framed in 67 900: past 2 x 1 000 + 64 KiB
    ],
)
def test_a_chunked_body_past_the_limit_is_the_pollers_to_refuse(request_bytes):
    # A thread would read such a body to its end (or to the body timeout): it never gets one.
    scan = RequestScan(LIMITS)
    assert scan.is_in(request_bytes)
    assert scan.too_large


@pytest.mark.parametrize(
    ("request_bytes", "refusal"),
    [
        (CHUNKED + b"zz\r\n", "Invalid chunk size: b'zz'"),  # not a size
        (CHUNKED + b"2\r\nabXY", "Invalid chunk terminator is not '\\r\\n': b'XY'"),
        (CHUNKED + b"0\r\nX-T: 1\n", "Invalid HTTP Header: 'bare LF as line terminator'"),
        # what no byte to come can make valid, which gunicorn would wait for more of
        (CHUNKED + b"5\nhello\n0\n\n", "Invalid chunk size: b'5\\n'"),  # bare LFs throughout
        (CHUNKED + b"5\nhello\r\n0\r\n\r\n", "Invalid chunk size: b'5\\n'"),
        (CHUNKED + b"5;a=b\n", "Invalid chunk size: b'5;a=b\\n'"),  # ending an extension
        (CHUNKED + b"\n", "Invalid chunk size: b'\\n'"),
        (CHUNKED + b"5\r\nhello\n", "Invalid chunk terminator is not '\\r\\n': b'\\n'"),
        (CHUNKED + b"5\r\nhello\r\n0\n", "Invalid chunk size: b'0\\n'"),  # the last chunk's
        (CHUNKED + b"0\r\n\n", "Invalid HTTP Header: 'bare LF as line terminator'"),
        (CHUNKED + b"0\r\nX-T: 1\r\nX-U: 2\n", "Invalid HTTP Header: 'bare LF as line terminator'"),
        (CHUNKED + b"5\rhello", "Invalid chunk size: b'5\\rh'"),  # a bare CR
        (CHUNKED + b"5;a\rb", "Invalid chunk size: b'5;a\\rb'"),
        (CHUNKED + b"0\r\nX-T: a\rb", "Invalid HTTP Header: 'bare CR or control character'"),
        (CHUNKED + b"5;a=\x01", "Invalid chunk size: b'5;a=\\x01'"),  # a control character
        (CHUNKED + b"0\r\nX-T: a\x7f", "Invalid HTTP Header: 'bare CR or control character'"),
        (CHUNKED + b"z", "Invalid chunk size: b'z'"),  # a size no byte to come makes one
        (CHUNKED + b"5 5", "Invalid chunk size: b'5 5'"),
        (CHUNKED + b";a", "Invalid chunk size: b';'"),  # no size before its extension
        (CHUNKED + b"5 \r\n", "Invalid chunk size: b'5 '"),  # BWS with no extension after it
    ],
)
def test_chunked_framing_that_cannot_become_valid_is_the_pollers_to_refuse(request_bytes, refusal):
    # gunicorn would refuse it too, once it had a whole line, which may never come: the poller
    # answers 400 itself, the moment the bytes prove it, as a thread would have (`refusal`).
    scan = RequestScan(LIMITS)
    assert scan.is_in(request_bytes)
    assert str(scan.refusal) == refusal
    assert not scan.too_large


def test_framing_that_cannot_become_valid_is_found_however_it_arrives():
    # Fed a byte at a time, where a line ends or a CR stands is found across arrivals too.
    for request_bytes in [
        CHUNKED + b"5\r\nhello\r\n0\r\nX-T: 1\n",
        CHUNKED + b"5\r\nhello\n",
        CHUNKED + b"5\r\nhello\r\n5 5",
        CHUNKED + b"5\r\nhello\r\n0\r\n\n",
        CHUNKED + b"5;a\rb",
        CHUNKED + b"12;a\n",
    ]:
        scan = RequestScan(LIMITS)
        fed = bytearray(CHUNKED)
        assert not scan.is_in(fed)
        for byte in request_bytes[len(CHUNKED) : -1]:
            fed.append(byte)
            assert not scan.is_in(fed), bytes(fed)
        fed.append(request_bytes[-1])
        assert scan.is_in(fed)
        assert scan.refusal is not None, bytes(fed)


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
        CHUNKED + b"5\r",  # a CR whose LF is to come
        CHUNKED + b"5 ",  # BWS, an extension to come
        CHUNKED + b'5 \t;a="b\\',  # in a quoted string
        CHUNKED + b'5;a="\x80\t"',  # obs-text and HTAB in one
        CHUNKED + b"5\r\nhe\rlo",  # a CR in the data is data
        CHUNKED + b"5\r\nhe\nlo\r\n0\r\n",  # and so is an LF
        CHUNKED + b"0\r\nX-T: a\tb\r",
        POST + b"Content-Length: 1000\r\n\r\n",  # exactly the body limit
        POST + b"Content-Length: 00000000000000001000\r\n\r\n",  # 1*DIGIT, as gunicorn reads it
        CHUNKED + b"000000000000003e8\r\n",  # any number of hex digits, as gunicorn reads them
        CHUNKED + b"1\r\na\r\n" * 200,  # 200 bytes of a body, in 1 200
        CHUNKED + FRAMED_BYTE * 600,  # 600 bytes in 58 200
        CHUNKED + b"1;" + b"e" * 150 + b"\r\na",  # a size line longer than 100, whole: gunicorn
        # takes it, handed all of it at once
        CHUNKED + b"0\r\nX-T: " + b"t" * 1990,  # a trailer section within gunicorn's limit
        b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n",  # HTTP/1.0 needs no Host
        POST + b"X-A: 1\r\n" * 17 + b"Content-Length: 5\r\n\r\n",  # 20 fields
        POST + b"X_A: 1\r\n" * 30 + b"Content-Length: 5\r\n\r\n",  # dropped, not counted
    ],
)
def test_what_waits_for_more_of_its_body(request_bytes):
    scan = RequestScan(LIMITS)
    assert not scan.is_in(request_bytes)
    assert scan.awaits_body
    assert not scan.too_large


def test_an_http10_client_is_never_told_to_continue():
    # RFC 9110 §10.1.1: no 100 (Continue) to an HTTP/1.0 client, which may not know it; its
    # body is waited for all the same.
    scan = RequestScan(LIMITS)
    assert not scan.is_in(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert scan.awaits_body
    assert not scan.expects_continue


@pytest.mark.parametrize("cut", [1, 2, 3])
@pytest.mark.parametrize(
    "request_bytes",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", POST + b"Content-Length: 5\r\n\r\nhello"],
)
def test_a_head_whose_end_is_split_between_arrivals_is_found(request_bytes, cut):
    # The search resumes where the end could have begun, not where the bytes stopped.
    head_end = request_bytes.index(b"\r\n\r\n") + 4
    scan = RequestScan(LIMITS)
    assert not scan.is_in(request_bytes[: head_end - cut])
    if head_end == len(request_bytes):  # no body
        assert scan.is_in(request_bytes)
        return
    assert not scan.is_in(request_bytes[:head_end])
    assert scan.awaits_body
    assert scan.is_in(request_bytes)


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
    assert chunk_size_or_refusal(b"1A") == 26
    assert chunk_size_or_refusal(b"5 ; name=value") == 5
    assert chunk_size_or_refusal(b'5;n="quoted"') == 5
    assert chunk_size_or_refusal(b"000000000000003e8") == 1000
    assert chunk_size_or_refusal(b"0" * 200 + b"1;a=b") == 1
    for refused in (b"", b"5 ", b"-5", b"0x5", b"5;", b"5;a b", b" 5", b"5\r;a", b"+5"):
        assert not isinstance(chunk_size_or_refusal(refused), int), refused


def test_the_limits_are_gunicorns_own():
    from gunicorn.config import Config
    from gunicorn.http.message import Request
    from gunicorn.http.unreader import IterUnreader

    for fields, field_size in ((100, 8190), (10, 1000), (0, 0)):
        cfg = Config()
        cfg.set("limit_request_fields", fields)
        cfg.set("limit_request_field_size", field_size)
        head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        request = Request(cfg, IterUnreader([head]), ("127.0.0.1", 1))
        limits = gunicorn_worker.request_limits(cfg)
        assert limits.trailer == request.body.reader.limit_trailer_section
        assert limits.chunk_line == request.body.reader.limit_chunk_size_line
        assert limits.fields == request.limit_request_fields


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


def test_a_body_that_arrived_is_not_timed_out_once_its_connection_has_a_thread(
    make_worker, connect
):
    # Its entry in the body deadlines stays until due: by then that wait is over.
    worker = make_worker(body_timeout="0.2")
    conn, client = connect(worker)
    _send(worker, conn, client, POST + b"Content-Length: 10\r\n\r\n01", first=True)
    _send(worker, conn, client, b"23456789")
    assert worker.tpool.submitted == [conn]
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # past the stale deadline, with margin
        worker.wait_for_and_dispatch_events(0.05)
        worker.murder_pending()
    assert list(worker._closing) == []
    assert worker.tpool.submitted == [conn]
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)  # no 408


@pytest.mark.parametrize("arrivals", ["at once", "head then body"])
def test_a_body_that_reaches_the_bytes_a_worker_holds_exactly_still_waits(
    make_worker, connect, monkeypatch, arrivals
):
    worker = make_worker()
    head = POST + b"Content-Length: 100\r\n\r\n"
    monkeypatch.setattr(gunicorn_worker, "MAX_HELD_BODY_BYTES", len(head) + 10)
    conn, client = connect(worker)
    if arrivals == "at once":
        _send(worker, conn, client, head + b"a" * 10, first=True)
    else:
        _send(worker, conn, client, head, first=True)
        _send(worker, conn, client, b"a" * 10)
    assert worker.tpool.submitted == []
    assert worker._held == len(head) + 10
    assert [held for _, _, held in worker._bodies] == [conn]


def test_a_connection_the_poller_cannot_hold_leaves_the_poller(make_worker, connect, monkeypatch):
    # Past the bytes a worker holds, the connection goes to a thread: its socket must no longer
    # wake the poller, whose callback would read the body the thread is reading.
    worker = make_worker()
    head = POST + b"Content-Length: 100\r\n\r\n"
    monkeypatch.setattr(gunicorn_worker, "MAX_HELD_BODY_BYTES", len(head) + 5)
    conn, client = connect(worker)
    _send(worker, conn, client, head + b"a" * 10, first=True)
    assert worker.tpool.submitted == [conn]
    assert worker._held == 0
    with pytest.raises(KeyError):
        worker.poller.get_key(conn.sock)


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


def _answer(client):
    """The one answer the worker sent before it ended the connection: (head, problem)."""
    client.settimeout(5)
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, json.loads(body)


def _too_large_answered(worker, conn, client):
    head, problem = _answer_when_ended(worker, conn, client)
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"\r\nConnection: close\r\n" in head
    assert b"\r\nX-Request-ID: body-test-1" in head  # the client's
    assert b"\r\nContent-Type: application/problem+json\r\n" in head
    # The platform's own 413 (BodySizeLimitMiddleware, the gateway), with the largest limit.
    assert problem == problem_body(413, "payload_too_large", "The request body exceeds 4096 bytes.")
    assert worker.tpool.submitted == []
    assert worker._held == 0
    assert list(worker._bodies) == [] or all(c.body_wait is None for _, _, c in worker._bodies)


def _answer_when_ended(worker, conn, client):
    assert list(worker._closing) == [conn]  # ended by the poller: its FIN follows the answer
    return _answer(client)


def test_a_chunk_past_the_body_limit_is_answered_413_from_the_poller(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    _send(worker, conn, client, CHUNKED + b"5\r\nhello\r\n", first=True)
    assert worker.tpool.submitted == []
    _send(worker, conn, client, b"FFFFFFFF\r\n")  # then a byte every few seconds
    _too_large_answered(worker, conn, client)


def test_a_chunk_past_the_body_limit_is_answered_413_at_once(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    _send(worker, conn, client, CHUNKED + b"1001\r\n", first=True)
    _too_large_answered(worker, conn, client)


@pytest.mark.parametrize(
    ("pieces", "refusal"),
    [
        # a red team's probe: a thread's gunicorn would wait for a CRLF, to the body timeout
        ([b"5\nhello\n0\n\n"], "InvalidChunkSize: Invalid chunk size: b'5\\n'"),
        (
            [b"5\r\nhel", b"lo\n"],
            "ChunkMissingTerminator: Invalid chunk terminator is not '\\r\\n': b'\\n'",
        ),
        (
            [b"0\r\nX-T: a", b"\rb"],
            "InvalidHeader: Invalid HTTP Header: 'bare CR or control character'",
        ),
        # what a thread refused at once, the poller refuses as it would have
        ([b"zz\r\n"], "InvalidChunkSize: Invalid chunk size: b'zz'"),
    ],
)
def test_chunked_framing_that_cannot_become_valid_is_answered_400_from_the_poller(
    make_worker, connect, caplog, pieces, refusal
):
    worker = make_worker()
    conn, client = connect(worker)
    with caplog.at_level(logging.WARNING, logger="test.worker"):
        _send(worker, conn, client, CHUNKED + pieces[0], first=True)
        for piece in pieces[1:]:
            assert worker.tpool.submitted == []
            _send(worker, conn, client, piece)
    head, problem = _answer_when_ended(worker, conn, client)  # nothing waits for the timeout
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), head
    assert b"\r\nConnection: close\r\n" in head
    assert b"\r\nX-Request-ID: body-test-1" in head  # the client's
    assert b"\r\nContent-Type: application/problem+json\r\n" in head
    # A thread's refusal of a request gunicorn could not parse, its document and its log line.
    kind, _, message = refusal.partition(": ")
    assert problem == problem_body(
        400, "malformed_request", f"The request is not valid HTTP/1.1: {message}"
    )
    assert caplog.messages == [f"Invalid request from ip=127.0.0.1: {kind} request_id=body-test-1"]
    assert worker.tpool.submitted == []
    assert worker._held == 0
    assert all(c.body_wait is None for _, _, c in worker._bodies)


def test_chunked_framing_far_past_its_body_is_answered_413_from_the_poller(make_worker, connect):
    worker = make_worker()  # 4 096 bytes: 2 x 4 096 + 64 KiB of framing, decoded or not
    conn, client = connect(worker)
    framed = b"1;" + b"e" * 200 + b"\r\na\r\n"
    _send(worker, conn, client, CHUNKED + framed * 300, first=True)  # 300 bytes in 62 100
    assert worker.tpool.submitted == []
    assert conn.scan.sizes == 300
    _send(worker, conn, client, framed * 60)
    _too_large_answered(worker, conn, client)


def test_a_lingering_thread_hands_back_a_chunk_past_the_limit_for_the_pollers_413(
    make_worker, connect
):
    worker = make_worker()
    conn, client = connect(worker)
    conn.init()
    request = CHUNKED + b"FFFFFFFF\r\nab"
    client.sendall(request)
    _settle(len(request), conn)
    assert worker._request_in(conn) is False
    worker.enqueue_req(conn)  # gthread's `finish_request`: bytes in the parser's buffer
    _too_large_answered(worker, conn, client)


def test_a_head_gunicorn_refuses_gets_a_thread_at_once_and_no_100(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    _send(
        worker,
        conn,
        client,
        b"POST /ns/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",  # no Host
        first=True,
    )
    assert worker.tpool.submitted == [conn]  # its 400 comes at once, from the thread
    assert not getattr(conn, "continued", False)
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)


def _fill_send_buffer(sock):
    """Send on `sock` until it takes not one byte more (its peer reads none of it)."""
    sock.setblocking(False)
    for size in (65536, 4096, 256, 16, 1):
        with contextlib.suppress(BlockingIOError):
            while sock.send(b"x" * size):
                pass


def test_a_100_continue_the_socket_does_not_take_is_left_to_gunicorn(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    head = POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    client.sendall(head)
    _settle(len(head), conn)
    _fill_send_buffer(conn.sock)  # a previous answer the client has not read
    worker.enqueue_req(conn)
    # Not held in the poller with the client never told to go on: a thread, whose gunicorn
    # sends its own 100 (bounded by the send timeout).
    assert worker.tpool.submitted == [conn]
    assert not getattr(conn, "continued", False)
    assert worker._held == 0


def test_the_rest_of_a_100_the_socket_took_in_part_goes_out_before_the_answer(make_worker, connect):
    # The poller's 100 went out in part (a nearly full send buffer): the thread sends the rest,
    # and gunicorn no 100 of its own, which would follow the first part (a corrupt stream).
    from gunicorn.glogging import Logger

    worker = make_worker()
    worker.log = Logger(worker.cfg)

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    worker.wsgi = app
    conn, client = connect(worker)
    client.sendall(
        POST + b"Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    conn.init()
    request = next(conn.parser)
    conn.continued, conn.continue_rest = True, gunicorn_worker.CONTINUE[10:]
    assert worker.handle_request(request, conn) is False  # answered; the connection closes
    client.shutdown(socket.SHUT_WR)
    conn.sock.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    assert answer.startswith(gunicorn_worker.CONTINUE[10:] + b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\nok")
    assert answer.count(b"Continue") == 1
    assert not conn.continued
    assert conn.continue_rest == b""
