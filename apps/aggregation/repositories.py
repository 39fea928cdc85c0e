"""Django ORM adapters of the aggregation ports: composites and the run history.

Rows are mapped to domain entities here (`_to_domain` / `_to_row`, and `source_to_domain` /
`source_to_row`, which the admin uses too) and nowhere else; every query and transaction names
the `aggregation` database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

import structlog
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, InterfaceError, transaction
from django.db.models import QuerySet
from prometheus_client import Counter

from apps.aggregation.models import CompositeRow, RunRow, SourceRow
from apps.common.integrity import unique_field
from apps.common.logging import CountedEveryFewSeconds, EveryFewSeconds
from core.domain.aggregation.composite import AuthMode, Composite, Source
from core.domain.aggregation.runs import RunRecord, RunStatus, SourceSummary
from core.usecases.aggregation.ports import CompositeWrite

DB = "aggregation"
log = structlog.get_logger(__name__)
RECORD_FAILURES = Counter(
    "platform_aggregation_run_record_failures_total",
    "Composite runs answered but not recorded (the aggregation database failed).",
)
# One `aggregation_run_not_recorded` line every 5 s per process, saying how many rows were lost
# since the last one (the counter counts every one), as the Redis outages' warnings.
_NOT_RECORDED_LOGGED = CountedEveryFewSeconds(5.0)
DEFINITION_CACHE_ERRORS = Counter(
    "platform_aggregation_definition_cache_errors_total",
    "Composite definition cache operations that failed (the database was read instead, or a "
    "cached copy was left to its TTL).",
)
# One `aggregation_definition_cache_unavailable` line every 5 s per process while the cache is
# unreachable or full (the counter counts every failed operation), as the source cache's.
_DEFINITION_CACHE_LOGGED = EveryFewSeconds(5.0)


def _name_was_taken(error: IntegrityError) -> bool:
    """Whether the write was refused for the name (it lost a race for it)."""
    return unique_field(error, CompositeRow) == "name"


class DjangoCompositeRepository:
    """`CompositeRepository` on the aggregation database."""

    def _rows(self) -> QuerySet[CompositeRow]:
        return CompositeRow.objects.using(DB).prefetch_related("sources")

    def get(self, name: str) -> Composite | None:
        row = self._rows().filter(name=name).first()
        return None if row is None else self._to_domain(row)

    def get_for_update(self, name: str) -> Composite | None:
        """Locks the composite's row, as `replace` and `delete` do first (inside a
        `DjangoUnitOfWork`: the lock lasts until it ends)."""
        row = self._rows().select_for_update().filter(name=name).first()
        return None if row is None else self._to_domain(row)

    def list(self) -> Sequence[Composite]:
        return _MappedSequence(self._rows().order_by("name"), self._to_domain)

    def exists(self, name: str) -> bool:
        return CompositeRow.objects.using(DB).filter(name=name).exists()

    def add(self, composite: Composite) -> CompositeWrite:
        row = CompositeRow()
        self._to_row(composite, row)
        try:
            with transaction.atomic(using=DB):  # a savepoint: an outer transaction survives
                row.save(using=DB, force_insert=True)
                self._save_sources(row, composite.sources)
        except IntegrityError as error:
            if not _name_was_taken(error):
                raise  # not the name: a broken invariant, not a lost race
            return CompositeWrite.NAME_TAKEN  # a concurrent create got the name first
        return CompositeWrite.DONE

    def replace(self, name: str, composite: Composite) -> CompositeWrite:
        try:
            with transaction.atomic(using=DB):
                row = CompositeRow.objects.using(DB).select_for_update().filter(name=name).first()
                if row is None:  # deleted since the caller read it: never re-create it
                    return CompositeWrite.NOT_FOUND
                self._to_row(composite, row)
                row.save(using=DB, force_update=True)
                SourceRow.objects.using(DB).filter(composite=row).delete()
                self._save_sources(row, composite.sources)
        except IntegrityError as error:
            if not _name_was_taken(error):
                raise  # not the new name: a broken invariant, not a lost race
            return CompositeWrite.NAME_TAKEN  # a concurrent create or rename got it first
        return CompositeWrite.DONE

    def delete(self, name: str) -> bool:
        with transaction.atomic(using=DB):
            # The composite's row lock first, as `replace` takes it: a racing replace and delete
            # queue on it instead of each holding rows (sources, composite) the other waits for.
            locked = CompositeRow.objects.using(DB).select_for_update().filter(name=name)
            ids = list(locked.values_list("id", flat=True))
            if not ids:
                return False
            CompositeRow.objects.using(DB).filter(id__in=ids).delete()
        return True

    @staticmethod
    def _save_sources(row: CompositeRow, sources: Sequence[Source]) -> None:
        SourceRow.objects.using(DB).bulk_create(
            [source_to_row(source, row, position) for position, source in enumerate(sources)]
        )

    @staticmethod
    def _to_row(composite: Composite, row: CompositeRow) -> None:
        row.name = composite.name
        row.description = composite.description
        row.auth = composite.auth.value
        row.cache_ttl_seconds = composite.cache_ttl_seconds
        row.timeout_ms = composite.timeout_ms

    @staticmethod
    def _to_domain(row: CompositeRow) -> Composite:
        sources = sorted(row.sources.all(), key=lambda source: source.position)
        return Composite(
            name=row.name,
            description=row.description,
            auth=AuthMode(row.auth),
            cache_ttl_seconds=row.cache_ttl_seconds,
            timeout_ms=row.timeout_ms,
            sources=tuple(source_to_domain(source) for source in sources),
        )


def source_to_domain(row: SourceRow) -> Source:
    """A source row as the domain's `Source`. The admin maps rows it has not saved yet (its
    formset and `SourceRow.clean` ask the domain's rules), so an empty timeout counts as 0."""
    return Source(
        key=row.key,
        url=row.url,
        method=row.method,
        timeout_ms=row.timeout_ms or 0,
        required=row.required,
        forward_auth=row.forward_auth,
        fields=None if row.fields is None else tuple(row.fields),
        rename=dict(row.rename or {}),
    )


