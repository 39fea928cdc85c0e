"""Pruning the run history (listing is the repository's filtering: tests/integration)."""

from datetime import timedelta

import pytest

from core.domain.aggregation.runs import RunRecord, RunStatus
from core.domain.shared.result import Err, Ok
from core.usecases.aggregation.errors import HistoryError
from core.usecases.aggregation.history import PruneRuns
from tests.fakes.aggregation import InMemoryRunHistory
from tests.fakes.clock import FakeClock


def record(clock, composite, status, days_ago):
    return RunRecord(
        id=f"{composite}-{days_ago}",
        composite=composite,
        status=status,
        took_ms=1.0,
        user_id=None,
        started_at=clock.now() - timedelta(days=days_ago),
        sources=(),
    )


def history_with_runs(clock):
    history = InMemoryRunHistory()
    for run in [
        record(clock, "a", RunStatus.COMPLETE, 1),
        record(clock, "a", RunStatus.FAILED, 10),
        record(clock, "b", RunStatus.PARTIAL, 40),
    ]:
        history.record(run)
    return history


def test_prune_deletes_runs_older_than_the_given_days():
    clock = FakeClock()
    history = history_with_runs(clock)
    assert PruneRuns(history, clock).execute(older_than_days=7) == Ok(2)
    assert [r.id for r in history.runs] == ["a-1"]


@pytest.mark.parametrize("days", [-1, 36_501, 99_999_999_999_999])
def test_prune_refuses_an_age_out_of_range(days):
    clock = FakeClock()
    assert PruneRuns(history_with_runs(clock), clock).execute(older_than_days=days) == Err(
        HistoryError.INVALID_AGE
    )
