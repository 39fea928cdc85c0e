"""The upstream clients (libcurl, the default, and http.client) read every HTTP/1.x response
framing a real upstream may send, and refuse the malformed ones."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from apps.gateway.upstream import HttpClientUpstream
from apps.gateway.upstream_curl import CurlUpstream
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.ports import UpstreamFailure, UpstreamRequest
from tests.factories.tls import self_signed_loopback


def _thread_per_connection(listener, answer) -> None:
    """Accept on `listener` until it is closed; each connection is served on a thread of its own
    by `answer(connection, number)`, numbered from 1 in the order accepted."""

    def accept():
        number = 0
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=answer, args=(connection, number), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def _read_request(connection: socket.socket) -> bytes:
    """One request: its head, then as much body as its Content-Length says (b"" at a close).
    Reading the whole of it keeps a close after the answer from resetting the connection
    under the client's read (unread bytes make the kernel send RST)."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = connection.recv(65536)
        if not chunk:
            return request
        request += chunk
    head, _, body = request.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class CannedUpstream:
    """A loopback server that answers each request on a connection with the next canned bytes."""

    def __init__(self, *answers: bytes) -> None:
        self._answers = list(answers)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self._answers:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                while self._answers:
                    request = _read_request(connection)
                    if not request:
                        break
                    self.requests.append(request)
                    answer = self._answers.pop(0)
                    connection.sendall(answer)  # the last answer is followed by a close

    def close(self) -> None:
        self._listener.close()


def _get(client: HttpClientUpstream, url: str, method: str = "GET"):
    return client.send(UpstreamRequest(method=method, url=url, headers=(), body=None), 5.0)


CLIENTS = {"pycurl": CurlUpstream, "http.client": HttpClientUpstream}


@pytest.fixture(params=["pycurl", "http.client"])
def client(request):
    upstream = CLIENTS[request.param]()
    yield upstream
    upstream.close()


def test_chunked_body_folded_header_and_continue_are_read(client):
    server = CannedUpstream(
        b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Folded: first\r\n  second\r\n"
        b"X-Spaced:   padded  \r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: late\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nX-Second: on the same connection\r\n\r\n",
    )
    first = _get(client, server.url + "/a")
    second = _get(client, server.url + "/b")
    server.close()

    assert isinstance(first, Ok)
    assert first.value.status == 200
    assert first.value.body == b"hello world"
    headers = dict(first.value.headers)
    assert headers["X-Folded"] == "first second"
    assert headers["X-Spaced"] == "padded"
    assert "X-Interim" not in headers
    assert "X-Trailer" not in headers  # trailers are not passed on
    assert isinstance(second, Ok)
    assert second.value.status == 204
    assert second.value.body == b""
    assert dict(second.value.headers)["X-Second"] == "on the same connection"
    assert len(server.requests) == 2


