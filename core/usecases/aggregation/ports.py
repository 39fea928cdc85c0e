"""Ports of the aggregation use cases: what they need from the outside world, by role.

Adapters live in `apps/aggregation` (Django ORM, httpx, the Django cache, prometheus);
unit tests use the fakes in `tests/fakes/aggregation.py`. Nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from core.domain.aggregation.budget import RunBudget
from core.domain.aggregation.composite import Composite
from core.domain.aggregation.runs import RunRecord, RunStatus, SourceFailure, SourceOutcome


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """One HTTP call to make, with its own time budget."""

    key: str
    method: str
    url: str
    timeout_ms: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A source answered 2xx with a JSON body."""

    status: int
    body: Any
    took_ms: float


@dataclass(frozen=True, slots=True)
class FetchFailed:
    """A source gave no usable answer."""

    failure: SourceFailure
    detail: str
    took_ms: float
    status: int | None = None


FetchResult = Fetched | FetchFailed


class SourceFetcher(Protocol):
    """Calls every request concurrently and returns by each request's deadline."""

    def fetch_all(
        self, requests: Sequence[SourceRequest], budget: RunBudget | None = None
    ) -> Mapping[str, FetchResult]:
        """One result per request key; a request past its `timeout_ms` is a TIMEOUT, an answer
        the `budget` (the run's, shared by its calls) does not admit by its size TOO_LARGE."""
        ...


class CompositeWrite(Enum):
    """How a composite write ended; a race lost to another writer is an outcome, not an error."""

    DONE = "done"
    NAME_TAKEN = "name_taken"  # another composite holds the name (it may have just got it)
    NOT_FOUND = "not_found"  # the composite to replace is gone (it may have just been deleted)


class CompositeRepository(Protocol):
    """Stores composites by name; names are unique however many writers race."""

    def get(self, name: str) -> Composite | None: ...

    def get_for_update(self, name: str) -> Composite | None:
        """The stored composite (never a cached copy), which no other writer can change or
        remove until the unit of work around this call ends."""
        ...

    def list(self) -> Sequence[Composite]: ...

    def exists(self, name: str) -> bool: ...

    def add(self, composite: Composite) -> CompositeWrite:
        """Insert a composite: DONE, or NAME_TAKEN with nothing written."""
        ...

    def replace(self, name: str, composite: Composite) -> CompositeWrite:
        """Overwrite the composite called `name` (which may be renamed by `composite`): DONE,
        NOT_FOUND or NAME_TAKEN, never re-creating a composite that is gone."""
        ...

    def delete(self, name: str) -> bool: ...


class SourceCache(Protocol):
    """Short-lived per-source answers; an unreachable cache behaves as an empty one."""

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Any]: ...

    def set_many(self, values: Mapping[str, Any], ttl_seconds: int) -> None: ...


class RunRecorder(Protocol):
    """Appends a run to the history."""

    def record(self, run: RunRecord) -> None: ...


class RunHistory(Protocol):
    """Reads and prunes the history of runs."""

    def matching(self, composite: str | None, status: RunStatus | None) -> Sequence[RunRecord]:
        """Runs newest first; the sequence may be lazy (sliced for pagination)."""
        ...

    def delete_started_before(self, moment: datetime) -> int: ...


class RunMetrics(Protocol):
    """Counts runs and observes sources."""

    def run_finished(self, composite: str, status: RunStatus) -> None: ...

    def source_finished(self, composite: str, outcome: SourceOutcome) -> None: ...


class IdGenerator(Protocol):
    """New unique ids (of recorded runs); injected so tests can predict them."""

    def new_id(self) -> str: ...
