"""The gunicorn worker keeps serving every client while some of them misbehave (raw sockets)."""

import json
import select
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import serve, split_answer

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


# --- Slow clients: a request's head and body have deadlines, and no thread waits for a head --

PARTIAL_HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Marker: never-logged-7f3a"
NO_ANSWER_WITHIN = 5  # seconds; the newcomer's answer normally takes a few milliseconds


@pytest.fixture(scope="module")
def two_threads(tmp_path_factory):
    """Two threads and the default head timeout (10 s): a client answered within 5 s did not
    wait for a stalled client's head to time out."""
    with serve(tmp_path_factory.mktemp("var"), GUNICORN_THREADS="2") as server:
        yield server


@pytest.fixture(scope="module")
def two_threads_no_linger(tmp_path_factory):
    """As `two_threads`, but every kept-alive connection goes back to the poller at once."""
    with serve(
        tmp_path_factory.mktemp("var"), GUNICORN_THREADS="2", GUNICORN_KEEPALIVE_LINGER_MS="0"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def short_deadlines(tmp_path_factory):
    """Two threads, 1 s for a request's head and 1 s between two reads of its body."""
    with serve(
        tmp_path_factory.mktemp("var"),
        GUNICORN_THREADS="2",
        GUNICORN_REQUEST_HEAD_TIMEOUT="1",
        GUNICORN_REQUEST_BODY_TIMEOUT="1",
    ) as server:
        yield server


def _read_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length, leaving the connection open."""
    head = _read_head(sock)
    status_and_headers, _, body = head.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in status_and_headers.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return status_and_headers + b"\r\n\r\n" + body


def _answered(sock: socket.socket) -> bool:
    """Whether the server has sent anything on `sock` (or closed it), without waiting."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _answer_within(url: str, request: bytes) -> bytes:
    """What a new connection that sends `request` gets until the server closes it; fails the
    test if that takes more than 5 s."""
    with _connect(url) as sock:
        sock.settimeout(NO_ANSWER_WITHIN)
        sock.sendall(request)
        try:
            return _read_until_closed(sock)
        except TimeoutError:
            pytest.fail(f"{request[:40]!r}… was not answered within {NO_ANSWER_WITHIN} s")


def _newcomer(url: str) -> tuple[bytes, float]:
    """A new client's answer to a health check, and how long it took (at most 5 s)."""
    started = time.monotonic()
    answer = _answer_within(url, HEALTH_THEN_CLOSE)
    return answer, time.monotonic() - started


def _problem(answer: bytes) -> tuple[str, dict[str, str], dict]:
    status, headers, body = split_answer(answer)
    assert headers["Content-Type"] == "application/problem+json", answer
    return status, headers, json.loads(body)


def _stalled(url: str, clients: int, sent: bytes) -> tuple[list[bytes], float]:
    """What each of `clients` new connections that send `sent` and stall gets until the server
    closes it (10 s at most), and how long the answers took."""
    stalled = [_connect(url) for _ in range(clients)]
    try:
        started = time.monotonic()
        for sock in stalled:
            sock.settimeout(10)
            sock.sendall(sent)
        answers = [_read_until_closed(sock) for sock in stalled]
        return answers, time.monotonic() - started
    finally:
        for sock in stalled:
            sock.close()


def test_clients_stalled_inside_their_request_head_hold_no_thread(two_threads):
    # Slowloris: gthread gave a connection a thread at its first byte, and the thread read the
    # rest of the head without a timeout, so two such clients took both threads for good.
    stalled = [_connect(two_threads.url) for _ in range(3)]  # more than the worker's threads
    try:
        for sock in stalled:
            sock.sendall(PARTIAL_HEAD)
        answer, _ = _newcomer(two_threads.url)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert not any(_answered(sock) for sock in stalled)  # still waiting for their heads
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.parametrize("server", ["two_threads", "two_threads_no_linger"])
def test_kept_alive_clients_that_stall_in_their_next_request_hold_no_thread(request, server):
    # With the linger, the thread that answered saw the next request's first byte and read on;
    # without it, the poller handed the connection to a thread at that byte.
    url = request.getfixturevalue(server).url
    kept = [_connect(url) for _ in range(3)]
    try:
        for sock in kept:
            sock.sendall(HEALTH)
            assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
        for sock in kept:
            sock.sendall(PARTIAL_HEAD)
        answer, _ = _newcomer(url)
        assert answer.startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in kept:
            sock.close()


def test_large_heads_heads_in_pieces_and_pipelined_requests_are_served(two_threads):
    big_head = b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + b"".join(
        f"X-Big-{n}: {'a' * 8000}\r\n".encode() for n in range(3)
    )  # a 24 KB header block: more than one peek's worth
    huge_head = b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + b"".join(
        f"X-Huge-{n}: {'b' * 8000}\r\n".encode() for n in range(40)
    )  # 320 KB, within gunicorn's limits (100 fields of 8 190 bytes)
    for head in (big_head, huge_head):
        with _connect(two_threads.url) as sock:
            sock.sendall(head + b"Connection: close\r\n\r\n")
            assert _read_until_closed(sock).startswith(b"HTTP/1.1 200 "), len(head)
    with _connect(two_threads.url) as sock:
        sock.sendall(HEALTH[:20])
        readable, _, _ = select.select([sock], [], [], 0.2)
        assert not readable  # nothing to answer yet
        sock.sendall(HEALTH[20:])
        assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(HEALTH + HEALTH + HEALTH_THEN_CLOSE)  # pipelined
        answers = _read_until_closed(sock)
    assert answers.count(b"HTTP/1.1 200 ") == 3


def test_a_head_not_complete_within_the_head_timeout_is_a_408_and_the_connection_closes(
    short_deadlines,
):
    answers, first_answer_after = _stalled(short_deadlines.url, 3, PARTIAL_HEAD)
    for answer in answers:
        status, headers, problem = _problem(answer)
        assert status.startswith("HTTP/1.1 408 "), answer
        assert headers["Connection"] == "close"
        assert len(headers["X-Request-ID"]) == 32
        assert (problem["status"], problem["code"]) == (408, "request_timeout")
    assert first_answer_after >= 0.9  # not before the head timeout
    log = (short_deadlines.var_dir / "server.log").read_text()
    assert log.count("Request head not complete within 1 s from ip=127.0.0.1") >= 3
    assert b"never-logged-7f3a" in PARTIAL_HEAD
    assert "never-logged-7f3a" not in log


def test_a_head_trickled_a_byte_at_a_time_is_cut_at_its_deadline(short_deadlines):
    # Each byte arrives well within any per-read timeout; the deadline is for the whole head.
    with _connect(short_deadlines.url) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: ")
        started = time.monotonic()
        while time.monotonic() - started < 8:
            try:
                sock.send(b"a")
            except OSError:  # the server closed after its answer
                break
            readable, _, _ = select.select([sock], [], [], 0.1)  # a byte every 100 ms
            if readable:
                break
        else:
            pytest.fail("a trickling client was not cut off within 8 s")
        answer = _read_until_closed(sock)
        took = time.monotonic() - started
    status, _, problem = _problem(answer)
    assert (status[9:12], problem["code"]) == ("408", "request_timeout")
    assert took < 5


@pytest.mark.parametrize(
    ("request_head", "body_start"),
    [
        (  # the gateway proxy reads the body before it looks for a route
            b"POST /no-route-here HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n",
            b"amount=10",
        ),
        (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n",
            b'{"email": "nobody@example.com", "pass',
        ),
    ],
    ids=["gateway", "api"],
)
@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 100\r\n\r\n%s", b"Transfer-Encoding: chunked\r\n\r\n64\r\n%s"],
    ids=["length", "chunked"],
)
def test_a_body_that_stalls_frees_its_thread_with_a_408(
    short_deadlines, request_head, body_start, framing
):
    url = short_deadlines.url
    sent = request_head + framing % body_start
    answers, took = _stalled(url, 2, sent)  # as many clients as the worker's threads
    for answer in answers:
        status, headers, problem = _problem(answer)
        assert (status[9:12], problem["code"]) == ("408", "request_timeout"), answer
        assert headers["Connection"] == "close"  # RFC 9110 §15.5.9
    assert 0.9 <= took < 6
    answer, _ = _newcomer(url)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert "Traceback" not in (short_deadlines.var_dir / "server.log").read_text()


