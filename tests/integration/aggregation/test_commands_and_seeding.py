"""`prune_runs --older-than DAYS` and the demo composite of `seed --demo`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.aggregation.models import CompositeRow, RunRow
from tests.factories.aggregation import RunFactory
from tests.integration.aggregation.conftest import DATABASES

pytestmark = pytest.mark.django_db(databases=DATABASES)


def make_run(days_ago):
    RunFactory(started_at=datetime.now(UTC) - timedelta(days=days_ago))


def test_prune_runs_deletes_only_old_runs():
    for days in (1, 10, 40):
        make_run(days)
    out = StringIO()
    call_command("prune_runs", "--older-than", "7", stdout=out)
    assert "Deleted 2 runs older than 7 days." in out.getvalue()
    assert RunRow.objects.using("aggregation").count() == 1


@pytest.mark.parametrize("days", ["-1", "36501", "800000", "99999999999999"])
def test_prune_runs_refuses_an_age_out_of_range_cleanly(days):
    make_run(1)
    with pytest.raises(CommandError, match="must be 0 to 36500 days"):
        call_command("prune_runs", "--older-than", days)
    assert RunRow.objects.using("aggregation").count() == 1


def test_prune_runs_takes_a_century():
    make_run(40)
    out = StringIO()
    call_command("prune_runs", "--older-than", "36500", stdout=out)
    assert "Deleted 0 runs older than 36500 days." in out.getvalue()


@pytest.mark.django_db(databases=[*DATABASES, "gateway"])  # `seed` runs every context's seeder
def test_seed_demo_adds_the_demo_composite_once():
    out = StringIO()
    call_command("seed", "--demo", stdout=out)
    call_command("seed", "--demo", stdout=out)
    text = out.getvalue()
    assert "[aggregation] Created the demo composite 'demo'." in text
    assert "[aggregation] The demo composite 'demo' already exists." in text
    demo = CompositeRow.objects.using("aggregation").get(name="demo")
    assert demo.auth == "none"
    assert [s.key for s in demo.sources.order_by("position")] == ["health", "readiness", "api"]


def test_seed_without_demo_adds_no_composite():
    call_command("seed", stdout=StringIO())
    assert not CompositeRow.objects.using("aggregation").exists()


@pytest.mark.django_db(databases=[*DATABASES, "gateway"])  # the demo route is seeded too
def test_seed_demo_fails_when_the_demo_composite_cannot_be_made(settings):
    # A demo base URL the composite rules refuse (AGGREGATION_DEMO_BASE_URL is configurable)
    # was one more printed line, and the command said "Seeding done." with exit status 0.
    settings.AGGREGATION_DEMO_BASE_URL = "ftp://127.0.0.1:8000"
    out = StringIO()
    with pytest.raises(CommandError, match="Seeding incomplete"):
        call_command("seed", "--demo", stdout=out)
    assert "[aggregation] Could not create the demo composite" in out.getvalue()
    assert not CompositeRow.objects.using("aggregation").exists()