def test_interim_answers_are_skipped_up_to_the_final_one(client):
    server = CannedUpstream(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    answer = _get(client, server.url)
    server.close()
    assert isinstance(answer, Ok)
    assert (answer.value.status, answer.value.body) == (200, b"ok")
    assert "Link" not in dict(answer.value.headers)


def test_repeated_equal_content_lengths_are_one(client):
    server = CannedUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
    answer = _get(client, server.url)
    server.close()
    assert isinstance(answer, Ok)
    assert answer.value.body == b"ok"


def test_http_1_0_body_until_close(client):
    server = CannedUpstream(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
    )
    until_close = _get(client, server.url)
    server.close()
    assert isinstance(until_close, Ok)
    assert until_close.value.body == b"until the end"


@pytest.mark.parametrize("length", [b"nonsense", b"-5"])
def test_an_invalid_content_length(client, length):
    # RFC 9112 §6.3: a response with an invalid Content-Length has no framing; a proxy must
    # close the connection, discard it and answer 502, as libcurl (and nginx) do. http.client,
    # lenient, finds no usable length and reads until the upstream closes.
    server = CannedUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nrest")
    answer = _get(client, server.url)
    server.close()
    if isinstance(client, HttpClientUpstream):
        assert isinstance(answer, Ok)
        assert answer.value.body == b"rest"
    else:
        assert answer == Err(UpstreamFailure.CONNECTION)


@pytest.mark.parametrize("target", ["/x?", "/x", "/x?a=1"])
def test_the_request_target_is_sent_as_given_even_with_an_empty_query(client, target):
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n")
    answer = _get(client, server.url + target)
    server.close()
    assert isinstance(answer, Ok)
    assert server.requests[0].startswith(f"GET {target} HTTP/1.1\r\n".encode())


def test_head_answers_have_no_body(client):
    server = CannedUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
    answer = _get(client, server.url, method="HEAD")
    server.close()
    assert isinstance(answer, Ok)
    assert answer.value.body == b""
    assert dict(answer.value.headers)["Content-Length"] == "42"


def test_a_head_that_carries_a_body_goes_as_a_head(client):
    server = CannedUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
    request = UpstreamRequest(method="HEAD", url=server.url + "/h", headers=(), body=b"xy")
    answer = client.send(request, 5.0)
    server.close()
    assert server.requests[0].startswith(b"HEAD /h HTTP/1.1\r\n")
    assert isinstance(answer, Ok)
    assert (answer.value.status, answer.value.body) == (200, b"")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nX-A: b\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nnot a header line\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=[
        "unknown-protocol",
        "header-line-too-long",
        "too-many-headers",
        "bare-cr-in-value",
        "nul-in-value",
        "space-in-name",
        "status-out-of-range",
        "closed-before-content-length",
        "closed-inside-the-headers",
        "conflicting-content-lengths",
        "unasked-switching-protocols",
        "line-without-colon",
        "four-digit-status",
        "status-run-into-reason",
    ],
)
def test_malformed_answers_are_connection_failures(client, answer):
    if b"not a header line" in answer and isinstance(client, HttpClientUpstream):
        pytest.skip("http.client skips a header line without a colon")
    server = CannedUpstream(answer)
    result = _get(client, server.url)
    server.close()
    assert isinstance(result, Err)
    assert result.error is UpstreamFailure.CONNECTION


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_idle_connections_the_upstream_closed_are_not_used(method):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        accepted = 0
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted += 1
            with connection:
                # The first two are kept-alive connections the upstream closes while idle.
                if accepted > 2 and connection.recv(65536):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    from apps.gateway.upstream import _Connection

    client = HttpClientUpstream()
    origin = ("http", "127.0.0.1", port)
    for _ in range(2):  # two idle connections in the pool, both closed by the upstream
        idle = _Connection("127.0.0.1", port, timeout=5)
        idle.connect()
        closed, _, _ = select.select([idle.sock], [], [], 10)  # its end of stream arrived
        assert closed, "the upstream never closed the idle connection"
        client._checkin(origin, idle)

    answer = _get(client, f"http://127.0.0.1:{port}/", method=method)
    listener.close()
    client.close()
    assert isinstance(answer, Ok), answer
    assert answer.value.body == b"ok"


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", b"{}"), ("POST", None)])
def test_a_kept_alive_connection_closed_while_idle_is_not_used(client, method, body):
    # The upstream answers, then closes the connection while it sits idle in the client's
    # cache. The next request must neither fail nor reach the upstream twice.
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    closed = threading.Event()

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                request = _read_request(connection)
                received.append(request.split(b" ", 1)[0])
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            closed.set()  # closed right after the answer: idle on the client's side

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    assert isinstance(_get(client, url), Ok)
    assert closed.wait(10)
    answer = client.send(UpstreamRequest(method, url, (), body), 5.0)
    listener.close()
    assert isinstance(answer, Ok), answer
    assert answer.value.body == b"ok"
    assert received == [b"GET", method.encode()]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("PUT", None),
        ("PUT", b"{}"),
        ("POST", None),
        ("POST", b"{}"),
        ("PATCH", b"{}"),
    ],
)
def test_a_request_read_then_dropped_is_a_connection_failure_never_sent_again(client, method, body):
    # The upstream reads the second request on a kept-alive connection and closes it without
    # answering (it crashed, or acted on it and died). The client sends it once: whether it
    # goes again is the route's `retries` to say (API.md: idempotent methods, at most
    # `retries` times), not a resend of the client's own on top of them.
    listener = socket.create_server(("127.0.0.1", 0))
    received = []

    def answer_once_then_drop(connection, _number):
        # A client that gives up on the connection may reset it under the recv: that ends it.
        with connection, contextlib.suppress(ConnectionResetError):
            while data := connection.recv(65536):
                request_line = data.split(b"\r\n", 1)[0]
                if not request_line.endswith(b" HTTP/1.1"):
                    continue  # a body that came apart from its request's head
                received.append(request_line.split(b" ", 1)[0].decode())
                if len(received) == 2:
                    return
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    _thread_per_connection(listener, answer_once_then_drop)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    assert isinstance(_get(client, url), Ok)  # the connection is now idle in the pool
    answer = client.send(UpstreamRequest(method, url, (), body), 5.0)
    listener.close()
    assert answer == Err(UpstreamFailure.CONNECTION)
    assert received == ["GET", method]


