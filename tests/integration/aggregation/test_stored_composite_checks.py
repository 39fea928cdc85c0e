"""`check --database aggregation` names stored composites that today's rules refuse."""

from __future__ import annotations

import pytest
from django.core import checks

from tests.factories.aggregation import CompositeFactory
from tests.integration.aggregation.conftest import DATABASES

pytestmark = pytest.mark.django_db(databases=DATABASES)


def test_a_stored_composite_that_breaks_the_rules_is_a_warning_naming_its_fields():
    CompositeFactory(name="fine")
    CompositeFactory(name="legacy", source=None)  # saved before a composite needed a source

    found = [m for m in checks.run_checks(databases=["aggregation"]) if m.id == "aggregation.W001"]

    assert [warning.obj for warning in found] == ["composite legacy"]
    assert "sources: Give between 1 and" in found[0].msg
    assert not [m for m in checks.run_checks() if m.id == "aggregation.W001"]
