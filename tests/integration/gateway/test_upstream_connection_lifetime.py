"""Idle upstream connections are bounded and released, as nginx's `keepalive` and
`keepalive_timeout` have it: at most so many upstreams keep one (per thread with libcurl, per
worker with `http.client`), one idle past the timeout is closed, and so is one to an upstream
no route uses any more. Each libcurl handle holds three descriptors; before, they stayed open
until the worker restarted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from apps.gateway.upstream import HttpClientUpstream
from apps.gateway.upstream_curl import CurlUpstream
from core.domain.shared.result import Ok
from core.usecases.gateway.ports import UpstreamRequest
from tests.fakes.clock import FakeMonotonic

CLIENTS = {"pycurl": CurlUpstream, "http.client": HttpClientUpstream}
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class KeptAliveUpstream:
    """A loopback upstream that answers every request on a connection, keeps it open until the
    client closes it, counts the connections it accepted and notes each the client closed."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        self._closed = threading.Semaphore(0)
        self.asked = threading.Event()  # with `hold`: a request came and waits for its answer
        self.hold: threading.Event | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            while _request_head(connection):
                if self.hold is not None:
                    self.asked.set()
                    self.hold.wait(10)
                connection.sendall(_OK)
        self._closed.release()

    def closed_by_client(self) -> bool:
        """Whether the client closed one more connection (waits up to 10 s for it)."""
        return self._closed.acquire(timeout=10)

    def close(self) -> None:
        self._listener.close()


