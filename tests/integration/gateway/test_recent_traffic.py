"""The status endpoint's rolling window: recent counts and latency, shared by every worker."""

import time

import pytest

from apps.gateway.traffic import BUCKET_SECONDS, RecentTraffic

NEVER = 3600  # the background flusher stays out of tests that flush by hand


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def redis_client():
    from apps.gateway.redis_support import raw_redis

    client = raw_redis()
    for key in client.scan_iter("traffic-test:*"):
        client.delete(key)
    return client


def test_counts_and_latency_cover_the_window_only():
    clock = Clock()
    recent = RecentTraffic(60, clock=clock, flush_every=NEVER)
    recent.answered("r", 200, 0.002)
    recent.answered("r", 200, 0.004)
    recent.answered("r", 502, 0.2)
    recent.called_upstream("r", 0.003)
    recent.answered("other", 200, 0.001)
    now = recent.summary("r")
    assert now.requests_by_status == {"200": 2, "502": 1}
    assert now.window_seconds == 60
    assert now.latency_ms_avg == pytest.approx(68.67, abs=0.01)
    assert 1.0 <= now.latency_ms_p50 <= 5.0
    assert 100.0 <= now.latency_ms_p95 <= 250.0
    assert now.upstream_ms_avg == 3.0

    clock.now += 30
    recent.answered("r", 200, 0.002)
    assert recent.summary("r").requests_by_status == {"200": 3, "502": 1}
    clock.now += 40  # the first requests left the 60-second window
    assert recent.summary("r").requests_by_status == {"200": 1}
    clock.now += 60
    empty = recent.summary("r")
    assert empty.requests_by_status == {}
    assert empty.latency_ms_avg is None
    assert empty.latency_ms_p50 is None
    assert empty.upstream_ms_avg is None


def test_old_buckets_are_forgotten_in_process():
    clock = Clock()
    recent = RecentTraffic(30, clock=clock, flush_every=NEVER)
    recent.answered("r", 200, 0.001)
    clock.now += 100
    recent.flush()
    assert recent._buckets == {}


def test_latency_beyond_the_last_bound_reports_the_bound():
    recent = RecentTraffic(60, clock=Clock(), flush_every=NEVER)
    recent.answered("r", 504, 30.0)
    assert recent.summary("r").latency_ms_p50 == 10_000.0


def test_workers_share_their_figures_through_redis(redis_client):
    clock = Clock()
    one = RecentTraffic(60, redis_client, "traffic-test:", clock=clock, flush_every=NEVER)
    two = RecentTraffic(60, redis_client, "traffic-test:", clock=clock, flush_every=NEVER)
    one.answered("r", 200, 0.002)
    two.answered("r", 200, 0.004)
    two.answered("r", 429, 0.001)
    two.called_upstream("r", 0.004)
    assert two.summary("r").requests_by_status == {"200": 1, "429": 1}  # one has not flushed
    one.flush()
    summary = two.summary("r")
    assert summary.requests_by_status == {"200": 2, "429": 1}
    assert summary.upstream_ms_avg == 4.0
    assert one.summary("r") == summary
    clock.now += 60 + BUCKET_SECONDS
    assert one.summary("r").requests_by_status == {}
    key = next(redis_client.scan_iter("traffic-test:ts:r:*"))
    assert 0 < redis_client.ttl(key) <= 60 + 2 * BUCKET_SECONDS


def test_redis_down_loses_those_seconds_but_answers(redis_client):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    clock = Clock()
    down = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    recent = RecentTraffic(60, down, "traffic-test:", clock=clock, flush_every=NEVER)
    recent.answered("r", 200, 0.002)
    summary = recent.summary("r")
    assert summary.requests_by_status == {}
    assert summary.window_seconds == 60


def test_a_background_thread_shares_an_idle_workers_figures(redis_client):
    clock = Clock()
    worker = RecentTraffic(60, redis_client, "traffic-test:", clock=clock, flush_every=0.01)
    reader = RecentTraffic(60, redis_client, "traffic-test:", clock=clock)
    worker.answered("r", 200, 0.002)  # and no request after it
    deadline = time.monotonic() + 5
    while reader.summary("r").requests_by_status != {"200": 1}:
        assert time.monotonic() < deadline, "the worker's figures never reached Redis"
        time.sleep(0.01)
    worker.close()
    reader.close()
