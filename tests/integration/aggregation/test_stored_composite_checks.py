"""`check --database aggregation` names stored composites that today's rules refuse."""

from __future__ import annotations

import pytest
from django.core import checks

from apps.aggregation.models import CompositeRow, SourceRow
from tests.integration.aggregation.conftest import DATABASES, source

pytestmark = pytest.mark.django_db(databases=DATABASES)


def test_a_stored_composite_that_breaks_the_rules_is_a_warning_naming_its_fields(make_composite):
    make_composite("fine", source("a", "http://127.0.0.1:9/a"))
    make_composite("legacy", source("a", "http://127.0.0.1:9/a"))
    # Saved before a composite needed at least one source:
    SourceRow.objects.using("aggregation").filter(composite__name="legacy").delete()
    assert CompositeRow.objects.using("aggregation").count() == 2

    found = [m for m in checks.run_checks(databases=["aggregation"]) if m.id == "aggregation.W001"]

    assert [warning.obj for warning in found] == ["composite legacy"]
    assert "sources: Give between 1 and" in found[0].msg
    assert not [m for m in checks.run_checks() if m.id == "aggregation.W001"]
