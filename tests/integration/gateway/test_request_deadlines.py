"""The platform's gthread worker gives a thread no connection before its request head is all
there, ends heads that take too long, and bounds each wait for a client once a head is parsed.

Real loopback TCP connections into a worker built in-process; its pool only records what it
was given (a thread would parse the head).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from gunicorn.http.message import MAX_REQUEST_LINE

from config import gunicorn_worker
from config.gunicorn_worker import head_is_in, head_limit, set_io_timeouts
from tests.factories.gunicorn_worker import main_thread_worker

HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
PARTIAL = b"GET /health HTTP/1.1\r\nHost: local"
NO_EVENT = 0.05  # seconds a poller that should see nothing is given to see something


@pytest.fixture
def make_worker(monkeypatch, tmp_path):
    workers = []

    def make(head_timeout="5", body_timeout="30", **settings):
        monkeypatch.setenv("GUNICORN_REQUEST_HEAD_TIMEOUT", head_timeout)
        monkeypatch.setenv("GUNICORN_REQUEST_BODY_TIMEOUT", body_timeout)
        worker = main_thread_worker(tmp_path, **settings)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.poller.close()
        worker.tmp.close()


def _dispatch(worker, timeout=NO_EVENT):
    worker.wait_for_and_dispatch_events(timeout)


def _settle(client_sent, conn):
    """Wait (10 s at most) until what the client sent is in the worker's socket."""
    deadline = time.monotonic() + 10
    while len(conn.sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)) < client_sent:
        assert time.monotonic() < deadline, "the bytes never arrived"
        threading.Event().wait(0.001)


def _holding_a_head(worker, connect):
    """A new connection that sent part of a head (`PARTIAL`), given to the worker, whose poller
    now holds it: (the worker's TConn, the client socket)."""
    conn, client = connect(worker)
    client.sendall(PARTIAL)
    _settle(len(PARTIAL), conn)
    worker.enqueue_req(conn)
    return conn, client


