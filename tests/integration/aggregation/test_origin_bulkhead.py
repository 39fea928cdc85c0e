"""The per-origin bulkhead in front of the call threads: one failing upstream cannot take them all.

Two real loopback upstreams on different ports, a small pool (4 threads) and a small per-origin
limit, driving `HttpxSourceFetcher` on the client production uses (`source_client`).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.aggregation import fetching
from apps.aggregation.fetching import HttpxSourceFetcher, OriginBulkhead, origin_of, source_client
from core.domain.aggregation.runs import SourceFailure
from core.usecases.aggregation.ports import Fetched, SourceRequest
from tests.integration.aggregation.upstream import Upstream

THREADS = 4


@pytest.fixture
def fast():
    server = Upstream.start()
    yield server
    server.stop()


@pytest.fixture
def hanging():
    server = Upstream.start()
    yield server
    server.stop()  # releases what still hangs there


def fetcher_for(limit: int):
    client = source_client(max_connections=32)
    executor = ThreadPoolExecutor(max_workers=THREADS)
    fetcher = HttpxSourceFetcher(
        client, executor, max_body_bytes=10_000, max_calls_per_origin=limit
    )
    return fetcher, client, executor


@pytest.fixture
def built():
    made = []

    def build(limit: int) -> HttpxSourceFetcher:
        fetcher, client, executor = fetcher_for(limit)
        made.append((client, executor))
        return fetcher

    yield build
    for client, executor in made:
        executor.shutdown(wait=False, cancel_futures=True)
        client.close()


def request(key, url, timeout_ms=2000):
    return SourceRequest(key=key, method="GET", url=url, timeout_ms=timeout_ms, headers={})


def wait_until(condition, seconds=10.0):
    ends = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < ends, "timed out waiting for the upstream"
        time.sleep(0.01)


def test_a_hanging_origin_leaves_threads_for_the_others(built, fast, hanging):
    # 8 calls to an origin that never answers (until their 3 s deadline), on a pool of 4
    # threads: without a per-origin limit they take every thread, and a call to another origin
    # waits behind them past its own 2 s deadline (the audit's 502 `source_failed`).
    fetcher = built(2)
    stuck = [request(f"h{i}", hanging.url(f"/hang?ms=30000&n={i}"), 3000) for i in range(8)]
    background = threading.Thread(target=fetcher.fetch_all, args=(stuck,), daemon=True)
    background.start()
    wait_until(lambda: hanging.calls["/hang"] >= 2)
    time.sleep(0.2)  # had the limit not held, more calls would have reached the upstream now

    started = time.monotonic()
    result = fetcher.fetch_all([request("ok", fast.url("/json?name=ok"), 2000)])["ok"]
    took = time.monotonic() - started

    assert isinstance(result, Fetched), result
    assert took < 1.0, f"a healthy origin's call took {took:.2f} s behind a hanging origin"
    assert hanging.calls["/hang"] == 2  # the limit: the other six wait for the origin's slots
    background.join(10)


def test_calls_beyond_the_limit_wait_and_are_made_in_order(built, fast):
    fetcher = built(1)
    requests = [request(f"c{i}", fast.url(f"/json?delay_ms=100&name=c{i}"), 5000) for i in range(6)]
    results = fetcher.fetch_all(requests)
    assert all(isinstance(result, Fetched) for result in results.values()), results
    assert fast.arrivals == [f"/json?delay_ms=100&name=c{i}" for i in range(6)]
    assert fast.peak == 1


def test_a_call_whose_deadline_passes_while_it_waits_is_never_made(built, fast):
    fetcher = built(1)
    started = time.monotonic()
    results = fetcher.fetch_all(
        [
            request("slow", fast.url("/json?delay_ms=800&name=slow"), 5000),
            request("late", fast.url("/json?name=late"), 200),
        ]
    )
    assert results["late"].failure is SourceFailure.TIMEOUT
    assert isinstance(results["slow"], Fetched)
    # A call made after "late" would queue behind it, were it still waiting to be made: the
    # upstream receives "then" only once "late" was skipped (or, wrongly, made before it).
    then = fetcher.fetch_all([request("then", fast.url("/json?name=then"), 5000)])["then"]
    assert isinstance(then, Fetched)
    assert fast.arrivals == ["/json?delay_ms=800&name=slow", "/json?name=then"]
    assert time.monotonic() - started < 5
    # The skipped call freed no slot it never held: the limit still holds.
    fetcher.fetch_all([request(f"p{i}", fast.url(f"/json?delay_ms=100&p={i}")) for i in range(3)])
    assert fast.peak == 1


def test_the_limit_holds_under_concurrent_runs(built, fast):
    fetcher = built(2)
    barrier = threading.Barrier(4)
    outcomes = []

    def run(n: int) -> None:
        barrier.wait()
        calls = [
            request(f"r{i}", fast.url(f"/json?delay_ms=100&run={n}&i={i}"), 10_000)
            for i in range(4)
        ]
        outcomes.append(fetcher.fetch_all(calls))

    runners = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(20)
    assert len(outcomes) == 4
    assert all(isinstance(r, Fetched) for results in outcomes for r in results.values())
    assert len(fast.arrivals) == 16
    assert fast.peak == 2


def test_a_call_that_raises_frees_its_slot():
    with ThreadPoolExecutor(max_workers=2) as executor:
        bulkhead = OriginBulkhead(executor, limit=1)

        def boom() -> None:
            raise ValueError("boom")

        failed = bulkhead.submit("http://a:80", boom)
        assert isinstance(failed.exception(timeout=5), ValueError)
        assert bulkhead.submit("http://a:80", lambda: "made").result(timeout=5) == "made"


def test_a_cancelled_waiting_call_is_skipped_and_the_next_one_made():
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=4) as executor:
        bulkhead = OriginBulkhead(executor, limit=1)
        first = bulkhead.submit("http://a:80", release.wait)
        made = []
        skipped = bulkhead.submit("http://a:80", lambda: made.append("skipped"))
        after = bulkhead.submit("http://a:80", lambda: made.append("after") or "after")
        other = bulkhead.submit("http://b:80", lambda: "other")  # another origin: not held
        assert other.result(timeout=5) == "other"
        assert skipped.cancel()
        assert not after.done()
        release.set()
        assert first.result(timeout=5) is True
        assert after.result(timeout=5) == "after"
        assert made == ["after"]
        # The skipped call freed no slot it never held: the limit is still one call.
        release.clear()
        held = bulkhead.submit("http://a:80", release.wait)
        queued = bulkhead.submit("http://a:80", lambda: "queued")
        assert not queued.done()
        assert not held.done()
        release.set()
        assert queued.result(timeout=5) == "queued"


def test_a_call_cancelled_while_it_waits_for_a_thread_is_never_made():
    # Within its origin's limit the call was handed to the pool at once, and waits there for
    # a thread: its deadline passing then must still keep it from being made.
    release = threading.Event()
    made = []
    with ThreadPoolExecutor(max_workers=1) as executor:
        bulkhead = OriginBulkhead(executor, limit=2)
        busy = bulkhead.submit("http://a:80", release.wait)  # takes the only thread
        waiting = bulkhead.submit("http://b:80", lambda: made.append("cancelled"))
        assert waiting.cancel()
        release.set()
        assert busy.result(timeout=5) is True
        # One thread: this call is made only after the cancelled one was taken off the pool.
        assert bulkhead.submit("http://b:80", lambda: "later").result(timeout=5) == "later"
        assert made == []


def test_calls_refused_by_a_shut_down_pool_fail_and_free_their_slot():
    # As the interpreter exits: the pool refuses every call. Each fails with the pool's error,
    # and the slot it took is freed, so the next call of its origin fails too, never waits.
    executor = ThreadPoolExecutor(max_workers=1)
    executor.shutdown()
    bulkhead = OriginBulkhead(executor, limit=1)
    first = bulkhead.submit("http://a:80", lambda: "never")
    second = bulkhead.submit("http://a:80", lambda: "never")
    assert isinstance(first.exception(timeout=1), RuntimeError)
    assert isinstance(second.exception(timeout=1), RuntimeError)


def test_the_shared_fetcher_holds_calls_to_its_per_origin_limit(monkeypatch, fast):
    monkeypatch.setattr(fetching, "_shared", None)  # this test's own; the process's is restored
    shared = fetching.shared_fetcher(
        threads=THREADS, max_connections=THREADS, max_body_bytes=10_000, max_calls_per_origin=1
    )
    try:
        results = shared.fetch_all(
            [request(f"s{i}", fast.url(f"/json?delay_ms=150&name=s{i}")) for i in range(2)]
        )
    finally:
        shared._calls._executor.shutdown(wait=False, cancel_futures=True)
        shared._client.close()
    assert all(isinstance(result, Fetched) for result in results.values()), results
    assert fast.peak == 1  # two threads were free: only the limit kept the calls apart


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://Example.COM/a?b=1", "http://example.com:80"),
        ("HTTP://example.com:80/x", "http://example.com:80"),
        ("https://example.com/", "https://example.com:443"),
        ("https://example.com:8443/", "https://example.com:8443"),
        ("http://user:pw@[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_origins_are_scheme_host_and_port(url, origin):
    assert origin_of(url) == origin
