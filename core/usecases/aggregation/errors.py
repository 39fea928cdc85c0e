"""Error codes of the aggregation use cases; the values are the API's stable `code`s."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CompositeError(StrEnum):
    """Why managing a composite was refused."""

    NOT_FOUND = "composite_not_found"
    NAME_TAKEN = "composite_exists"
    INVALID = "invalid_composite"  # the definition breaks a domain rule


class RunError(StrEnum):
    """Why a composite could not be run (a run whose sources failed is still a run)."""

    NOT_FOUND = "composite_not_found"
    AUTHENTICATION_REQUIRED = "not_authenticated"
    INVALID_PARAMETERS = "validation_error"  # a placeholder has no usable value
    SOURCE_FAILED = "source_failed"  # a required source failed; the answer is still given
    LOOP_DETECTED = "composite_loop"  # already running further up its chain, or nested too deep


class HistoryError(StrEnum):
    """Why a history operation was refused."""

    INVALID_AGE = "invalid_age"  # a retention age below zero or over MAX_RETENTION_DAYS days


@dataclass(frozen=True, slots=True)
class ParameterErrors:
    """The run's query string cannot fill the composite's placeholders."""

    errors: dict[str, list[str]]
    code: RunError = RunError.INVALID_PARAMETERS