def test_a_complete_head_goes_to_a_thread_at_once(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    client.sendall(HEAD + b"POST /more")  # a pipelined request's start does not matter
    _settle(len(HEAD) + 10, conn)
    worker.enqueue_req(conn)
    assert worker.tpool.submitted == [conn]
    assert conn.data_ready  # the thread does not wait for a first byte
    # Read for the parser, which takes them from its buffer: no byte lost, none read twice.
    assert gunicorn_worker.read_ahead(conn) == HEAD + b"POST /more"


def test_a_partial_head_waits_in_the_poller_until_the_rest_comes(make_worker, connect):
    worker = make_worker()
    conn, client = _holding_a_head(worker, connect)
    assert worker.tpool.submitted == []
    assert bytes(conn.head_bytes) == PARTIAL
    # Read, the bytes no longer keep a level-triggered poller's socket readable.
    assert worker.poller.select(NO_EVENT) == []
    client.sendall(b"host\r\nX-Trickle: 1")  # more, still no end: wait on
    _dispatch(worker, 10)
    assert worker.tpool.submitted == []
    assert worker.poller.select(NO_EVENT) == []
    client.sendall(b"\r\n\r\n")
    _dispatch(worker, 10)
    assert worker.tpool.submitted == [conn]
    assert conn.data_ready  # the thread does not wait for a first byte
    assert gunicorn_worker.read_ahead(conn) == PARTIAL + b"host\r\nX-Trickle: 1\r\n\r\n"
    assert worker._heads == type(worker._heads)()
    with pytest.raises(KeyError):
        worker.poller.get_key(conn.sock)


def test_a_head_that_is_read_in_pieces_keeps_the_deadline_of_its_first_byte(make_worker, connect):
    worker = make_worker()
    conn, client = _holding_a_head(worker, connect)
    deadline = conn.head_deadline
    for byte in b"host":
        client.sendall(bytes([byte]))
        _dispatch(worker, 10)
    assert conn.head_deadline == deadline
    assert deadline <= time.monotonic() + 5


def test_the_poller_wakes_for_the_nearest_head_deadline_not_a_second_later(make_worker, connect):
    # gthread's loop waits up to a second for events, then expires what is due: a head's 408
    # went out up to a second late. The wait now ends at the nearest head deadline.
    worker = make_worker()
    conn, _client = _holding_a_head(worker, connect)
    conn.head_deadline = time.monotonic() + 0.05
    started = time.monotonic()
    _dispatch(worker, 1.0)  # gthread's own timeout; nothing arrives
    assert time.monotonic() - started < 0.5


def test_a_client_that_closes_inside_its_head_goes_to_a_thread(make_worker, connect):
    # The thread reads what there is, then the end, and closes the connection (gthread's way).
    worker = make_worker()
    conn, client = _holding_a_head(worker, connect)
    client.shutdown(socket.SHUT_WR)
    _dispatch(worker, 10)
    assert worker.tpool.submitted == [conn]


def test_a_new_connection_that_sends_nothing_waits_in_the_poller(make_worker, connect):
    worker = make_worker()
    conn, client = connect(worker)
    worker.enqueue_req(conn)
    assert worker.tpool.submitted == []
    assert list(worker.pending_conns) == [conn]
    assert conn.timeout > time.monotonic() + worker.cfg.keepalive  # gthread's 5 s, then this
    client.sendall(HEAD)
    _dispatch(worker, 10)
    assert worker.tpool.submitted == [conn]


def test_a_stopping_worker_holds_a_silent_connection_2_s_at_most(make_worker, connect):
    # As gthread holds a stopping worker's kept-alive connections, for a request on its way.
    worker = make_worker()
    early, _client = connect(worker)
    worker.enqueue_req(early)
    worker.alive = False
    worker._cap_keepalive(time.monotonic() + 2)  # what gthread's run does as the worker stops
    late, _other = connect(worker)
    worker.enqueue_req(late)
    assert list(worker.pending_conns) == [early, late]
    assert all(conn.timeout <= time.monotonic() + 2 for conn in (early, late))


def test_a_head_past_the_deadline_is_answered_408_and_closed(make_worker, connect, caplog):
    worker = make_worker(head_timeout="0.1")
    conn, client = connect(worker)
    client.sendall(PARTIAL + b"\r\nAuthorization: Bearer secret-token")
    _settle(len(PARTIAL) + 36, conn)
    worker.enqueue_req(conn)
    worker.murder_pending()
    assert list(worker._heads) == [conn]  # not yet
    conn.head_deadline = time.monotonic()  # as the poller finds it 0.1 s later
    with caplog.at_level(logging.WARNING, logger="test.worker"):
        worker.murder_pending()
    answer = b""
    while chunk := client.recv(65536):  # the worker's FIN follows its answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in head
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (408, "request_timeout")
    assert problem["detail"] == "The request head did not arrive within 0.1 s."
    request_id = re.search(rb"\r\nX-Request-ID: ([0-9a-f]{32})", head).group(1).decode()
    assert caplog.messages == [
        f"Request head not complete within 0.1 s from ip=127.0.0.1 request_id={request_id}"
    ]
    assert list(worker._heads) == []
    assert list(worker._closing) == [conn]  # drained by the poller, then closed
    client.close()
    _dispatch(worker, 10)
    assert list(worker._closing) == []
    assert worker.tpool.submitted == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LFs: gunicorn refuses them as soon as it sees one
        b"GET / HTTP/1.1\r\nHost: x\nX-A: 1",
    ],
)
def test_a_head_gunicorn_refuses_from_its_first_bytes_goes_to_a_thread(
    make_worker, connect, request_bytes
):
    worker = make_worker()
    conn, client = connect(worker)
    client.sendall(request_bytes)
    _settle(len(request_bytes), conn)
    worker.enqueue_req(conn)
    assert worker.tpool.submitted == [conn]


def test_a_head_larger_than_gunicorn_allows_goes_to_a_thread_once_over_the_limit(
    make_worker, connect
):
    worker = make_worker(limit_request_fields=2, limit_request_field_size=100)
    limit = head_limit(worker.cfg)
    assert limit == 2 + 4094 + 2 + 2 * 102 + 4 + 1
    conn, client = connect(worker)
    start = b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (limit - 30)
    client.sendall(start)
    _settle(len(start), conn)
    worker.enqueue_req(conn)
    assert worker.tpool.submitted == []
    client.sendall(b"a" * 10)  # now over: the parser refuses it (431) without waiting for more
    _dispatch(worker, 10)
    assert worker.tpool.submitted == [conn]


