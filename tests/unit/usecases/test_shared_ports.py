"""The system clock adapter of the shared `Clock` port."""

from datetime import UTC

from apps.common.clock import SystemClock


def test_system_clock_is_timezone_aware_utc():
    assert SystemClock().now().tzinfo is UTC
