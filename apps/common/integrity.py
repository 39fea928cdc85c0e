"""Which unique constraint a refused write broke, as the database tells it.

A repository that loses a race for a unique value (a route's name, a composite's name) answers
with a write outcome (409), never a 500; any other violation (a CHECK, a foreign key) is a
broken invariant and is raised. Nothing here looks again at the rows.
"""

from __future__ import annotations

from functools import cache

from django.db import IntegrityError, connections, models, router

_POSTGRESQL_UNIQUE = "23505"  # SQLSTATE unique_violation; 23514 (CHECK), 23503 (FK) are not
_SQLITE_UNIQUE = "UNIQUE constraint failed: "
_POSTGRESQL_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL shortens longer generated names


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


def unique_field(error: IntegrityError, model: type[models.Model]) -> str | None:
    """The name of `model`'s field whose unique constraint the refused write broke (it lost a
    race for that field's value); None for any other violation, or a constraint over several
    fields. Read from the model's `_meta`: a field's `unique=True` (created with its table, or
    added by a later migration) and a named single-field `UniqueConstraint` are all known."""
    violated = violated_unique(error)
    return None if violated is None else _unique_spellings(model).get(violated)


@cache
def _unique_spellings(model: type[models.Model]) -> dict[str, str]:
    """Every way the databases name a single-field unique constraint of `model` → the field:
    for `unique=True` PostgreSQL's `<table>_<column>_key` (created with the table) or Django's
    `<table>_<column>_<digest>_uniq` (added by `AlterField`), a `UniqueConstraint`'s own name,
    and SQLite's `<table>.<column>` for either."""
    meta = model._meta
    table = meta.db_table
    # The name Django's migrations give a unique constraint they add (no connection is opened).
    editor = connections[router.db_for_write(model)].schema_editor()
    spellings: dict[str, str] = {}
    for field in meta.local_concrete_fields:
        if field.unique and not field.primary_key:
            spellings[_postgresql_name(table, field.column, "key")] = field.name
            spellings[editor._create_index_name(table, [field.column], suffix="_uniq")] = field.name
            spellings[f"{table}.{field.column}"] = field.name
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and len(constraint.fields) == 1:
            field = meta.get_field(constraint.fields[0])
            spellings[constraint.name] = field.name
            spellings[f"{table}.{field.column}"] = field.name  # type: ignore[union-attr]
    return spellings


def _postgresql_name(table: str, column: str, label: str) -> str:
    """The name PostgreSQL gives a column's inline constraint (`makeObjectName`): the longer
    of table and column is shortened until `<table>_<column>_<label>` fits 63 bytes."""
    available = _POSTGRESQL_NAME_BYTES - len(label) - 2
    table_chars, column_chars = len(table), len(column)
    while table_chars + column_chars > available:
        if table_chars > column_chars:
            table_chars -= 1
        else:
            column_chars -= 1
    return f"{table[:table_chars]}_{column[:column_chars]}_{label}"
