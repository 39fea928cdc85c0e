"""`migrate_all` migrates every alias; `seed` runs every registered seeder."""

from io import StringIO

import pytest
from django.core.management import call_command

from apps.common import seeding


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_migrate_all_visits_every_alias():
    out = StringIO()
    call_command("migrate_all", stdout=out, verbosity=0)
    text = out.getvalue()
    for alias in ("default", "gateway", "aggregation"):
        assert f"Migrating database '{alias}'" in text


def test_seed_runs_each_registered_seeder_with_the_options(monkeypatch):
    calls = []
    monkeypatch.setattr(seeding, "_seeders", {})
    seeding.register("probe", lambda options: calls.append(options) or [f"demo={options.demo}"])
    out = StringIO()
    call_command("seed", "--demo", stdout=out)
    assert calls == [seeding.SeedOptions(demo=True)]
    assert "[probe] demo=True" in out.getvalue()
    assert seeding.seeders()[0][0] == "probe"
