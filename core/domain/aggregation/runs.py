"""What a run of a composite produced: each source's outcome and the run's overall status."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

# Runs are pruned by age in days, at most a century: an older cut-off keeps nothing more, and
# a huge one would overflow the date arithmetic (before year 1).
MAX_RETENTION_DAYS = 36_500


class RunStatus(StrEnum):
    """How a run ended."""

    COMPLETE = "complete"  # every source answered
    PARTIAL = "partial"  # only optional sources failed (200 with `errors`)
    FAILED = "failed"  # a required source failed (502 `source_failed`)


class SourceFailure(StrEnum):
    """Why a source gave no usable answer; values are the codes in a run's `errors`."""

    TIMEOUT = "source_timeout"  # no full answer within its timeout or the composite's deadline
    UNREACHABLE = "source_unreachable"  # refused, reset or unresolvable
    HTTP_ERROR = "source_http_error"  # answered with a non-2xx status
    INVALID_JSON = "source_invalid_json"  # answered with something that is not JSON
    TOO_LARGE = "source_too_large"  # answered with more bytes than allowed


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """One source's part of a run: its (shaped) body, or why it failed."""

    key: str
    required: bool
    took_ms: float
    cached: bool = False
    body: Any = None
    failure: SourceFailure | None = None
    http_status: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


def run_status(outcomes: Iterable[SourceOutcome]) -> RunStatus:
    """Failed when a required source failed, partial when only optional ones did."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if any(outcome.required for outcome in failed):
        return RunStatus.FAILED
    return RunStatus.PARTIAL if failed else RunStatus.COMPLETE


@dataclass(frozen=True, slots=True)
class RunAnswer:
    """The merged answer of one run."""

    composite: str
    status: RunStatus
    took_ms: float
    outcomes: tuple[SourceOutcome, ...]

    @property
    def partial(self) -> bool:
        return self.status is not RunStatus.COMPLETE


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """What the history keeps of one source in a run."""

    key: str
    ok: bool
    took_ms: float
    cached: bool
    code: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of run history."""

    id: str
    composite: str
    status: RunStatus
    took_ms: float
    user_id: str | None
    started_at: datetime
    sources: tuple[SourceSummary, ...]


def summarise(outcome: SourceOutcome) -> SourceSummary:
    """The history's view of one outcome."""
    return SourceSummary(
        key=outcome.key,
        ok=outcome.ok,
        took_ms=outcome.took_ms,
        cached=outcome.cached,
        code=None if outcome.failure is None else str(outcome.failure.value),
    )