@pytest.mark.parametrize("client_class", ["pycurl", "http.client"])
@pytest.mark.parametrize("framing", ["big", "bigchunked"])
def test_answers_beyond_the_body_limit_are_refused_and_the_connection_dropped(
    upstream, client_class, framing
):
    limited = CLIENTS[client_class](max_body_bytes=5000)
    try:
        at_limit = _get(limited, f"{upstream.url}/{framing}?bytes=5000")
        assert isinstance(at_limit, Ok)
        assert at_limit.value.body == b"x" * 5000
        assert _get(limited, f"{upstream.url}/{framing}?bytes=5001") == Err(
            UpstreamFailure.TOO_LARGE
        )
        again = _get(limited, f"{upstream.url}/item")  # a clean connection, not the cut one
        assert isinstance(again, Ok)
        assert again.value.status == 200
    finally:
        limited.close()


@pytest.mark.django_db(databases=["default", "gateway"])
def test_the_proxy_answers_502_for_an_answer_too_large(proxy, upstream, add_route, settings):
    from apps.gateway import wiring

    settings.GATEWAY_MAX_RESPONSE_BYTES = 2048
    wiring.reset_state()
    add_route(upstream_url=upstream.url, retries=2)
    assert proxy.get("/orders/big?bytes=2048").status_code == 200
    refused = proxy.get("/orders/big?bytes=4096")
    assert refused.status_code == 502
    assert refused.json()["code"] == "bad_gateway"
    assert upstream.calls["/big"] == 2  # not retried


class DrippingUpstream:
    """Sends its headers at once, then its body one byte every `interval` seconds."""

    def __init__(self, length: int, interval: float) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._length, self._interval = length, interval
        self._stop = threading.Event()
        self.asked = threading.Event()  # the request has come
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            connection.recv(65536)
            self.asked.set()
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self._length)
            for _ in range(self._length):
                if self._stop.wait(self._interval):
                    return
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def test_a_body_sent_slowly_times_out_at_the_deadline_not_per_read(client):
    server = DrippingUpstream(length=100, interval=0.05)  # 5 s in all, a byte every 50 ms
    started = time.monotonic()
    result = client.send(UpstreamRequest("GET", server.url, (), None), 0.5)
    took = time.monotonic() - started
    server.close()
    assert result == Err(UpstreamFailure.TIMEOUT)
    assert took < 3.0  # per-read timeouts alone would wait for all 5 s of the body


def test_a_host_name_the_idna_codec_refuses_is_a_connection_failure(client):
    result = _get(client, "http://a..b/")  # stored before routes checked their hosts
    assert result == Err(UpstreamFailure.CONNECTION)


def _sent_fields(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    pairs = (field.partition(":") for field in fields)
    return line, {name.lower(): value.strip() for name, _, value in pairs}, body


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [
        ("GET", None, None),
        ("DELETE", None, None),
        ("POST", None, "0"),
        ("PUT", None, "0"),
        ("PATCH", b'{"a":1}', "7"),
        ("GET", b"q", "1"),  # a GET with a body: the body goes too
    ],
)
def test_the_request_goes_upstream_with_its_fields_and_nothing_of_the_client_s_own(
    client, method, body, length
):
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n")
    headers = (("X-Request-ID", "abc"), ("X-Empty", ""), ("Authorization", "Bearer t"))
    answer = client.send(UpstreamRequest(method, server.url + "/p?q=1", headers, body), 5.0)
    server.close()
    assert isinstance(answer, Ok), answer
    line, fields, sent_body = _sent_fields(server.requests[0])
    assert line == f"{method} /p?q=1 HTTP/1.1"
    if isinstance(client, HttpClientUpstream):
        fields.pop("accept-encoding")  # http.client's own `identity`
    expected = {"host": server.url.removeprefix("http://"), "x-request-id": "abc"}
    expected |= {"x-empty": "", "authorization": "Bearer t"}
    if length is not None:
        expected["content-length"] = length
    assert fields == expected  # no User-Agent, Accept, Content-Type or Expect of its own
    assert sent_body == (body or b"")[: len(sent_body)]


