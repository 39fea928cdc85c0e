"""A request's body arrives in the worker's poller: a client that trickles one holds no thread
(raw sockets against a real gunicorn process with the platform's worker)."""

import contextlib
import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import serve, split_answer

pytestmark = pytest.mark.e2e

HEALTH_THEN_CLOSE = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
LOGIN = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
# A login the server can only answer 401 once it has read all of it: cut anywhere, it is not
# JSON (400); its padding makes it a few hundred bytes, sent in many pieces.
CREDENTIALS = json.dumps(
    {"email": "nobody@example.com", "password": "not-the-password", "pad": "p" * 400}
).encode()
BODY_LIMIT = 2048  # MAX_REQUEST_BODY_BYTES here
BODY_TIMEOUT = 2  # seconds between two pieces of a body
TRICKLE_EVERY = 0.3  # seconds between the pieces a trickling client sends, well within it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One worker of two threads; 2 s at most between two pieces of a body."""
    with serve(
        tmp_path_factory.mktemp("var"),
        GUNICORN_THREADS="2",
        GUNICORN_REQUEST_BODY_TIMEOUT=str(BODY_TIMEOUT),
        MAX_REQUEST_BODY_BYTES=str(BODY_LIMIT),
        RATELIMIT_ENABLE="0",  # many logins, all refused
    ) as running:
        yield running


def _connect(url: str) -> socket.socket:
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=10)


