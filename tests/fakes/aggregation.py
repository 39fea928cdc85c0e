"""In-memory doubles of the aggregation ports, for unit tests of the use cases."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.domain.aggregation.budget import RunBudget
from core.domain.aggregation.composite import Composite
from core.domain.aggregation.runs import RunRecord, RunStatus, SourceOutcome
from core.usecases.aggregation.ports import CompositeWrite, Fetched, FetchResult, SourceRequest


class InMemoryCompositeRepository:
    def __init__(self, *composites: Composite) -> None:
        self.items: dict[str, Composite] = {c.name: c for c in composites}
        self.writes = 0

    def get(self, name: str) -> Composite | None:
        return self.items.get(name)

    def get_for_update(self, name: str) -> Composite | None:
        return self.items.get(name)

    def list(self) -> Sequence[Composite]:
        return [self.items[name] for name in sorted(self.items)]

    def exists(self, name: str) -> bool:
        return name in self.items

    def add(self, composite: Composite) -> CompositeWrite:
        if composite.name in self.items:
            return CompositeWrite.NAME_TAKEN
        self.items[composite.name] = composite
        return CompositeWrite.DONE

    def replace(self, name: str, composite: Composite) -> CompositeWrite:
        self.writes += 1
        if name not in self.items:
            return CompositeWrite.NOT_FOUND
        if composite.name != name and composite.name in self.items:
            return CompositeWrite.NAME_TAKEN
        del self.items[name]
        self.items[composite.name] = composite
        return CompositeWrite.DONE

    def delete(self, name: str) -> bool:
        return self.items.pop(name, None) is not None


class OvertakenCompositeRepository(InMemoryCompositeRepository):
    """Reads answer from what the request saw (`seen`); writes, and reads under a lock
    (`get_for_update`), meet the store as concurrent writers left it (`items`): the race
    between a check and a write, made certain."""

    def __init__(self, seen: Sequence[Composite], now: Sequence[Composite]) -> None:
        super().__init__(*now)
        self.seen = {c.name: c for c in seen}

    def get(self, name: str) -> Composite | None:
        return self.seen.get(name)

    def exists(self, name: str) -> bool:
        return name in self.seen


class FakeSourceFetcher:
    """Answers from a table by key (default: `{"key": key}`); records every request."""

    def __init__(
        self, answers: Mapping[str, FetchResult] | None = None, monotonic: Any = None
    ) -> None:
        self.answers = dict(answers or {})
        self.requests: list[SourceRequest] = []
        self.budgets: list[RunBudget | None] = []  # the budget of each fetch_all, in order
        self.monotonic = monotonic
        self.advance_ms = 0.0

    def fetch_all(
        self, requests: Sequence[SourceRequest], budget: RunBudget | None = None
    ) -> Mapping[str, FetchResult]:
        self.requests.extend(requests)
        self.budgets.append(budget)
        if self.monotonic is not None:
            self.monotonic.advance(self.advance_ms / 1000)
        return {r.key: self.answers.get(r.key, Fetched(200, {"key": r.key}, 5.0)) for r in requests}


class InMemorySourceCache:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.ttls: dict[str, int] = {}

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Any]:
        return {key: self.values[key] for key in keys if key in self.values}

    def set_many(self, values: Mapping[str, Any], ttl_seconds: int) -> None:
        for key, value in values.items():
            self.values[key] = value
            self.ttls[key] = ttl_seconds


class InMemoryRunHistory:
    """`RunRecorder` and `RunHistory` in a list."""

    def __init__(self) -> None:
        self.runs: list[RunRecord] = []

    def record(self, run: RunRecord) -> None:
        self.runs.append(run)

    def matching(self, composite: str | None, status: RunStatus | None) -> Sequence[RunRecord]:
        return [
            run
            for run in sorted(self.runs, key=lambda r: r.started_at, reverse=True)
            if (composite is None or run.composite == composite)
            and (status is None or run.status is status)
        ]

    def delete_started_before(self, moment: datetime) -> int:
        kept = [run for run in self.runs if run.started_at >= moment]
        deleted = len(self.runs) - len(kept)
        self.runs = kept
        return deleted


class FakeRunMetrics:
    def __init__(self) -> None:
        self.runs: list[tuple[str, RunStatus]] = []
        self.sources: list[tuple[str, SourceOutcome]] = []

    def run_finished(self, composite: str, status: RunStatus) -> None:
        self.runs.append((composite, status))

    def source_finished(self, composite: str, outcome: SourceOutcome) -> None:
        self.sources.append((composite, outcome))


class FakeIdGenerator:
    """Hands out predictable UUIDs (…0001, …0002, …) and remembers each one."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def new_id(self) -> str:
        self.issued.append(str(uuid.UUID(int=len(self.issued) + 1)))
        return self.issued[-1]