def test_the_client_s_own_accept_content_type_and_user_agent_pass_unchanged(client):
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n")
    headers = (("Accept", "a/b"), ("Content-Type", "c/d"), ("User-Agent", "e"))
    assert isinstance(client.send(UpstreamRequest("POST", server.url, headers, b"x"), 5.0), Ok)
    server.close()
    _, fields, _ = _sent_fields(server.requests[0])
    assert (fields["accept"], fields["content-type"], fields["user-agent"]) == ("a/b", "c/d", "e")


def test_a_proxy_in_the_environment_is_not_used(client, monkeypatch):
    server = CannedUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    answer = _get(client, server.url + "/direct")
    server.close()
    assert isinstance(answer, Ok)
    assert server.requests[0].startswith(b"GET /direct HTTP/1.1\r\n")


def test_no_time_left_or_a_url_with_controls_or_beyond_ascii_sends_nothing():
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n")
    client = CurlUpstream()
    assert client.send(UpstreamRequest("GET", server.url, (), None), 0) == Err(
        UpstreamFailure.TIMEOUT
    )
    for target in ("/\u00e9", "/a\x00b", "/a b", "/a\tb", "/a\x7fb"):
        answer = client.send(UpstreamRequest("GET", server.url + target, (), None), 5.0)
        assert answer == Err(UpstreamFailure.CONNECTION), target
    client.close()
    server.close()
    assert server.requests == []


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("pycurl", CurlUpstream), ("http.client", HttpClientUpstream)],
)
def test_the_setting_picks_the_client(settings, setting, expected):
    from apps.gateway import wiring

    settings.GATEWAY_UPSTREAM_CLIENT = setting
    wiring.reset_state()
    try:
        assert type(wiring.state().upstream) is expected
    finally:
        wiring.reset_state()


def _start_with_client(tmp_path, client: str) -> subprocess.CompletedProcess[str]:
    """Django set up in a fresh process with GATEWAY_UPSTREAM_CLIENT=client."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JWT_", "LOG_", "DJANGO_", "REDIS_", "GATEWAY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_SECRET_KEY="x" * 50,
        JWT_SIGNING_KEY="k" * 40,
        VAR_DIR=str(tmp_path),
        GATEWAY_UPSTREAM_CLIENT=client,
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_client_the_gateway_does_not_have_stops_the_start_naming_the_variable(tmp_path):
    assert _start_with_client(tmp_path, "http.client").returncode == 0
    for gone in ("urllib3", "httpx"):  # urllib3: a client once kept for comparison
        refused = _start_with_client(tmp_path, gone)
        assert refused.returncode != 0
        assert "GATEWAY_UPSTREAM_CLIENT must be one of pycurl, http.client, not" in refused.stderr


@pytest.mark.parametrize("client_class", ["pycurl", "http.client"])
@pytest.mark.parametrize(
    ("opening", "drip"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"x"),  # one header line that never ends
        (b"", b"HTTP/1.1 102 Processing\r\n\r\n"),  # interim answers, never a final one
    ],
    ids=["header-line", "interim-answers"],
)
def test_an_answer_head_dripped_for_ever_times_out_at_the_deadline(client_class, opening, drip):
    """Each read of the head gets a little, so a timeout per read never runs out: the call's
    deadline bounds the whole head (before, http.client waited as long as the drip lasted)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(opening)
            deadline = time.monotonic() + 20  # "for ever", but a failing client ends too
            while not stop.wait(0.05) and time.monotonic() < deadline:
                try:
                    connection.sendall(drip)
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    client = CLIENTS[client_class]()
    started = time.monotonic()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    result = client.send(UpstreamRequest("GET", url, (), None), 0.5)
    took = time.monotonic() - started
    stop.set()
    client.close()
    listener.close()
    assert result == Err(UpstreamFailure.TIMEOUT)
    assert took < 3.0


def test_a_head_answer_may_state_a_length_beyond_the_body_limit():
    server = CannedUpstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + b"x" * 4096,
    )
    client = CurlUpstream(max_body_bytes=1024)
    head = _get(client, server.url, method="HEAD")
    get = _get(client, server.url)  # the same handle: the limit holds again for a GET
    client.close()
    server.close()
    assert isinstance(head, Ok)
    assert dict(head.value.headers)["Content-Length"] == "4096"
    assert get == Err(UpstreamFailure.TOO_LARGE)