def _read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _chunked(body: bytes, size: int = 50) -> bytes:
    pieces = [body[at : at + size] for at in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def _framed(body: bytes, framing: str) -> tuple[bytes, bytes]:
    """A login's head (without Connection: close) and its body as sent, by its `framing`."""
    if framing == "length":
        return LOGIN + b"Content-Length: %d\r\n" % len(body), body
    return LOGIN + b"Transfer-Encoding: chunked\r\n", _chunked(body)


def _status(answer: bytes) -> str:
    return answer[9:12].decode()


# How a trickling client frames its body of 1 000 bytes: the head's end and the body's start.
TRICKLED = {
    "length": b"Content-Length: 1000\r\nConnection: close\r\n\r\n",
    "chunked": b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3e8\r\n",
    # RFC 9110's 1*DIGIT, and a size of any number of hex digits: gunicorn reads both.
    "length-zeros": b"Content-Length: 00000000000000001000\r\nConnection: close\r\n\r\n",
    "chunked-zeros": (
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n000000000000003e8\r\n"
    ),
}


class Trickle:
    """Clients that each send a request head, then its body a byte every `TRICKLE_EVERY` s,
    never reaching its end while the test runs (a body of 1 000 bytes)."""

    def __init__(self, url: str, clients: int, framing: str) -> None:
        self.sockets = [_connect(url) for _ in range(clients)]
        self.first = LOGIN + TRICKLED[framing]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        for sock in self.sockets:
            sock.sendall(self.first)
        while not self.stop.wait(TRICKLE_EVERY):
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # answered and closed: the test finds out
                    sock.sendall(b"{")

    def __enter__(self) -> "Trickle":
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


@pytest.mark.parametrize("framing", list(TRICKLED))
def test_clients_trickling_a_body_hold_no_thread(server, framing):
    # The audit's freeze: each such client took a thread for as long as it kept within the
    # body timeout, and as many as the worker has threads stopped it answering, /health too.
    with Trickle(server.url, 4, framing) as trickle:  # twice the worker's threads
        time.sleep(3 * TRICKLE_EVERY)  # every trickling client is well into its body
        started = time.monotonic()
        with _connect(server.url) as newcomer:
            newcomer.settimeout(5)
            newcomer.sendall(HEALTH_THEN_CLOSE)
            try:
                answer = _read_until_closed(newcomer)
            except TimeoutError:
                pytest.fail("a new client got no answer within 5 s")
        answered_in = time.monotonic() - started
        assert not any(  # still sending, and waited for
            select.select([sock], [], [], 0)[0] for sock in trickle.sockets
        )
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answered_in < 2, f"a new client waited {answered_in:.1f} s"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_that_stops_arriving_is_a_408_from_the_poller(server, framing):
    head, body = _framed(CREDENTIALS, framing)
    with _connect(server.url) as sock:
        sock.sendall(head + b"X-Request-ID: stalled-body-1\r\n\r\n" + body[:30])
        started = time.monotonic()
        answer = _read_until_closed(sock)
        took = time.monotonic() - started
    status, headers, problem = split_answer(answer)
    assert status.startswith("HTTP/1.1 408 "), answer
    assert headers["Connection"] == "close"
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["X-Request-ID"] == "stalled-body-1"  # the client's, as a thread's 408 keeps it
    document = json.loads(problem)
    assert (document["status"], document["code"]) == (408, "request_timeout")
    assert "body" in document["detail"]
    assert BODY_TIMEOUT - 0.5 <= took < BODY_TIMEOUT + 3
    log = (server.var_dir / "server.log").read_text()
    assert (
        f"Request body stopped arriving for {BODY_TIMEOUT} s from ip=127.0.0.1"
        " request_id=stalled-body-1"
    ) in log


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_sent_in_pieces_is_served_whole(server, framing):
    head, body = _framed(CREDENTIALS, framing)
    with _connect(server.url) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        for at in range(0, len(body), 97):
            time.sleep(0.02)
            sock.sendall(body[at : at + 97])
        answer = _read_until_closed(sock)
    status, _, document = split_answer(answer)
    assert status.startswith("HTTP/1.1 401 "), answer  # read and parsed: all of it came
    assert json.loads(document)["code"] == "invalid_credentials"


@pytest.mark.parametrize("cut", [1, 2, 3])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_head_whose_last_bytes_come_in_a_second_send_is_served(server, method, cut):
    # The end of the head (CRLF CRLF) split between two arrivals is still found.
    if method == "GET":
        head, body, status = HEALTH_THEN_CLOSE, b"", "200"
    else:
        head, body = _framed(CREDENTIALS, "length")
        head, status = head + b"Connection: close\r\n\r\n", "401"
    with _connect(server.url) as sock:
        sock.sendall(head[:-cut])
        time.sleep(0.2)  # read by the poller as an arrival of its own
        sock.sendall(head[-cut:] + body)
        answer = _answer_within(sock, BODY_TIMEOUT - 0.5)  # well before the head's 10 s
    assert _status(answer) == status, answer


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_client_that_expects_100_continue_gets_one_then_its_answer(server, framing):
    head, body = _framed(CREDENTIALS, framing)
    with _connect(server.url) as sock:
        sock.sendall(head + b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim and (chunk := sock.recv(1)):
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401 "), answer  # one interim answer, not a second
    assert json.loads(split_answer(answer)[2])["code"] == "invalid_credentials"


def test_a_length_over_the_limit_is_refused_at_once(server):
    with _connect(server.url) as sock:
        sock.settimeout(3)  # less than the body timeout: nobody waits for the body
        sock.sendall(LOGIN + b"Content-Length: %d\r\n\r\n" % (BODY_LIMIT + 1) + b"{")
        head = b""
        while b"\r\n\r\n" not in head and (chunk := sock.recv(65536)):
            head += chunk
    assert _status(head) == "413", head


def test_pipelined_requests_with_bodies_are_all_served(server):
    first_head, first_body = _framed(CREDENTIALS, "length")
    second_head, second_body = _framed(CREDENTIALS, "chunked")
    first = first_head + b"\r\n" + first_body
    second = second_head + b"\r\n" + second_body
    with _connect(server.url) as sock:
        sock.sendall(first + second[:60])  # the second's head cut short
        time.sleep(0.2)
        sock.sendall(second[60:-100])  # its body cut short
        time.sleep(0.2)
        sock.sendall(second[-100:] + first + HEALTH_THEN_CLOSE)  # all there at once
        answers = _read_until_closed(sock)
    assert answers.count(b"HTTP/1.1 401 ") == 3, answers
    assert answers.count(b"HTTP/1.1 200 ") == 1, answers
    assert b" 100 Continue" not in answers


def _answer_within(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    try:
        return _read_until_closed(sock)
    except TimeoutError:
        pytest.fail(f"no answer within {seconds} s")


def test_a_chunk_past_the_limit_is_refused_413_at_once(server):
    # A thread read such a body byte by byte to its end: declaring a huge chunk held one.
    with _connect(server.url) as sock:
        sock.sendall(
            LOGIN + b"Transfer-Encoding: chunked\r\nX-Request-ID: huge-chunk-1\r\n\r\nFFFFFFFF\r\n{"
        )
        answer = _answer_within(sock, BODY_TIMEOUT - 0.5)  # nobody waits for the body
    status, headers, problem = split_answer(answer)
    assert status == "HTTP/1.1 413 Request Entity Too Large", answer
    assert headers["Connection"] == "close"
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["X-Request-ID"] == "huge-chunk-1"
    document = json.loads(problem)
    assert (document["status"], document["code"]) == (413, "payload_too_large")
    assert document["detail"] == f"The request body exceeds {BODY_LIMIT} bytes."


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 5\r\n",  # no Host
        b"Expect: 100-continue\r\nContent-Length: 5\r\n",
        b"Host: localhost\r\nBad[Name]: x\r\nContent-Length: 5\r\n",
        b"Host: localhost\r\nBad[Name]: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n",
    ],
)
def test_a_head_refused_is_answered_at_once_without_its_body(server, fields):
    # RFC 9110 §10.1.1: the head alone decides, so neither a 100 nor a wait for the body.
    with _connect(server.url) as sock:
        sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\n" + fields + b"\r\n")
        answer = _answer_within(sock, BODY_TIMEOUT - 0.5)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert json.loads(split_answer(answer)[2])["code"] == "malformed_request"


CHUNKED_HEAD = LOGIN + b"Transfer-Encoding: chunked\r\nX-Request-ID: bad-framing-1\r\n\r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        CHUNKED_HEAD + b"5\nhello\n0\n\n",  # bare LFs throughout
        CHUNKED_HEAD + b"5\nhello\r\n0\r\n\r\n",
        CHUNKED_HEAD + b"5;a=b\n",  # ending an extension
        CHUNKED_HEAD + b"5\r\nhello\n",  # after the data
        CHUNKED_HEAD + b"5\r\nhello\r\n0\n",  # ending the last chunk's line
        CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n\n",  # ending the trailer section
        CHUNKED_HEAD + b"0\r\nX-T: 1\n",  # ending a trailer line
        CHUNKED_HEAD + b"5\rhello",  # a bare CR
        CHUNKED_HEAD + b"5\r\nhello\rX",
        CHUNKED_HEAD + b"0\r\nX-T: a\rb",
        CHUNKED_HEAD + b"zz",  # a size that no byte to come makes one
    ],
)
def test_chunked_framing_that_cannot_become_valid_is_refused_400_at_once(server, request_bytes):
    # Nothing the client sends next can fix it: neither the poller nor a thread waits for it.
    with _connect(server.url) as sock:
        sock.sendall(request_bytes)
        answer = _answer_within(sock, BODY_TIMEOUT - 0.5)
    status, headers, problem = split_answer(answer)
    assert status == "HTTP/1.1 400 Bad Request", answer
    assert headers["Connection"] == "close"
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["X-Request-ID"] == "bad-framing-1"
    document = json.loads(problem)
    assert (document["status"], document["code"]) == (400, "malformed_request")
    assert document["detail"].startswith("The request is not valid HTTP/1.1: ")


@pytest.mark.parametrize(
    "request_bytes",
    [
        LOGIN + b"Transfer-Encoding: chunked\n\r\n5\r\nhello",  # a bare LF in the head
        LOGIN + b"Transfer-Encoding: chunked\r\n\n5\r\nhello",  # ending it
        LOGIN + b"Transfer-Encoding: chunked\n\n5\nhello\n0\n\n",
        LOGIN + b"Transfer-Encoding: chunked\rX: 1\r\n\r\n5\r\nhello",  # a bare CR
    ],
)
def test_a_chunked_head_with_a_bare_lf_or_cr_is_refused_400_at_once(server, request_bytes):
    with _connect(server.url) as sock:
        sock.sendall(request_bytes)
        answer = _answer_within(sock, BODY_TIMEOUT - 0.5)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert json.loads(split_answer(answer)[2])["code"] == "malformed_request"
