"""Rules for the path of a URL the platform calls out to: a gateway route's upstream and an
aggregation source (its template, and the path once a run's values are filled in). One rule for
both contexts, so a path one of them refuses is not sent by the other."""

from __future__ import annotations

ENCODED_NUL_RULE = "Leave out '%00': an upstream written in C ends the path there."


def has_encoded_nul(path: str) -> bool:
    """Whether a path holds an encoded NUL (`%00`), where an upstream written in C ends it."""
    return "%00" in path
