"""The shared ports are satisfied by their fakes and adapters (checked by mypy on core too)."""

from datetime import UTC, datetime

from apps.common.clock import SystemClock
from core.usecases.shared.ports import Clock
from tests.fakes.clock import FakeClock


def elapsed_seconds(clock: Clock, since: datetime) -> float:
    return (clock.now() - since).total_seconds()


def test_fake_clock_moves_only_when_told():
    clock = FakeClock()
    start = clock.now()
    clock.advance(seconds=90)
    assert elapsed_seconds(clock, start) == 90
    clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2030


def test_system_clock_is_timezone_aware_utc():
    assert SystemClock().now().tzinfo is UTC
