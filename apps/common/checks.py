"""Shared body of the database system checks that name stored rows today's rules refuse.

Rules tighten over time; a row saved under older rules keeps working, but every change to it is
refused until its bad fields are fixed. Each context registers its own check (its id, its
wording, its use case and rules) and finds the rows through `rule_breakers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from django.db import DatabaseError

T = TypeVar("T")


def rule_breakers(
    alias: str,
    databases: Iterable[str] | None,
    *,
    load: Callable[[], Iterable[T]],
    problems: Callable[[T], Mapping[str, Sequence[str]]],
) -> list[tuple[T, str]]:
    """Each stored row that `problems` finds fault with, and its problems in one line
    (`field: message; field: message`). None unless the check runs with `alias` among its
    `databases` (`check --database alias`), or before that database is migrated."""
    if alias not in (databases or ()):
        return []
    try:
        rows = list(load())
    except DatabaseError:  # not migrated yet: nothing stored to check
        return []
    return [
        (row, "; ".join(f"{field}: {' '.join(messages)}" for field, messages in found.items()))
        for row in rows
        if (found := problems(row))
    ]
