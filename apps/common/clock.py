"""The `Clock` port's adapter on the system clock (also the accounts' `Sleeper`)."""

import time
from datetime import UTC, datetime


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, moment: datetime) -> None:
        """Sleep until the wall clock reads `moment` (a sleep may end a little early: again)."""
        while (left := (moment - self.now()).total_seconds()) > 0:
            time.sleep(left)
