"""`migrate_all` migrates every alias (or says which it cannot reach); `seed` runs every seeder."""

import os
import subprocess
import sys
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from apps.common import seeding
from tests.e2e.servers import ROOT, embedded_environment, free_port


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


def test_migrate_all_names_the_variable_of_each_database_it_cannot_reach(tmp_path):
    # The README's "set the three database URLs" on a server that lacks those databases: the
    # start stopped in a psycopg traceback that named neither the alias nor its variable, after
    # the reachable databases had been migrated.
    server = os.environ.get("TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    missing = f"{server}/no_such_database_{uuid.uuid4().hex[:12]}"
    env = {
        **embedded_environment(tmp_path, free_port()),
        "GATEWAY_DATABASE_URL": missing,
        "AGGREGATION_DATABASE_URL": missing,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate_all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Migrating database" not in done.stdout  # nothing is migrated before all answer
    assert "'gateway' (GATEWAY_DATABASE_URL)" in done.stderr
    assert "'aggregation' (AGGREGATION_DATABASE_URL)" in done.stderr
    assert "ACCOUNTS_DATABASE_URL" not in done.stderr
    assert "does not exist" in done.stderr
