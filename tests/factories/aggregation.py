"""factory-boy factories of aggregation rows, for tests that need rows as they are stored.

Rows made here skip the use cases (and so the cached definitions' invalidation, and the domain's
rules: `CompositeFactory(source=None)` stores a composite with no source, as an old row may be).
"""

from __future__ import annotations

from datetime import UTC, datetime

import factory

from apps.aggregation.models import CompositeRow, RunRow, SourceRow
from core.domain.aggregation.composite import AuthMode
from core.domain.aggregation.runs import RunStatus


class SourceFactory(factory.django.DjangoModelFactory):
    """A required GET source of its composite, at `http://h/x` with a 500 ms timeout."""

    class Meta:
        model = SourceRow
        database = "aggregation"

    composite = factory.SubFactory("tests.factories.aggregation.CompositeFactory", source=None)
    position = factory.Sequence(lambda n: n)
    key = factory.Sequence(lambda n: f"s{n}")
    url = "http://h/x"
    timeout_ms = 500


class CompositeFactory(factory.django.DjangoModelFactory):
    """A composite anyone may run (auth `none`, 2 s) with one source `a` (`source__url=...` to
    change it, `source=None` for none)."""

    class Meta:
        model = CompositeRow
        database = "aggregation"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"composite{n}")
    auth = AuthMode.NONE.value
    timeout_ms = 2000
    source = factory.RelatedFactory(SourceFactory, factory_related_name="composite", key="a")


class RunFactory(factory.django.DjangoModelFactory):
    """A complete, anonymous run of `dash` started now, with no source summaries."""

    class Meta:
        model = RunRow
        database = "aggregation"

    composite = "dash"
    status = RunStatus.COMPLETE.value
    took_ms = 1.0
    started_at = factory.LazyFunction(lambda: datetime.now(UTC))
