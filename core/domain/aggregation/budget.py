"""How many bytes of source answers one run may hold: shared by all of the run's calls."""

from __future__ import annotations

import threading


class RunBudget:
    """The bytes a run's source answers may take together (`None`: no limit).

    Each answer is admitted whole or not at all, in the order the answers come in (calls run
    concurrently, so `admit` may be called from several threads at once): once the budget is
    spent, a later answer — or one larger than what is left — is refused, the others kept.
    Parsed, an answer takes tens of times its bytes; a run of 20 sources each just under the
    per-source limit held a gigabyte.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def admit(self, size: int) -> bool:
        """Take `size` bytes from what is left: False (nothing taken) when they do not fit."""
        if self._left is None:
            return True
        with self._lock:
            if size > self._left:
                return False
            self._left -= size
            return True