@pytest.mark.parametrize("kept_alive", [True, False], ids=["kept-alive", "new"])
def test_the_empty_line_allowed_before_a_request_starts_no_head_deadline(
    short_deadlines, kept_alive
):
    # RFC 9112 section 2.2 lets a client send one empty line before a request line (old
    # clients put one after a POST body). The request has not begun: the connection idles as
    # any kept-alive or new one, where it used to get a 408 at the head's deadline.
    with _connect(short_deadlines.url) as sock:
        if kept_alive:
            sock.sendall(HEALTH)
            assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"\r\n")
        readable, _, _ = select.select([sock], [], [], 3)  # three head deadlines and more
        assert not readable, sock.recv(65536)
        sock.sendall(HEALTH_THEN_CLOSE)
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    "line", [b"GET /\r\n", b"\r\nGET /health\r\n", b"GET /health HTTP/1.1 extra\r\n"]
)
def test_a_request_line_refused_on_its_own_is_answered_without_waiting_for_headers(
    two_threads, line
):
    # `GET /` is HTTP/0.9's form: no header block follows, so waiting for its end meant a 408
    # after the head timeout (10 s here) instead of the parser's 400.
    answer = _answer_within(two_threads.url, line)
    status, _, problem = _problem(answer)
    assert (status[9:12], problem["code"]) == ("400", "malformed_request"), answer