def _request_head(connection: socket.socket) -> bytes:
    """A bodiless request's head, or b"" once the client closed the connection."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(65536)
        if not chunk:
            return b""
        head += chunk
    return head


def _get(client, url: str):
    answer = client.send(UpstreamRequest("GET", url + "/x", (), None), 5.0)
    assert isinstance(answer, Ok), answer
    return answer


@pytest.fixture
def upstreams():
    made: list[KeptAliveUpstream] = []

    def make(count: int) -> list[KeptAliveUpstream]:
        made.extend(KeptAliveUpstream() for _ in range(count))
        return made[-count:]

    yield make
    for server in made:
        server.close()


@pytest.fixture(params=["pycurl", "http.client"])
def clock_client(request):
    """A client of either kind on a fake clock: 60 s idle timeout, two upstreams at most."""
    clock = FakeMonotonic()
    client = CLIENTS[request.param](max_origins=2, idle_seconds=60.0, monotonic=clock)
    yield client, clock
    client.close()


def test_a_connection_is_reused_while_fresh_and_replaced_once_idle_past_the_timeout(
    clock_client, upstreams
):
    client, clock = clock_client
    (server,) = upstreams(1)
    _get(client, server.url)
    clock.advance(59.5)
    _get(client, server.url)
    assert server.accepted == 1  # fresh: the kept-alive connection carried it
    clock.advance(60.5)
    _get(client, server.url)
    assert server.closed_by_client(), "the connection idle past the timeout stayed open"
    assert server.accepted == 2


def test_a_connection_idle_exactly_the_timeout_is_replaced(clock_client, upstreams):
    client, clock = clock_client
    server, other = upstreams(2)
    _get(client, server.url)  # t=0
    clock.advance(59.5)
    _get(client, other.url)  # t=59.5: a sweep, so none is due at t=60 to close it first
    clock.advance(0.5)
    _get(client, server.url)  # t=60: the call's own check sees it idle the whole timeout
    assert server.closed_by_client(), "the connection idle for the whole timeout was reused"
    assert server.accepted == 2


def test_a_sweep_due_this_very_second_closes_connections_idle_exactly_the_timeout(
    clock_client, upstreams
):
    client, clock = clock_client
    idle, busy = upstreams(2)
    _get(client, idle.url)  # t=0
    clock.advance(59)
    _get(client, busy.url)  # t=59: a sweep, the next one due at t=60
    clock.advance(1)
    _get(client, busy.url)  # t=60: the sweep is due, and `idle` sat the whole timeout
    assert idle.closed_by_client(), "a connection idle for the whole timeout stayed open"


def test_a_call_closes_the_other_connections_idle_past_the_timeout(clock_client, upstreams):
    client, clock = clock_client
    idle, busy = upstreams(2)
    _get(client, idle.url)
    clock.advance(61)
    _get(client, busy.url)
    assert idle.closed_by_client(), "an idle connection waited for a call to its own upstream"


def test_the_least_recently_used_upstream_s_connection_goes_past_the_cap(clock_client, upstreams):
    client, clock = clock_client
    first, second, third = upstreams(3)
    for server in (first, second, first):  # `second` is now the least recently used
        _get(client, server.url)
        clock.advance(1)
    _get(client, third.url)
    assert second.closed_by_client(), "the cap of two upstreams kept a third connection"
    _get(client, first.url)
    _get(client, third.url)
    assert (first.accepted, second.accepted, third.accepted) == (1, 1, 1)


def test_connections_to_upstreams_no_route_uses_are_closed(clock_client, upstreams):
    client, _clock = clock_client
    kept, dropped = upstreams(2)
    _get(client, kept.url)
    _get(client, dropped.url)
    client.retain([kept.url + "/x", kept.url + "/elsewhere"])
    assert dropped.closed_by_client(), "a connection to an upstream no route uses stayed open"
    _get(client, kept.url)
    assert kept.accepted == 1


@pytest.mark.parametrize("closer", ["housekeeping tick", "another thread's call"])
def test_a_thread_that_serves_no_more_has_its_idle_libcurl_handles_closed(upstreams, closer):
    clock = FakeMonotonic()
    client = CurlUpstream(idle_seconds=60.0, monotonic=clock)
    idle, other = upstreams(2)
    called, done = threading.Event(), threading.Event()

    def call_then_idle() -> None:  # a worker's pool thread, which serves nothing for now
        _get(client, idle.url)
        called.set()
        done.wait(10)

    thread = threading.Thread(target=call_then_idle, daemon=True)
    thread.start()
    try:
        assert called.wait(10)
        clock.advance(61)
        if closer == "housekeeping tick":
            client.sweep()
        else:
            _get(client, other.url)
        assert idle.closed_by_client(), "an idle thread's connection stayed open"
    finally:
        done.set()
        thread.join(10)
        client.close()


def test_a_sweep_leaves_a_thread_mid_call_alone(upstreams):
    clock = FakeMonotonic()
    client = CurlUpstream(idle_seconds=60.0, monotonic=clock)
    (server,) = upstreams(1)
    server.hold = threading.Event()
    results = []
    caller = threading.Thread(
        target=lambda: results.append(
            client.send(UpstreamRequest("GET", server.url + "/x", (), None), 5.0)
        )
    )
    caller.start()
    assert server.asked.wait(10)  # the call is under way
    clock.advance(61)
    client.retain([])  # its upstream is no route's and its handle "idle" past the timeout
    client.sweep()
    server.hold.set()
    caller.join(10)
    client.close()
    assert results
    assert isinstance(results[0], Ok), results[0]


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


_UPSTREAMS = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(int(sys.argv[1]))]
for server in servers:
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
print(json.dumps([server.server_address[1] for server in servers]), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def upstream_process():
    """`count` kept-alive upstreams in a process of their own: their sockets are not ours."""
    started: list[subprocess.Popen[str]] = []

    def start(count: int) -> list[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", _UPSTREAMS, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        return [f"http://127.0.0.1:{port}" for port in json.loads(process.stdout.readline())]

    yield start
    for process in started:
        process.kill()
        process.wait(10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.mark.django_db(databases=["default", "gateway"])
@pytest.mark.parametrize("kind", ["pycurl", "http.client"])
def test_calling_many_upstreams_then_deleting_their_routes_gives_the_descriptors_back(
    settings, add_route, upstream_process, kind
):
    from apps.gateway import wiring
    from apps.gateway.entrypoint import GatewayApplication

    settings.GATEWAY_UPSTREAM_CLIENT = kind
    settings.GATEWAY_ROUTE_REFRESH_SECONDS = 60  # the callers' threads use the table loaded here
    wiring.reset_state()
    urls = upstream_process(12)
    names = [f"o{number}" for number in range(len(urls))]
    for name, url in zip(names, urls, strict=True):
        add_route(name=name, path_prefix=f"/{name}", upstream_url=url + "/x")
    application = GatewayApplication()

    def call_every_route() -> None:
        transport = httpx.WSGITransport(app=application, remote_addr="10.1.2.3")
        with httpx.Client(transport=transport, base_url="http://testserver") as proxy:
            for name in names * 2:
                assert proxy.get(f"/{name}").status_code == 200

    transport = httpx.WSGITransport(app=application, remote_addr="10.1.2.3")
    with httpx.Client(transport=transport, base_url="http://testserver") as proxy:
        assert proxy.get("/nothing-here").status_code == 404  # the table, Redis: all opened
    before = _open_descriptors()
    call_every_route()
    done = threading.Event()
    called = threading.Semaphore(0)

    def call_then_idle() -> None:  # a worker's pool thread, which serves nothing for now
        call_every_route()
        called.release()
        done.wait(10)

    threads = [threading.Thread(target=call_then_idle, daemon=True) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        assert all(called.acquire(timeout=30) for _ in threads)
        grown = _open_descriptors()
        assert grown >= before + len(urls)  # kept-alive connections, at least
        for name in names:
            assert wiring.delete_route().execute(name).is_ok()
        wiring.state().routes.current()  # this worker's reload, as its next request makes it
        after = _open_descriptors()
        assert after <= before + 2
    finally:
        done.set()
        for thread in threads:
            thread.join(10)


@pytest.mark.django_db(databases=["default", "gateway"])
@pytest.mark.parametrize("kind", ["pycurl", "http.client"])
def test_the_cap_on_upstreams_comes_from_the_settings(settings, add_route, upstreams, kind):
    from apps.gateway import wiring

    settings.GATEWAY_UPSTREAM_CLIENT = kind
    settings.GATEWAY_UPSTREAM_MAX_ORIGINS = 1
    wiring.reset_state()
    first, second = upstreams(2)
    add_route(name="first", path_prefix="/first", upstream_url=first.url + "/x")
    add_route(name="second", path_prefix="/second", upstream_url=second.url + "/x")
    from apps.gateway.entrypoint import GatewayApplication

    transport = httpx.WSGITransport(app=GatewayApplication(), remote_addr="10.1.2.3")
    with httpx.Client(transport=transport, base_url="http://testserver") as proxy:
        assert proxy.get("/first").status_code == 200
        assert proxy.get("/second").status_code == 200
    assert first.closed_by_client(), "a second upstream's connection was kept beside the first"


@pytest.mark.django_db(databases=["default", "gateway"])
def test_the_worker_s_background_check_runs_its_housekeeping_even_past_a_failure():
    from apps.gateway.route_table import VersionedRouteSource

    ran = threading.Event()

    def failing() -> None:
        raise RuntimeError("one task failed")

    routes = VersionedRouteSource(list, refresh_seconds=3600)
    routes.housekeeping.extend([failing, ran.set])
    routes.start_refreshing()
    assert ran.wait(10), "the background thread never ran the housekeeping after the check"


@pytest.mark.django_db(databases=["default", "gateway"])
@pytest.mark.parametrize("kind", ["pycurl", "http.client"])
def test_the_worker_s_housekeeping_closes_connections_idle_past_the_setting(
    settings, add_route, upstreams, kind
):
    from apps.gateway import wiring
    from apps.gateway.entrypoint import GatewayApplication

    settings.GATEWAY_UPSTREAM_CLIENT = kind
    settings.GATEWAY_UPSTREAM_IDLE_SECONDS = 30
    wiring.reset_state()
    clock = FakeMonotonic()
    wiring.state().upstream._monotonic = clock  # the client's clock, moved by this test
    (server,) = upstreams(1)
    add_route(name="first", path_prefix="/first", upstream_url=server.url + "/x")
    transport = httpx.WSGITransport(app=GatewayApplication(), remote_addr="10.1.2.3")
    with httpx.Client(transport=transport, base_url="http://testserver") as proxy:
        assert proxy.get("/first").status_code == 200
    clock.advance(31)
    for task in wiring.state().routes.housekeeping:  # what the background thread runs
        task()
    assert server.closed_by_client(), "the housekeeping left an idle connection open"


def test_an_upstream_url_with_an_unreadable_port_does_not_fail_the_reload(upstreams):
    # A row written past the route checks (by hand, in the database) reaches the reload too.
    client = HttpClientUpstream()
    (server,) = upstreams(1)
    _get(client, server.url)
    client.retain(["http://127.0.0.1:99999/x", "http://127.0.0.1:port/x"])
    assert server.closed_by_client()
    client.close()
