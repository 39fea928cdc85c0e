"""The use cases' `UnitOfWork` port on Django's transactions, for any database alias."""

from __future__ import annotations

from types import TracebackType

from django.db import IntegrityError, transaction


class DjangoUnitOfWork:
    """`UnitOfWork` on `transaction.atomic(using=...)`; rolls back unless committed. The alias
    has no default: each context names its own database (STYLE.md, rule 9)."""

    def __init__(self, using: str) -> None:
        self._using = using
        self._stack: list[tuple[transaction.Atomic, list[bool]]] = []

    def __enter__(self) -> DjangoUnitOfWork:
        atomic = transaction.atomic(using=self._using)
        atomic.__enter__()
        self._stack.append((atomic, [False]))
        return self

    def commit(self) -> None:
        self._stack[-1][1][0] = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        atomic, committed = self._stack.pop()
        if exc_type is None and not committed[0]:
            transaction.set_rollback(True, using=self._using)
        atomic.__exit__(exc_type, exc, tb)


_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def violated_unique(error: IntegrityError) -> str | None:
    """The unique constraint a refused write broke, told by the database, not by looking
    again (the row that holds the value may be gone again by then, and the write still lost
    the race for it): PostgreSQL's constraint name (psycopg's diagnostics,
    `gateway_route_name_key`), or on the embedded SQLite, which names no constraint, the
    `table.column` it reports. None for any other violation (a CHECK, a foreign key)."""
    cause = error.__cause__
    constraint = getattr(getattr(cause, "diag", None), "constraint_name", None)
    if constraint:
        return str(constraint)
    message = str(cause if cause is not None else error)
    return message[len(_SQLITE_UNIQUE) :] if message.startswith(_SQLITE_UNIQUE) else None