@pytest.mark.parametrize("trusted", [True, False])
@pytest.mark.parametrize("client_class", ["pycurl", "http.client"])
def test_tls_upstreams_are_verified_against_the_trusted_store(
    tmp_path, monkeypatch, client_class, trusted
):
    import ssl

    cert, key = map(str, self_signed_loopback(tmp_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve():
        try:
            raw, _ = listener.accept()
            with context.wrap_socket(raw, server_side=True) as connection:
                received.append(connection.recv(65536))
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
        except (OSError, ssl.SSLError):
            return  # the client refused the certificate

    threading.Thread(target=serve, daemon=True).start()
    # Python's ssl module and the libcurl client read the trusted store from here.
    monkeypatch.setenv("SSL_CERT_FILE", cert if trusted else str(tmp_path / "none.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    client = CLIENTS[client_class]()
    answer = _get(client, f"https://127.0.0.1:{listener.getsockname()[1]}/tls")
    client.close()
    listener.close()
    if trusted:
        assert isinstance(answer, Ok), answer
        assert answer.value.body == b"secret"
        assert received[0].startswith(b"GET /tls HTTP/1.1\r\n")
    else:
        assert answer == Err(UpstreamFailure.CONNECTION)
        assert not any(received)  # not a byte of the request went to the unverified peer


@pytest.mark.parametrize("client_class", ["pycurl", "http.client"])
@pytest.mark.parametrize(
    "field",
    [
        ("X-A", "a\r\nX-Injected: 1"),
        ("X-A", "a\nX-Injected: 1"),
        ("X-A", "a\x00b"),
        ("X-A", "\u20ac"),
        ("X A", "v"),
        ("X-A:", "v"),
    ],
    ids=["crlf", "lf", "nul", "beyond-latin-1", "space-in-name", "colon-in-name"],
)
def test_a_request_field_that_breaks_rfc_9110_is_never_sent(client_class, field):
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n")
    client = CLIENTS[client_class]()
    answer = client.send(UpstreamRequest("GET", server.url, (field,), None), 5.0)
    client.close()
    server.close()
    assert answer == Err(UpstreamFailure.CONNECTION)
    assert server.requests == []


def test_a_latin_1_field_value_goes_as_its_byte(client):
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert isinstance(
        client.send(UpstreamRequest("GET", server.url, (("X-A", "\u00e9"),), None), 5.0), Ok
    )
    server.close()
    assert b"\r\nX-A: \xe9\r\n" in server.requests[0]


def test_closing_the_client_while_another_thread_is_mid_call_does_not_fail():
    server = DrippingUpstream(length=20, interval=0.05)
    client = CurlUpstream()
    results = []
    caller = threading.Thread(
        target=lambda: results.append(
            client.send(UpstreamRequest("GET", server.url, (), None), 5.0)
        )
    )
    caller.start()
    assert server.asked.wait(5)  # the call is under way
    client.close()  # its handle is in use: left to the calling thread
    caller.join(10)
    server.close()
    assert results
    assert isinstance(results[0], Ok)
    assert results[0].value.body == b"x" * 20


@pytest.mark.parametrize("then_close", [True, False])
def test_libcurl_passes_on_an_answer_sent_before_the_body_was_read(then_close):
    # An upstream may refuse a large body from its headers alone (413) and answer at once; the
    # answer is what the client gets (http.client, writing the whole body first, got a 502).
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n"
                b"Connection: close\r\n\r\nbig!"
            )
            if not then_close:
                done.wait(10)  # keeps the connection open, reading nothing more
                return
            # Closes its end, then reads and drops the rest until the client closes, as servers
            # do (nginx's lingering close, gunicorn's `close_graceful`): closing with the body
            # unread would send a reset, which may reach the client before it reads the answer.
            connection.shutdown(socket.SHUT_WR)
            connection.settimeout(10)
            with contextlib.suppress(OSError):
                while connection.recv(65536):
                    pass

    threading.Thread(target=serve, daemon=True).start()
    client = CurlUpstream()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/upload"
    answer = client.send(UpstreamRequest("POST", url, (), b"x" * 8_000_000), 5.0)
    done.set()
    client.close()
    listener.close()
    assert isinstance(answer, Ok), answer
    assert (answer.value.status, answer.value.body) == (413, b"big!")


def test_a_thread_that_ends_leaves_no_libcurl_connection_open():
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    closed = threading.Semaphore(0)

    def serve(connection: socket.socket) -> None:
        with connection:
            while connection.recv(65536):
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        closed.release()  # the client closed its end

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    client = CurlUpstream()
    request = UpstreamRequest(method="GET", url=url, headers=(), body=None)
    for _ in range(5):  # a server that starts a thread per request (runserver, a live server)
        caller = threading.Thread(target=client.send, args=(request, 5.0))
        caller.start()
        caller.join()
    assert all(closed.acquire(timeout=5) for _ in range(5))
    client.close()
    listener.close()


def test_a_handle_closed_under_a_call_is_a_connection_failure_not_an_error():
    # A handle closed between a call's checkout and the transfer (no sweep or `close()` does
    # that to a thread mid-call, but should one) fails the call, never raises.
    server = CannedUpstream(b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n")
    client = CurlUpstream()
    assert isinstance(_get(client, server.url), Ok)
    checkout = client._handle

    def closed_at_checkout(table, origin):
        handle = checkout(table, origin)
        handle.curl.close()
        return handle

    client._handle = closed_at_checkout
    assert _get(client, server.url) == Err(UpstreamFailure.CONNECTION)
    server.close()


def test_a_malformed_answer_closes_its_handle_even_after_a_new_handle_table():
    # `close()` gives the threads new handle tables while a call is under way; the handle that
    # then got a malformed answer is still closed, with its connection.
    server = CannedUpstream(b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n")
    client = CurlUpstream()
    checkout, taken = client._handle, []

    def table_replaced_after_checkout(table, origin):
        taken.append(checkout(table, origin))
        client.close()  # this thread is mid-call: its handle is left to it
        assert not taken[-1].curl.closed
        return taken[-1]

    client._handle = table_replaced_after_checkout
    assert _get(client, server.url) == Err(UpstreamFailure.CONNECTION)
    server.close()
    assert taken[0].curl.closed


@pytest.mark.parametrize(
    "coding", [b"gzip", b"identity", b"chunked, chunked", b"gzip, chunked", b"chunked, gzip"]
)
def test_an_answer_with_a_transfer_coding_other_than_chunked_alone_is_refused(client, coding):
    # Read until the close (RFC 9112 §6.3), its body would still be transfer-coded, and with
    # `Transfer-Encoding` dropped as hop-by-hop a client could not tell: nginx (and so Kong)
    # answer 502 to an upstream's unknown coding; chunked is the only one HTTP/1.1 requires.
    body = b"2\r\nok\r\n0\r\n\r\n" if coding.endswith(b"chunked") else b"\x1f\x8b-coded"
    server = CannedUpstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\nConnection: close\r\n\r\n%s" % (coding, body)
    )
    assert _get(client, server.url) == Err(UpstreamFailure.CONNECTION)
    server.close()


def test_a_chunked_answer_in_any_letter_case_is_read(client):
    server = CannedUpstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ChUnKeD \r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    answer = _get(client, server.url)
    assert isinstance(answer, Ok), answer
    assert answer.value.body == b"ok"
    server.close()


@pytest.mark.parametrize("client_class", ["pycurl", "http.client"])
def test_an_answer_framed_both_ways_is_refused_and_its_connection_never_reused(client_class):
    # RFC 9112 §6.1: `Transfer-Encoding` beside `Content-Length` "ought to be handled as an
    # error" (nginx, and so Kong, answer 502). Read by its chunks, as the clients did, the rest
    # of what the upstream framed by its Content-Length stayed on the kept-alive connection and
    # became the answer to the next request sent on it: another caller's.
    rest = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned"
    chunks = b"2\r\nok\r\n0\r\n\r\n"
    framed_twice = (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s"
        % (len(chunks) + len(rest), chunks)
    )
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(connection, number):
        with connection, contextlib.suppress(OSError):
            if number == 1:
                _read_request(connection)
                connection.sendall(framed_twice)
                if _read_request(connection):  # a next request on it: the rest goes now
                    connection.sendall(rest)
                return
            while _read_request(connection):
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")

    _thread_per_connection(listener, answer)
    client = CLIENTS[client_class]()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        first = _get(client, url + "/first")
        second = _get(client, url + "/second")
    finally:
        listener.close()
        client.close()
    assert first == Err(UpstreamFailure.CONNECTION)
    assert isinstance(second, Ok), second
    assert second.value.body == b"fresh"
