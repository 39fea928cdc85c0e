"""The system clock's `sleep_until`, with the wall clock and the sleep injected."""

from datetime import UTC, datetime, timedelta

from apps.common.clock import SystemClock

NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_it_sleeps_once_for_what_is_left():
    slept = []
    clock = SystemClock(wall=lambda: NOON, sleep=slept.append)
    clock.sleep_until(NOON + timedelta(milliseconds=400))
    clock.sleep_until(NOON)  # now: no sleep
    clock.sleep_until(NOON - timedelta(seconds=1))
    assert slept == [0.4]


def test_a_wall_clock_stepped_back_during_the_sleep_does_not_stretch_it():
    # It read the wall clock again after each sleep: stepped back an hour (NTP, a resumed VM),
    # it slept another hour, in a refresh that held a thread.
    readings = iter([NOON, NOON - timedelta(hours=1)])
    slept = []
    SystemClock(wall=lambda: next(readings), sleep=slept.append).sleep_until(
        NOON + timedelta(milliseconds=500)
    )
    assert slept == [0.5]