@pytest.fixture(scope="module")
def small_bodies(tmp_path_factory):
    """Bodies of at most 1 KiB (MAX_REQUEST_BODY_BYTES' smallest value)."""
    with serve(tmp_path_factory.mktemp("var"), MAX_REQUEST_BODY_BYTES="1024") as server:
        yield server


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/no-route-here"], ids=["api", "gateway"])
def test_a_413_says_whether_the_connection_stays_open(small_bodies, path):
    # The refused body is never read. gunicorn drains up to 64 KiB of it to reuse the
    # connection and closes it past that: an answer that said keep-alive and then closed left
    # the client's next request on a dead connection.
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    with _connect(small_bodies.url) as sock:
        sock.sendall(head.encode() + b"Content-Length: 2000\r\n\r\n" + b"x" * 2000)
        sock.sendall(HEALTH_THEN_CLOSE)  # drained: the connection serves on
        answers = _read_until_closed(sock)
    refused, _, served = answers.partition(b"HTTP/1.1 200 ")
    assert refused.startswith(b"HTTP/1.1 413 "), answers
    assert served, answers
    refused_headers = split_answer(refused)[1]
    assert refused_headers["Connection"] == "keep-alive"
    # Framed by its length like every other answer, not chunked (a middleware's own answer
    # does not pass Django's CommonMiddleware, which sets the length of the others).
    assert "Transfer-Encoding" not in refused_headers
    assert int(refused_headers["Content-Length"]) == len(split_answer(refused)[2])
    with _connect(small_bodies.url) as sock:
        sock.sendall(head.encode() + b"Content-Length: 100000\r\n\r\n" + b"x" * 70_000)
        status, headers, _ = split_answer(_read_until_closed(sock))
    assert (status[9:12], headers["Connection"]) == ("413", "close")


@pytest.mark.parametrize(
    "connection",
    ["X-Trace, close", "close, X-Trace", "keep-alive,close", "keep-alive\r\nConnection: close"],
    ids=["last", "first", "no-space", "second-line"],
)
def test_close_among_other_connection_options_closes_the_connection(two_threads, connection):
    # RFC 9110 §7.6.1: Connection is a list, and `close` anywhere in it ends the connection
    # after the answer. gunicorn looks for a bare `close` only: the connection stayed open and
    # the answer said keep-alive.
    request = f"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n"
    with _connect(two_threads.url) as sock:
        sock.settimeout(3)  # less than the keep-alive time the server would otherwise give it
        sock.sendall(request.encode())
        answer = _read_until_closed(sock)
    status, headers, _ = split_answer(answer)
    assert status.startswith("HTTP/1.1 200 ")
    assert headers["Connection"] == "close"
