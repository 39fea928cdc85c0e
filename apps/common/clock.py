"""The `Clock` port's adapter on the system clock (also the accounts' `MomentWaiter`)."""

import time
from collections.abc import Callable
from datetime import UTC, datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SystemClock:
    """Wall-clock time in UTC."""

    def __init__(
        self,
        *,
        wall: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._wall, self._sleep = wall, sleep

    def now(self) -> datetime:
        return self._wall()

    def sleep_until(self, moment: datetime) -> None:
        """Sleep until the wall clock reads `moment`, as far as it reads now: one sleep of that
        length (`time.sleep` runs on the monotonic clock), so a wall clock stepped back
        meanwhile (NTP, a resumed VM) cannot stretch it, as a loop that read it again would."""
        left = (moment - self.now()).total_seconds()
        if left > 0:
            self._sleep(left)
