"""Recent traffic per route (the status endpoint's counts and latency), over a rolling window.

Prometheus counters run since each worker started, which is right for `/metrics` but not for
"what is this route doing now". `RecentTraffic` keeps per-route counts, a latency histogram and
upstream time in 10-second buckets for the last `GATEWAY_STATUS_WINDOW_SECONDS` (300):

- recording is a few dict increments under a lock, on the request's thread;
- with Redis, a background thread of each worker adds what the worker recorded to shared
  per-bucket hashes once a second (one pipelined round trip, off the request path, idle workers
  included) and the status endpoint sums the window's hashes, so it sees every worker within
  about a second;
- without Redis (embedded mode: one worker) the buckets in this process are the figures; the
  same thread forgets buckets older than the window.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from apps.common.tracing import untraced
from apps.gateway.redis_support import redis_unavailable
from core.usecases.gateway.route_status import TrafficSummary

BUCKET_SECONDS = 10
# Upper bounds (seconds) of the latency histogram, as in apps.gateway.metrics; then +Inf.
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_EVERY_SECONDS = 1.0


@dataclass
class _Bucket:
    """One route's traffic in one 10-second bucket (or its sum over a window)."""

    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    duration_us: int = 0
    upstream_us: int = 0
    upstream_calls: int = 0

    def answered(self, status: int, seconds: float) -> None:
        self.by_status[str(status)] += 1
        self.latency[_slot(seconds)] += 1
        self.duration_us += round(seconds * 1e6)

    def called_upstream(self, seconds: float) -> None:
        self.upstream_calls += 1
        self.upstream_us += round(seconds * 1e6)

    def fields(self) -> dict[str, int]:
        """As hash fields: `s:<status>`, `l:<slot>`, `d`, `u`, `n` (non-zero ones only)."""
        out = {f"s:{status}": n for status, n in self.by_status.items() if n}
        out.update({f"l:{slot}": n for slot, n in enumerate(self.latency) if n})
        for name, value in (
            ("d", self.duration_us),
            ("u", self.upstream_us),
            ("n", self.upstream_calls),
        ):
            if value:
                out[name] = value
        return out

    def add_fields(self, fields: dict[Any, Any]) -> None:
        for raw_name, raw_value in fields.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            value = int(raw_value)
            kind, _, rest = name.partition(":")
            if kind == "s":
                self.by_status[rest] += value
            elif kind == "l" and rest.isdigit() and int(rest) < len(self.latency):
                self.latency[int(rest)] += value
            elif kind == "d":
                self.duration_us += value
            elif kind == "u":
                self.upstream_us += value
            elif kind == "n":
                self.upstream_calls += value

    def add(self, other: _Bucket) -> None:
        self.add_fields(other.fields())

    def summary(self, window_seconds: int) -> TrafficSummary:
        answered = sum(self.by_status.values())
        return TrafficSummary(
            requests_by_status={status: n for status, n in sorted(self.by_status.items()) if n},
            latency_ms_avg=round(self.duration_us / answered / 1000, 2) if answered else None,
            latency_ms_p50=_quantile(self.latency, 0.5),
            latency_ms_p95=_quantile(self.latency, 0.95),
            upstream_ms_avg=(
                round(self.upstream_us / self.upstream_calls / 1000, 2)
                if self.upstream_calls
                else None
            ),
            window_seconds=window_seconds,
        )


def _slot(seconds: float) -> int:
    for slot, bound in enumerate(LATENCY_BOUNDS):
        if seconds <= bound:
            return slot
    return len(LATENCY_BOUNDS)


def _quantile(counts: list[int], q: float) -> float | None:
    """Estimate a quantile (ms) from histogram counts, linear within a bucket."""
    total = sum(counts)
    if not total:
        return None
    target = q * total
    seen, lower = 0, 0.0
    for slot, count in enumerate(counts):
        if count and seen + count >= target:
            if slot == len(LATENCY_BOUNDS):
                return round(lower * 1000, 2)  # beyond the last bound: report the bound
            upper = LATENCY_BOUNDS[slot]
            return round((lower + (upper - lower) * (target - seen) / count) * 1000, 2)
        seen += count
        if slot < len(LATENCY_BOUNDS):
            lower = LATENCY_BOUNDS[slot]
    return None  # pragma: no cover - the loop always reaches the target