def source_to_row(source: Source, composite: CompositeRow, position: int) -> SourceRow:
    """`source` as the row at `position` among `composite`'s sources (not saved)."""
    return SourceRow(
        composite=composite,
        position=position,
        key=source.key,
        url=source.url,
        method=source.method,
        timeout_ms=source.timeout_ms,
        required=source.required,
        forward_auth=source.forward_auth,
        fields=None if source.fields is None else list(source.fields),
        rename=dict(source.rename),
    )


DEFINITION_TTL_SECONDS = 60
# Every write gives the composite's name a new stamp, and a cached definition is served only
# under the stamp that was current when it was read from the database. A stamp outlives every
# copy cached under it (a stamp gone is no stamp, which no copy made under a stamp matches).
STAMP_TTL_SECONDS = 86_400


def definition_key(name: str) -> str:
    return f"aggregation:composite:{name}"


def stamp_key(name: str) -> str:
    return f"aggregation:composite-stamp:{name}"


@dataclass(frozen=True, slots=True)
class _CachedDefinition:
    """A definition as read from the database while `stamp` was its name's stamp."""

    stamp: str | None
    composite: Composite


def _definition_cache_failed(
    operation: str, error: Exception, log_failure: Callable[[], bool]
) -> None:
    """Count a failed operation on the definition cache; warn of it when `log_failure` says."""
    DEFINITION_CACHE_ERRORS.inc()
    if log_failure():
        log.warning(
            "aggregation_definition_cache_unavailable",
            operation=operation,
            error=type(error).__name__,
        )


def forget_definitions(
    *names: str, log_failure: Callable[[], bool] = _DEFINITION_CACHE_LOGGED
) -> None:
    """Retire cached definitions now (after a write); never raises.

    The new stamps retire every copy, even one a concurrent run read from the database before
    the write and caches only after it; the copies are deleted too, which a full Redis
    (`noeviction`) still allows when it refuses the new stamps."""
    try:
        cache.set_many(
            {stamp_key(name): uuid.uuid4().hex for name in names}, timeout=STAMP_TTL_SECONDS
        )
    except Exception as error:  # cache down or full: the deletion below still retires what it can
        _definition_cache_failed("stamp", error, log_failure)
    try:
        cache.delete_many([definition_key(name) for name in names])
    except Exception as error:  # an unreachable cache holds nothing we could serve stale
        _definition_cache_failed("delete", error, log_failure)


def forget_definitions_once_committed(
    *names: str, log_failure: Callable[[], bool] = _DEFINITION_CACHE_LOGGED
) -> None:
    """Retire cached definitions when the aggregation database's transaction commits (at once
    outside one): retired only before, a run reading the old row in between would cache it
    under the new stamp. The admin's writes retire them this way."""
    transaction.on_commit(lambda: forget_definitions(*names, log_failure=log_failure), using=DB)


