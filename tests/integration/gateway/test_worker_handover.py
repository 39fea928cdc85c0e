"""A stopping worker hands its SO_REUSEPORT socket over: real sockets, Linux's /proc tables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from config import gunicorn_worker
from config.gunicorn_worker import listening_peers, mark, marked
from tests.factories.gunicorn_worker import main_thread_worker


def _listener(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(16)
    return sock


def _inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_other_sockets_listening_on_the_same_address_are_found(host):
    try:
        own = _listener(host=host)
    except OSError:
        pytest.skip(f"no {host} here")
    port = own.getsockname()[1]
    with own, _listener(port, host) as peer, _listener(host=host) as elsewhere:
        assert listening_peers(own.family, _inode(own)) == {_inode(peer)}
        assert listening_peers(own.family, _inode(elsewhere)) == set()
        peer.close()
        assert listening_peers(own.family, _inode(own)) == set()
        with socket.socket() as unbound:
            assert listening_peers(own.family, _inode(unbound)) is None  # not in the table


def test_a_mark_is_seen_while_it_is_held():
    name = f"platform-test-mark {os.getpid()} {time.monotonic_ns()}"
    assert not marked(name)
    with mark(name):
        assert marked(name)
        with pytest.raises(OSError, match="in use"):
            mark(name)  # one holder at a time
    assert not marked(name)


@pytest.fixture
def masters():
    """Processes standing in for gunicorn's master: one with a child, one without."""
    started = []

    def master(*, with_child: bool) -> int:
        script = "sleep 60 & wait" if with_child else "exec sleep 60"
        process = subprocess.Popen(["sh", "-c", script], start_new_session=True)
        started.append(process)
        if with_child:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            deadline = time.monotonic() + 10
            while not children.read_text().split():
                assert time.monotonic() < deadline, "the child never started"
                time.sleep(0.01)
        return process.pid

    yield master
    for process in started:
        os.killpg(process.pid, signal.SIGKILL)  # the child too
        process.wait()


@pytest.fixture
def workers(tmp_path):
    """Workers that stop: `worker(listener, master=pid)` as gunicorn forks them, poller and
    thread pool set up (the pool records the connections it gets)."""
    made = []

    def worker(listener, *, master: int, reuse_port: bool = True):
        new = main_thread_worker(
            tmp_path, listeners=[listener], master=master, reuse_port=reuse_port
        )
        new.pid = 5_000_000 + len(made)  # the arbiter sets it; beyond any real pid
        new.set_accept_enabled(True)
        made.append(new)
        return new

    yield worker
    for made_worker in made:
        made_worker.tmp.close()
        made_worker.poller.close()
        for held in made_worker._marks:
            held.close()
        for conn in made_worker.tpool.submitted:
            conn.sock.close()


def _stop(worker):
    worker.alive = False
    worker.set_accept_enabled(False)  # what gthread's run does when the worker stops


def test_a_stopping_worker_serves_its_queued_connections_and_leaves_to_the_other_socket(
    workers, masters
):
    old = _listener()
    port = old.getsockname()[1]
    worker = workers(old, master=masters(with_child=False))
    queued = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    for sock in queued:  # a connection goes to the pool once its request's head is there
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with _listener(port) as new:
        _stop(worker)
        assert old.fileno() == -1  # closed: the kernel sends new connections to `new` only
        assert len(worker.tpool.submitted) == 3  # accepted, to be served, not reset
        assert worker.nr_conns == 3
        assert worker._handover is None
        assert listening_peers(new.family, _inode(new)) == set()
    for sock in queued:
        sock.close()


def test_a_stopping_worker_keeps_its_socket_until_another_worker_listens(workers, masters):
    old = _listener()
    port = old.getsockname()[1]
    # The master has forked the new worker (its child), which has not bound its socket yet.
    worker = workers(old, master=masters(with_child=True))
    _stop(worker)
    started = time.monotonic()
    worker.wait_for_and_dispatch_events(1.0)
    assert time.monotonic() - started < 0.5  # the event loop checks often meanwhile
    assert old.fileno() != -1
    assert worker.nr_conns == 1  # gthread's stop loop goes on while the hand-over waits
    with _listener(port):
        worker.wait_for_and_dispatch_events(1.0)
        assert old.fileno() == -1
        assert worker.nr_conns == 0


def test_a_stopping_worker_keeps_its_socket_when_no_other_worker_can_take_over(
    workers, masters, monkeypatch
):
    with _listener() as old:
        alone = workers(old, master=masters(with_child=False))  # a shutdown, or `max_requests`
        _stop(alone)
        assert alone._handover is None
        assert old.fileno() != -1  # gthread closes it at the end
        assert alone.nr_conns == 0

    monkeypatch.setattr(gunicorn_worker, "HANDOVER_SECONDS", 0.05)
    gone = subprocess.Popen(["true"])
    gone.wait()
    # A child that never binds, or a master whose workers cannot be read: until the deadline.
    for master in (masters(with_child=True), gone.pid):
        with _listener() as late:
            waiting = workers(late, master=master)
            _stop(waiting)
            assert waiting._handover is not None
            deadline = time.monotonic() + 10
            while waiting._handover is not None:
                assert time.monotonic() < deadline, "the hand-over never gave up"
                waiting.wait_for_and_dispatch_events(1.0)
            assert late.fileno() != -1
            assert waiting.nr_conns == 0


def test_two_workers_that_stop_at_once_never_both_leave_the_address(workers, masters):
    first = _listener()
    port = first.getsockname()[1]
    second = _listener(port)
    master = masters(with_child=True)  # a reload: the new worker is forked, not bound yet
    one, other = workers(first, master=master), workers(second, master=master)
    _stop(one)  # sees `second`, not leaving yet: leaves to it
    _stop(other)  # sees nothing but leaving sockets: stays
    assert (first.fileno(), other._handover is not None) == (-1, True)
    assert second.fileno() != -1
    with _listener(port):  # the new worker binds
        other.wait_for_and_dispatch_events(1.0)
        assert second.fileno() == -1


def test_only_a_stop_hands_the_socket_over(workers, masters):
    master = masters(with_child=False)
    with _listener() as throttled, _listener() as shared:
        port = throttled.getsockname()[1]
        worker = workers(throttled, master=master)
        with _listener(port):
            worker.set_accept_enabled(False)  # at `worker_connections`: still alive
            assert throttled.fileno() != -1
            assert not worker._handover_began
        # A socket the workers share (no `reuse_port`): the others accept from it.
        _stop(workers(shared, master=master, reuse_port=False))
        assert shared.fileno() != -1


def test_what_the_worker_cannot_look_up_stays_as_gthread_has_it(workers, masters, tmp_path):
    master = masters(with_child=False)
    with socket.socket(socket.AF_UNIX) as unix, socket.socket() as unlisted:
        unix.bind(str(tmp_path / "gunicorn.sock"))
        unix.listen()
        unlisted.bind(("127.0.0.1", 0))  # bound, not listening: not in the listening sockets
        for listener in (unix, unlisted):
            worker = workers(listener, master=master)
            _stop(worker)
            assert (listener.fileno() != -1, worker._handover, worker.nr_conns) == (True, None, 0)