class RecentTraffic:
    """Records answers and upstream calls per route; sums the last `window_seconds`.

    `client` (redis-py) shares the figures between workers; None keeps them in this process.
    `clock` returns epoch seconds (tests move it).
    """

    def __init__(
        self,
        window_seconds: int = 300,
        client: Any | None = None,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
        flush_every: float = FLUSH_EVERY_SECONDS,
    ) -> None:
        self.window_seconds = max(BUCKET_SECONDS, int(window_seconds))
        self._client = client
        self._prefix = f"{prefix}ts:"
        self._clock = clock
        self._lock = threading.Lock()
        # (route, bucket start) → traffic; with Redis, what is not flushed yet.
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._flush_every = flush_every
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()

    def _bucket(self, route: str) -> _Bucket:
        start = int(self._clock() // BUCKET_SECONDS * BUCKET_SECONDS)
        bucket = self._buckets.get((route, start))
        if bucket is None:
            bucket = self._buckets[(route, start)] = _Bucket()
        return bucket

    def answered(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._bucket(route).answered(status, seconds)
            if self._flusher is None:
                self._start_flusher()

    def called_upstream(self, route: str, seconds: float) -> None:
        with self._lock:
            self._bucket(route).called_upstream(seconds)

    def _start_flusher(self) -> None:
        # Started by the first answer, so after gunicorn forked this worker.
        self._flusher = threading.Thread(
            target=self._flush_forever, name="gateway-traffic-flush", daemon=True
        )
        self._flusher.start()

    def _flush_forever(self) -> None:
        with untraced():  # housekeeping: no request's trace, and no trace of its own
            while not self._closed.wait(self._flush_every):
                self.flush()

    def close(self) -> None:
        """Stop the background flusher (it flushes once more)."""
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()

    def flush(self) -> None:
        """With Redis, share what this process recorded; without it, forget buckets older
        than the window."""
        oldest = self._oldest_bucket()
        with self._lock:
            if self._client is None:
                for key in [key for key in self._buckets if key[1] < oldest]:
                    del self._buckets[key]
                return
            pending, self._buckets = self._buckets, {}
        if not pending:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for (route, start), bucket in pending.items():
                key = f"{self._prefix}{route}:{start}"
                for name, value in bucket.fields().items():
                    pipe.hincrby(key, name, value)
                pipe.expire(key, self.window_seconds + 2 * BUCKET_SECONDS)
            pipe.execute()
        except RedisError as error:
            redis_unavailable("traffic", error)  # these seconds are missing from the status

    def _oldest_bucket(self) -> int:
        """The start of the oldest bucket that lies wholly inside the window."""
        start = (self._clock() - self.window_seconds) // BUCKET_SECONDS * BUCKET_SECONDS
        return int(start) + BUCKET_SECONDS

    def summary(self, route: str) -> TrafficSummary:
        """`TrafficStats`: the route's traffic over the window, from every worker."""
        total = _Bucket()
        oldest = self._oldest_bucket()
        newest = int(self._clock() // BUCKET_SECONDS * BUCKET_SECONDS)
        if self._client is not None:
            self.flush()  # this worker's latest second too
            starts = range(oldest, newest + 1, BUCKET_SECONDS)
            try:
                pipe = self._client.pipeline(transaction=False)
                for start in starts:
                    pipe.hgetall(f"{self._prefix}{route}:{start}")
                for fields in pipe.execute():
                    total.add_fields(fields)
            except RedisError as error:
                redis_unavailable("traffic", error)
            return total.summary(self.window_seconds)
        with self._lock:
            for (name, start), bucket in self._buckets.items():
                if name == route and oldest <= start <= newest:
                    total.add(bucket)
        return total.summary(self.window_seconds)