def test_what_counts_as_a_whole_head():
    assert head_is_in(HEAD, 1000)
    assert not head_is_in(PARTIAL, 1000)
    assert not head_is_in(b"", 1000)
    assert head_is_in(PARTIAL, len(PARTIAL))
    assert head_is_in(b"GET / HTTP/1.1\nHost", 1000)
    assert not head_is_in(b"GET / HTTP/1.1\r\nHost: x\r\n", 1000)
    assert not head_is_in(b"\r\nGET /x?a=b HTTP/1.0\r\n", 1000)
    assert not head_is_in(b"GET /x HTTP/1.1", 1000)  # the line itself is not all there
    assert not head_is_in(b"\r\n", 1000)


@pytest.mark.parametrize(
    "line",
    [
        b"GET /\r\n",
        b"\r\nGET\r\n",
        b"GET / HTTP/1.1 extra\r\n",
        b"GET / HTTPS/1.1\r\n",
        b"\r\n\r\n",
    ],
)
def test_a_request_line_the_parser_refuses_on_its_own_is_a_whole_head(line):
    # gunicorn refuses it before reading a header (400): nothing more need arrive.
    assert head_is_in(line, 1000)


class _Searched(bytearray):
    """A head that records how many bytes each search for a line end in it goes through."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.spans: list[int] = []

    def find(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        self.spans.append(stop - start)
        return super().find(sub, start, stop)


def test_a_head_trickling_in_is_searched_only_where_it_grew():
    # The poller looks at a waiting head each time a few bytes arrive: searching all of it each
    # time, a request line trickled towards the head's limit (~800 KB) cost the worker's main
    # thread seconds, quadratically, while every other connection waited on it.
    head = _Searched(b"GET /")
    searched = 0
    while len(head) < 200_000:
        head += b"a" * 100
        assert not head_is_in(head, 1 << 20, searched)
        searched = len(head) - len(b"\r\n\r\n")
    assert max(head.spans) <= 2 + MAX_REQUEST_LINE + 2


def test_gunicorns_default_limits_allow_a_head_of_about_800_kb(make_worker):
    worker = make_worker()
    assert worker.head_limit == 2 + 4094 + 2 + 100 * 8192 + 4 + 1
    unlimited = make_worker(limit_request_line=0, limit_request_fields=0)
    assert unlimited.head_limit == 1 << 20


def test_a_lingering_thread_hands_back_a_next_request_whose_head_is_not_all_there(
    make_worker, connect
):
    worker = make_worker()
    conn, client = connect(worker)
    conn.init()  # a lingering connection has been served: its parser exists
    client.sendall(PARTIAL)
    _settle(len(PARTIAL), conn)
    assert worker._request_in(conn) is False
    assert gunicorn_worker.read_ahead(conn) == PARTIAL  # read, and kept for the parser
    client.sendall(b"host\r\n\r\n")
    _settle(8, conn)
    assert worker._request_in(conn) is True
    # The whole head is in the parser's buffer: the thread reads it with no system call more.
    assert gunicorn_worker.read_ahead(conn) == PARTIAL + b"host\r\n\r\n"
    with pytest.raises(BlockingIOError):  # and nothing is left in the socket
        conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)


def test_without_a_head_timeout_a_connection_gets_a_thread_at_its_first_byte(make_worker, connect):
    worker = make_worker(head_timeout="0")
    conn, client = connect(worker)
    client.sendall(PARTIAL)
    worker.enqueue_req(conn)
    assert worker.tpool.submitted == [conn]
    assert worker._request_in(conn) is True
    assert not conn.data_ready  # the thread waits for data as in gthread


def test_the_timeouts_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("GUNICORN_REQUEST_HEAD_TIMEOUT", raising=False)
    monkeypatch.delenv("GUNICORN_REQUEST_BODY_TIMEOUT", raising=False)
    assert gunicorn_worker.request_head_timeout() == 10
    assert gunicorn_worker.request_body_timeout() == 30
    monkeypatch.setenv("GUNICORN_REQUEST_HEAD_TIMEOUT", "2.5")
    monkeypatch.setenv("GUNICORN_REQUEST_BODY_TIMEOUT", "0")
    assert gunicorn_worker.request_head_timeout() == 2.5
    assert gunicorn_worker.request_body_timeout() == 0


@pytest.mark.parametrize(
    "variable", ["GUNICORN_REQUEST_HEAD_TIMEOUT", "GUNICORN_REQUEST_BODY_TIMEOUT"]
)
@pytest.mark.parametrize("value", ["10s", "-1", "inf", "nan", "3601"])
def test_a_bad_timeout_stops_the_worker_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    read = {
        "GUNICORN_REQUEST_HEAD_TIMEOUT": gunicorn_worker.request_head_timeout,
        "GUNICORN_REQUEST_BODY_TIMEOUT": gunicorn_worker.request_body_timeout,
    }[variable]
    with pytest.raises(ImproperlyConfigured, match=f"{variable} must be"):
        read()


# --- Once the head is parsed: each wait for the client is bounded ----------------------------


@pytest.fixture
def tcp_pair():
    """`tcp_pair()`: a new loopback connection, as (the server's end, the client's)."""
    listener = socket.create_server(("127.0.0.1", 0))
    sockets = [listener]

    def pair():
        client = socket.create_connection(listener.getsockname(), timeout=10)
        ours, _ = listener.accept()
        sockets.extend((client, ours))
        return ours, client

    yield pair
    for sock in sockets:
        sock.close()


def _timeval(sock, option):
    seconds, micros = struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, option, 16))
    return seconds + micros / 1_000_000


def test_a_read_waits_at_most_the_timeout_for_the_next_bytes(tcp_pair):
    ours, client = tcp_pair()
    set_io_timeouts(ours, 0.2)
    ours.setblocking(True)  # what gthread does before each request: the timeouts stay
    client.sendall(b"part of a body")
    assert ours.recv(100) == b"part of a body"
    started = time.monotonic()
    with pytest.raises(BlockingIOError):
        ours.recv(100)
    assert 0.15 <= time.monotonic() - started < 5


def test_a_send_is_cut_only_when_the_client_takes_nothing_for_the_timeout(tcp_pair):
    # Python's own socket timeout bounds a whole `sendall`: a large answer to a slow reader
    # would be cut however steadily it read. The kernel's bounds each wait for buffer space.
    ours, client = tcp_pair()
    for sock, option in ((ours, socket.SO_SNDBUF), (client, socket.SO_RCVBUF)):
        sock.setsockopt(socket.SOL_SOCKET, option, 16384)  # little held in between
    set_io_timeouts(ours, 1)
    answer = b"x" * (768 << 10)
    got = []

    def read_slowly():  # 16 KiB at a time, 50 ms between reads: over 2 s for the whole answer
        while chunk := client.recv(16384):
            got.append(len(chunk))
            threading.Event().wait(0.05)

    reader = threading.Thread(target=read_slowly, daemon=True)
    started = time.monotonic()
    reader.start()
    ours.sendall(answer)
    took = time.monotonic() - started
    ours.shutdown(socket.SHUT_WR)
    reader.join(timeout=60)
    assert sum(got) == len(answer)
    assert took > 1  # longer in all than the timeout, yet not cut
    idle, _ = tcp_pair()
    set_io_timeouts(idle, 0.3)
    with pytest.raises(BlockingIOError):  # a client that reads nothing
        idle.sendall(b"x" * (64 << 20))


def test_the_first_request_of_a_connection_sets_its_timeouts(make_worker, connect, monkeypatch):
    from gunicorn.workers.gthread import ThreadWorker

    worker = make_worker(body_timeout="2.5")
    conn, _client = connect(worker)
    monkeypatch.setattr(ThreadWorker, "handle_request", lambda self, req, conn: True)
    request = type("Request", (), {"version": (1, 1), "headers": [("HOST", "localhost")]})()
    assert worker.handle_request(request, conn) is True
    assert _timeval(conn.sock, socket.SO_RCVTIMEO) == 2.5
    assert _timeval(conn.sock, socket.SO_SNDTIMEO) == 2.5
    # An upgrade to HTTP/2 (gthread's) leaves its reads without them.
    monkeypatch.setattr(ThreadWorker, "handle_h2c_upgrade", lambda self, conn, req, s: False)
    worker.handle_h2c_upgrade(conn, request, None)
    assert _timeval(conn.sock, socket.SO_RCVTIMEO) == 0


def test_an_answer_the_client_stops_reading_closes_the_connection_quietly(
    make_worker, connect, monkeypatch, caplog
):
    from gunicorn.workers.gthread import ThreadWorker

    worker = make_worker(body_timeout="0.2")
    conn, _client = connect(worker)
    conn.sock.setblocking(True)
    monkeypatch.setattr(  # an answer larger than the socket buffers, which nobody reads
        ThreadWorker, "handle_request", lambda self, req, conn: conn.sock.sendall(b"x" * (64 << 20))
    )
    request = type("Request", (), {"version": (1, 1), "headers": [("HOST", "localhost")]})()
    with caplog.at_level(logging.WARNING, logger="test.worker"), pytest.raises(StopIteration):
        worker.handle_request(request, conn)  # gthread closes the connection on StopIteration
    assert caplog.messages == ["Timed out after 0.2 s waiting for the client, ip=127.0.0.1"]


def test_a_file_answer_the_client_stops_reading_is_cut_like_any_other(
    make_worker, connect, tmp_path, caplog, monkeypatch
):
    # WhiteNoise answers a static file with `wsgi.file_wrapper`, which gunicorn sends with
    # `socket.sendfile` unless told not to: on a send that timed out, that waits for the socket
    # again, without a limit, so a client that read nothing held the thread for ever.
    # Importing config/gunicorn.py sets PROMETHEUS_MULTIPROC_DIR in os.environ when it is unset
    # (<repo>/var/prometheus/8000, which need not exist): every later subprocess that sets
    # Django up would inherit it and fail creating its metric files there.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    import config.gunicorn

    size = 32 << 20  # more than the socket buffers hold
    big = tmp_path / "static.bin"
    big.write_bytes(b"x" * size)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](big.open("rb"))

    # As config/gunicorn.py sets it (gunicorn reads any value as "no sendfile").
    worker = make_worker(body_timeout="0.2", sendfile=config.gunicorn.sendfile)
    worker.wsgi = app
    monkeypatch.setattr(worker.log, "access", lambda *args: None, raising=False)
    conn, client = connect(worker)
    client.sendall(HEAD)
    conn.init()
    request = next(conn.parser)
    outcome = []

    def serve():
        try:
            worker.handle_request(request, conn)
        except StopIteration:  # gthread closes the connection on it
            outcome.append("closed")

    server = threading.Thread(target=serve, daemon=True)
    with caplog.at_level(logging.WARNING, logger="test.worker"):
        server.start()
        server.join(timeout=20)
    assert not server.is_alive(), "the thread still waits for a client that reads nothing"
    assert outcome == ["closed"]
    assert caplog.messages == ["Timed out after 0.2 s waiting for the client, ip=127.0.0.1"]


def test_a_stalled_head_larger_than_the_receive_buffer_still_waits_in_the_poller(
    make_worker, connect
):
    # Peeked and left in the socket, ~128 KB of head closed its receive window; the poller then
    # saw it readable with nothing new, took that for a close and gave it a thread, which
    # waited for the rest with no deadline. Read as it comes, any stalled head waits here.
    worker = make_worker()
    conn, client = connect(worker)
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: %s\r\n" % (n, b"v" * 8000) for n in range(24)
    )
    sender = threading.Thread(target=client.sendall, args=(head,))
    sender.start()
    worker.enqueue_req(conn)
    deadline = time.monotonic() + 10
    while len(getattr(conn, "head_bytes", b"")) < len(head):
        assert time.monotonic() < deadline, "the head was not read as it came"
        _dispatch(worker, 0.1)
    sender.join(10)
    _dispatch(worker, NO_EVENT)
    assert worker.tpool.submitted == []
    assert list(worker._heads) == [conn]
