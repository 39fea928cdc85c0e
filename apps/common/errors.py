"""From a use case's error code to an HTTP problem: one table per app, one mechanism for all.

Each app declares an `ErrorTable` mapping its error enums (whose values are the stable codes)
to HTTP statuses; views call `table.raise_for(error)` and the exception handler renders it. A
refusal that is about one field of the request (`FieldError`) is answered as the serializers'
own field errors are: 400 `validation_error` with `errors: {field: [message]}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

from apps.common.authentication import BEARER_CHALLENGE
from apps.common.exceptions import VALIDATION_DETAIL, VALIDATION_ERROR, ProblemError


@dataclass(frozen=True, slots=True)
class FieldError:
    """An entry for a refusal that `field` of the request caused: a 400 `validation_error`
    with `message` under that field, which clients already show beside the field."""

    field: str
    message: str


Entry = tuple[int, str] | FieldError


def _key(error: Enum) -> tuple[type[Enum], str]:
    return type(error), error.name


class ErrorTable:
    """Maps error enum members to `(status, detail)` or a `FieldError`; unknown members are
    programmer errors."""

    def __init__(self, entries: Iterable[tuple[Enum, Entry]]) -> None:
        # Pairs, keyed by (enum class, member): members of StrEnums with the same code (say two
        # use cases' `invalid_credentials`) are equal as strings, so as dict keys they would
        # merge, and one use case's status would answer for the other's. For the same reason
        # a member is never looked up by its code: one the table lacks is a programmer error,
        # not another use case's answer.
        pairs = list(entries)
        self._entries = {_key(error): entry for error, entry in pairs}
        self._members = [error for error, _ in pairs]

    def _entry(self, error: Enum) -> Entry:
        entry = self._entries.get(_key(error))
        if entry is None:
            raise KeyError(f"{error!r} has no entry in this app's error table; add one.")
        return entry

    def status_of(self, error: Enum) -> int:
        entry = self._entry(error)
        return 400 if isinstance(entry, FieldError) else entry[0]

    def _code(self, error: Enum) -> str:
        return VALIDATION_ERROR if isinstance(self._entry(error), FieldError) else str(error.value)

    def problem(
        self,
        error: Enum,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProblemError:
        """The `ProblemError` for `error` (its enum value is the stable `code`, but for a
        `FieldError`'s `validation_error`)."""
        entry = self._entry(error)
        if isinstance(entry, FieldError):
            errors = {"errors": {entry.field: [entry.message]}}
            return ProblemError(
                400, VALIDATION_ERROR, VALIDATION_DETAIL, extra={**errors, **(extra or {})}
            )
        status, detail = entry
        return ProblemError(status, str(error.value), detail, extra=extra, headers=headers)

    def raise_for(self, error: Enum, **kwargs: Any) -> NoReturn:
        raise self.problem(error, **kwargs)

    def raise_for_caller(self, error: Enum) -> NoReturn:
        """`raise_for` where the error may be the caller's token refused: a 401 carries the
        bearer challenge, as the authentication's own 401s do (RFC 9110 §15.5.2)."""
        if self.status_of(error) == 401:
            self.raise_for(error, headers={"WWW-Authenticate": BEARER_CHALLENGE})
        self.raise_for(error)

    def codes_by_status(self) -> dict[int, list[str]]:
        """Codes grouped by status, for the OpenAPI schema."""
        grouped: dict[int, list[str]] = {}
        for error in self._members:
            codes = grouped.setdefault(self.status_of(error), [])
            if self._code(error) not in codes:
                codes.append(self._code(error))
        return grouped
