"""System check (`manage.py check --database gateway`, and after `migrate_all`): stored routes
that break the current route rules.

Rules tighten over time (`core/domain/gateway/route.py`); a row saved under older rules keeps
working, but every change to it is refused until its bad fields are fixed. Operators learn of
such rows here rather than on their next edit.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register

from apps.common.checks import rule_breakers
from apps.gateway.repositories import DB
from core.domain.gateway.route import route_problems


@register(Tags.database)
def stored_routes_follow_the_rules(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """A warning per stored route that the route rules would refuse today."""
    from apps.gateway.wiring import list_routes

    return [
        Warning(
            f"Route '{route.name}' breaks the current route rules: {problems}",
            hint="It still serves, but every change to it is refused until these fields are "
            "fixed (Django admin or PATCH /api/v1/gateway/routes/{name}).",
            obj=f"route {route.name}",
            id="gateway.W001",
        )
        for route, problems in rule_breakers(
            DB, databases, load=lambda: list_routes().execute(), problems=route_problems
        )
    ]