class CachedCompositeRepository(DjangoCompositeRepository):
    """Reads a composite from the shared cache before the database: a run costs one cache
    round trip (the copy and its name's stamp) instead of two queries. Every write through
    here retires the cached copy (the admin's retire it in `admin.py`); the TTL bounds
    staleness if that is lost (the cache down while the write is made). A write inside a
    transaction retires it at once and again once it commits: a run may read the old row in
    between. `get_for_update` always reads the database.

    Every failed cache operation is counted; an outage would repeat the warning on every run
    and write, so it is logged at most every few seconds per process (`log_failure` says when).
    """

    def __init__(self, *, log_failure: Callable[[], bool] = _DEFINITION_CACHE_LOGGED) -> None:
        self._log_failure = log_failure

    def get(self, name: str) -> Composite | None:
        key, stamp_at = definition_key(name), stamp_key(name)
        try:
            found = cache.get_many([key, stamp_at])
        except Exception as error:  # cache down: read the database, keep nothing
            _definition_cache_failed("get", error, self._log_failure)
            return super().get(name)
        stamp = found.get(stamp_at)
        cached = found.get(key)
        if isinstance(cached, _CachedDefinition) and cached.stamp == stamp:
            return cached.composite
        composite = super().get(name)
        if composite is not None:
            try:
                cache.set(key, _CachedDefinition(stamp, composite), timeout=DEFINITION_TTL_SECONDS)
            except Exception as error:  # cache down or full: nothing to keep
                _definition_cache_failed("set", error, self._log_failure)
        return composite

    def add(self, composite: Composite) -> CompositeWrite:
        written = super().add(composite)
        self._forget(composite.name)
        return written

    def replace(self, name: str, composite: Composite) -> CompositeWrite:
        written = super().replace(name, composite)
        self._forget(name, composite.name)
        return written

    def delete(self, name: str) -> bool:
        deleted = super().delete(name)
        self._forget(name)
        return deleted

    def _forget(self, *names: str) -> None:
        forget_definitions(*names, log_failure=self._log_failure)
        if transaction.get_connection(DB).in_atomic_block:
            forget_definitions_once_committed(*names, log_failure=self._log_failure)


class DjangoRunHistory:
    """`RunRecorder` and `RunHistory` on the aggregation database."""

    def __init__(self, *, log_failure: Callable[[], int] = _NOT_RECORDED_LOGGED) -> None:
        self._log_failure = log_failure

    def record(self, run: RunRecord) -> None:
        """Append the run; a database failure is counted and logged, never the caller's 500.

        A failure is any error of the database: a `DatabaseError`, or an `InterfaceError` (which
        is none), psycopg's word for a connection it cannot use. The run has answered as
        documented, so a failure is a warning without a traceback, naming the error's type and
        its SQLSTATE when the database gave one. An outage would repeat it on every run: the
        counter counts each lost row, the log has one line every few seconds per process and
        says how many rows it stands for (`lost`)."""
        try:
            self._to_row(run).save(using=DB, force_insert=True)
        except (DatabaseError, InterfaceError) as error:
            RECORD_FAILURES.inc()
            lost = self._log_failure()
            if lost:
                sqlstate = getattr(error.__cause__, "sqlstate", None)
                log.warning(
                    "aggregation_run_not_recorded",
                    composite=run.composite,
                    lost=lost,
                    error=type(error).__name__,
                    **({"sqlstate": sqlstate} if sqlstate else {}),
                )

    def matching(self, composite: str | None, status: RunStatus | None) -> Sequence[RunRecord]:
        rows = RunRow.objects.using(DB).order_by("-started_at", "-id")
        if composite:
            rows = rows.filter(composite=composite)
        if status:
            rows = rows.filter(status=status.value)
        return _MappedSequence(rows, self._to_domain)

    def delete_started_before(self, moment: datetime) -> int:
        with transaction.atomic(using=DB):
            deleted, _ = RunRow.objects.using(DB).filter(started_at__lt=moment).delete()
        return deleted

    @staticmethod
    def _to_row(run: RunRecord) -> RunRow:
        return RunRow(
            id=run.id,
            composite=run.composite,
            status=run.status.value,
            took_ms=run.took_ms,
            user_id=run.user_id or "",
            started_at=run.started_at,
            sources=[
                {
                    "key": source.key,
                    "status": "ok" if source.ok else "failed",
                    "took_ms": source.took_ms,
                    "cached": source.cached,
                    "code": source.code,
                }
                for source in run.sources
            ],
        )

    @staticmethod
    def _to_domain(row: RunRow) -> RunRecord:
        return RunRecord(
            id=str(row.id),
            composite=row.composite,
            status=RunStatus(row.status),
            took_ms=row.took_ms,
            user_id=row.user_id or None,
            started_at=row.started_at,
            sources=tuple(
                SourceSummary(
                    key=source["key"],
                    ok=source["status"] == "ok",
                    took_ms=source["took_ms"],
                    cached=source["cached"],
                    code=source.get("code"),
                )
                for source in row.sources
            ),
        )


class _MappedSequence(Sequence[Any]):
    """A lazy, sliceable view of a queryset as domain entities (for DRF pagination)."""

    def __init__(self, rows: QuerySet[Any], to_domain: Any) -> None:
        self._rows = rows
        self._to_domain = to_domain

    def count(self, value: Any = None) -> int:  # type: ignore[override]
        """Django's paginator asks `count()` for the total; it is one COUNT query."""
        return self._rows.count()

    def __len__(self) -> int:
        return self._rows.count()

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._to_domain(row) for row in self._rows[index]]
        return self._to_domain(self._rows[index])

    def __iter__(self) -> Iterator[Any]:
        return (self._to_domain(row) for row in self._rows)
