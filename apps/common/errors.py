"""From a use case's error code to an HTTP problem: one table per app, one mechanism for all.

Each app declares an `ErrorTable` mapping its error enums (whose values are the stable codes)
to HTTP statuses; views call `table.raise_for(error)` and the exception handler renders it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, NoReturn

from apps.common.exceptions import ProblemError


class ErrorTable:
    """Maps error enum members to `(status, detail)`; unknown members are programmer errors."""

    def __init__(self, entries: Mapping[Enum, tuple[int, str]]) -> None:
        self._entries = dict(entries)

    def status_of(self, error: Enum) -> int:
        return self._entries[error][0]

    def problem(
        self,
        error: Enum,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemError:
        """The `ProblemError` for `error` (its enum value is the stable `code`)."""
        if error not in self._entries:
            raise KeyError(f"{error!r} has no entry in this app's error table; add one.")
        status, detail = self._entries[error]
        return ProblemError(status, str(error.value), detail, extra=extra, headers=headers)

    def raise_for(self, error: Enum, **kwargs: Any) -> NoReturn:
        raise self.problem(error, **kwargs)

    def codes_by_status(self) -> dict[int, list[str]]:
        """Codes grouped by status, for the OpenAPI schema."""
        grouped: dict[int, list[str]] = {}
        for error, (status, _) in self._entries.items():
            grouped.setdefault(status, []).append(str(error.value))
        return grouped
