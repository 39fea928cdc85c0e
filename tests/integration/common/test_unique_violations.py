"""`violated_unique` and `unique_field`: which unique constraint a refused write broke, on
either database the platform runs on (a lost race for a name is a 409, never a 500)."""

import sqlite3

import pytest
from django.db import IntegrityError, connections, models, transaction
from django.test.utils import isolate_apps

from apps.aggregation.models import CompositeRow
from apps.common.integrity import unique_field, violated_unique
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


def _refused(write) -> IntegrityError:
    with pytest.raises(IntegrityError) as refused, transaction.atomic(using="gateway"):
        write()
    return refused.value


@pytest.mark.django_db(databases=["gateway"])
def test_the_route_field_whose_unique_constraint_postgresql_names():
    rows = RouteRow.objects.using("gateway")
    rows.create(name="a", path_prefix="/a", upstream_url="http://a")
    name = _refused(lambda: rows.create(name="a", path_prefix="/b", upstream_url="http://b"))
    prefix = _refused(lambda: rows.create(name="b", path_prefix="/a", upstream_url="http://b"))
    check = _refused(
        lambda: rows.create(name="c", path_prefix="/c", upstream_url="http://c", timeout_ms=-1)
    )
    assert (unique_field(name, RouteRow), unique_field(prefix, RouteRow)) == ("name", "path_prefix")
    assert unique_field(check, RouteRow) is None
    assert unique_field(name, CompositeRow) is None  # another table's constraint


@pytest.mark.django_db(databases=["aggregation"])
def test_the_composite_name_whose_unique_constraint_postgresql_names():
    rows = CompositeRow.objects.using("aggregation")
    rows.create(name="dash")
    with pytest.raises(IntegrityError) as refused, transaction.atomic(using="aggregation"):
        rows.create(name="dash")
    assert unique_field(refused.value, CompositeRow) == "name"


@isolate_apps("tests.integration.common")  # not an app whose ready() registers anything
@pytest.mark.django_db(databases=["gateway"])
def test_a_named_single_field_unique_constraint_is_known_by_its_name():
    # As a migration may turn `unique=True` into a named UniqueConstraint.
    class Named(models.Model):  # noqa: DJ008 (a table for this test only)
        label = models.CharField(max_length=8)

        class Meta:
            app_label = "common"
            db_table = "gateway_named_unique"
            constraints = [models.UniqueConstraint(fields=["label"], name="named_label_unique")]

    with connections["gateway"].schema_editor() as editor:  # rolled back with the test
        editor.create_model(Named)
    Named.objects.using("gateway").create(label="a")
    refused = _refused(lambda: Named.objects.using("gateway").create(label="a"))
    assert violated_unique(refused) == "named_label_unique"
    assert unique_field(refused, Named) == "label"


@isolate_apps("tests.integration.common")  # not an app whose ready() registers anything
@pytest.mark.django_db(databases=["gateway"])
def test_a_unique_constraint_a_migration_added_is_known_by_djangos_name():
    class Before(models.Model):  # noqa: DJ008 (a table for this test only)
        label = models.CharField(max_length=8)

        class Meta:
            app_label = "common"
            db_table = "gateway_later_unique"

    class After(models.Model):  # noqa: DJ008 (the model once the migration made the label unique)
        label = models.CharField(max_length=8, unique=True)

        class Meta:
            app_label = "common"
            db_table = "gateway_later_unique"

    with connections["gateway"].schema_editor() as editor:  # rolled back with the test
        editor.create_model(Before)
        editor.alter_field(Before, Before._meta.get_field("label"), After._meta.get_field("label"))
    After.objects.using("gateway").create(label="a")
    refused = _refused(lambda: After.objects.using("gateway").create(label="a"))
    assert violated_unique(refused).endswith("_uniq")
    assert unique_field(refused, After) == "label"


def _sqlite_refusal(create: str, insert: str) -> IntegrityError:
    db = sqlite3.connect(":memory:")
    db.execute(create)
    db.execute(insert)
    with pytest.raises(sqlite3.IntegrityError) as refused:
        db.execute(insert)
    wrapped = IntegrityError(*refused.value.args)
    wrapped.__cause__ = refused.value  # as Django's error wrapper raises it
    return wrapped


def test_the_field_sqlite_names_by_table_and_column():
    routes = "CREATE TABLE gateway_route (name TEXT UNIQUE, path_prefix TEXT)"
    name = _sqlite_refusal(routes, "INSERT INTO gateway_route VALUES ('a', '/a')")
    assert unique_field(name, RouteRow) == "name"
    composites = "CREATE TABLE aggregation_composite (name TEXT UNIQUE)"
    taken = _sqlite_refusal(composites, "INSERT INTO aggregation_composite VALUES ('d')")
    assert unique_field(taken, CompositeRow) == "name"
    assert unique_field(taken, RouteRow) is None
