"""Static database routing: each bounded context's app lives in its own database alias.

`default` holds accounts together with Django's auth, contenttypes, admin and sessions (they must
live beside the user model). Relations are allowed only within one database, and each app is
migrated only where it belongs. Unknown apps default to `default`.
"""

from __future__ import annotations

from typing import Any

APP_DATABASES: dict[str, str] = {
    "gateway": "gateway",
    "aggregation": "aggregation",
}
DEFAULT_ALIAS = "default"


def alias_for(app_label: str) -> str:
    """The database alias that owns `app_label`."""
    return APP_DATABASES.get(app_label, DEFAULT_ALIAS)


class BoundedContextRouter:
    """Sends every model to its context's database and keeps relations inside it."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return alias_for(model._meta.app_label)

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return alias_for(model._meta.app_label)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return alias_for(obj1._meta.app_label) == alias_for(obj2._meta.app_label)

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        return alias_for(app_label) == db
