"""System check (`manage.py check --database aggregation`, and after `migrate_all`): stored
composites that break the current composite rules.

Rules tighten over time (`core/domain/aggregation/composite.py`); a composite saved under older
rules keeps running, but every change to it is refused until its bad fields are fixed.
Operators learn of such rows here rather than on their next edit.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register

from apps.aggregation.repositories import DB
from apps.common.checks import rule_breakers
from core.domain.aggregation.composite import composite_problems


@register(Tags.database)
def stored_composites_follow_the_rules(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """A warning per stored composite that the composite rules would refuse today."""
    from apps.aggregation.wiring import list_composites

    return [
        Warning(
            f"Composite '{composite.name}' breaks the current composite rules: {problems}",
            hint="It still runs, but every change to it is refused until these fields are "
            "fixed (Django admin or PATCH /api/v1/aggregation/composites/{name}).",
            obj=f"composite {composite.name}",
            id="aggregation.W001",
        )
        for composite, problems in rule_breakers(
            DB, databases, load=lambda: list_composites().execute(), problems=composite_problems
        )
    ]
