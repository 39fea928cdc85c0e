"""`violated_unique`: which unique constraint a refused write broke, on either database the
platform runs on (a lost race for a name is a 409, never a 500)."""

import pytest
from django.db import IntegrityError, transaction

from apps.common.integrity import violated_unique
from apps.gateway.models import RouteRow


@pytest.mark.django_db(databases=["gateway"])
def test_postgresql_names_the_constraint():
    RouteRow.objects.using("gateway").create(name="a", path_prefix="/a", upstream_url="http://a")
    for row, constraint in (
        ({"name": "a", "path_prefix": "/b"}, "gateway_route_name_key"),
        ({"name": "b", "path_prefix": "/a"}, "gateway_route_path_prefix_key"),
    ):
        with pytest.raises(IntegrityError) as refused, transaction.atomic(using="gateway"):
            RouteRow.objects.using("gateway").create(upstream_url="http://b", **row)
        assert violated_unique(refused.value) == constraint


def test_sqlite_names_the_table_and_column(tmp_path):
    # The embedded databases of `make run`, which name no constraint in their errors.
    import sqlite3

    db = sqlite3.connect(tmp_path / "t.sqlite3")
    db.execute("CREATE TABLE gateway_route (name TEXT UNIQUE, path_prefix TEXT UNIQUE)")
    db.execute("INSERT INTO gateway_route VALUES ('a', '/a')")
    with pytest.raises(sqlite3.IntegrityError) as refused:
        db.execute("INSERT INTO gateway_route VALUES ('b', '/a')")
    wrapped = IntegrityError(*refused.value.args)
    wrapped.__cause__ = refused.value  # as Django's error wrapper raises it
    assert violated_unique(wrapped) == "gateway_route.path_prefix"


def test_other_violations_name_no_unique_constraint():
    assert violated_unique(IntegrityError("NOT NULL constraint failed: t.c")) is None


@pytest.mark.django_db(databases=["gateway"])
def test_a_postgresql_check_violation_is_no_unique_violation():
    # psycopg names the constraint of a CHECK (23514) too: gateway_route_timeout_ms_check.
    with pytest.raises(IntegrityError) as refused, transaction.atomic(using="gateway"):
        RouteRow.objects.using("gateway").create(
            name="a", path_prefix="/a", upstream_url="http://a", timeout_ms=-1
        )
    assert refused.value.__cause__.diag.constraint_name == "gateway_route_timeout_ms_check"
    assert violated_unique(refused.value) is None
