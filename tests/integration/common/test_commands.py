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


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_seed_runs_every_context_seeder_in_registration_order():
    out = StringIO()
    call_command("seed", "--demo", stdout=out)
    lines = out.getvalue().splitlines()
    contexts = [line.split("]")[0] + "]" for line in lines if line.startswith("[")]
    firsts = [name for i, name in enumerate(contexts) if name not in contexts[:i]]
    assert firsts == ["[accounts]", "[gateway]", "[aggregation]"]
    assert [name for name, _ in seeding.seeders()] == ["accounts", "gateway", "aggregation"]
    assert lines[-1] == "Seeding done."
