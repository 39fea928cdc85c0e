"""The use cases' `UnitOfWork` port on Django's transactions, for any database alias."""

from __future__ import annotations

from types import TracebackType

from django.db import transaction


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
