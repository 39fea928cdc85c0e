"""Clocks that move only when told to: tests inject them instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """`Clock` whose time is set by the test (`advance`, `set`)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self._now = moment

    def sleep_until(self, moment: datetime) -> None:
        """`MomentWaiter`: the time jumps to `moment` (never back)."""
        self._now = max(self._now, moment)


class FakeMonotonic:
    """`Monotonic` whose seconds move only when the test (or a fake it drives) says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
