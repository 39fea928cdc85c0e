"""Which unique constraint a refused write broke, as the database tells it.

A repository that loses a race for a unique value (a route's name, a composite's name) answers
with a write outcome (409), never a 500; any other violation (a CHECK, a foreign key) is a
broken invariant and is raised. Nothing here looks again at the rows.
"""

from __future__ import annotations

from django.db import IntegrityError

_POSTGRESQL_UNIQUE = "23505"  # SQLSTATE unique_violation; 23514 (CHECK), 23503 (FK) are not
_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def violated_unique(error: IntegrityError) -> str | None:
    """The unique constraint a refused write broke, told by the database, not by looking
    again (the row that holds the value may be gone again by then, and the write still lost
    the race for it): PostgreSQL's constraint name (psycopg's diagnostics,
    `gateway_route_name_key`), or on the embedded SQLite, which names no constraint, the
    `table.column` it reports. None for any other violation (a CHECK, a foreign key)."""
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) is not None:  # psycopg: PostgreSQL's SQLSTATE
        if cause.sqlstate != _POSTGRESQL_UNIQUE:  # type: ignore[union-attr]
            return None
        constraint = getattr(getattr(cause, "diag", None), "constraint_name", None)
        return str(constraint) if constraint else None
    message = str(cause if cause is not None else error)
    return message[len(_SQLITE_UNIQUE) :] if message.startswith(_SQLITE_UNIQUE) else None
