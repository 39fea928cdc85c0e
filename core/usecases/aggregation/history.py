"""The history of runs: listing it and pruning old rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from core.domain.aggregation.runs import MAX_RETENTION_DAYS, RunRecord, RunStatus
from core.domain.shared.result import Err, Ok, Result
from core.usecases.aggregation.errors import HistoryError
from core.usecases.aggregation.ports import RunHistory
from core.usecases.shared.ports import Clock


class ListRuns:
    """Past runs, newest first, optionally of one composite and/or one status."""

    def __init__(self, history: RunHistory) -> None:
        self._history = history

    def execute(
        self, *, composite: str | None = None, status: RunStatus | None = None
    ) -> Sequence[RunRecord]:
        """The runs themselves, not a `Result`: a listing has no error to report (an unknown
        composite or a status no run has matches none)."""
        return self._history.matching(composite, status)


class PruneRuns:
    """Delete runs that started more than `older_than_days` days ago."""

    def __init__(self, history: RunHistory, clock: Clock) -> None:
        self._history = history
        self._clock = clock

    def execute(self, *, older_than_days: int) -> Result[int, HistoryError]:
        """Ok(number of deleted runs); Err when the age is negative or over a century."""
        if not 0 <= older_than_days <= MAX_RETENTION_DAYS:
            return Err(HistoryError.INVALID_AGE)
        cutoff = self._clock.now() - timedelta(days=older_than_days)
        return Ok(self._history.delete_started_before(cutoff))
