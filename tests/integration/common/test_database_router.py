"""Each context's models live in their own database; relations and migrations stay inside it."""

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from config.routers import BoundedContextRouter, alias_for

router = BoundedContextRouter()


class FakeMeta:
    def __init__(self, app_label):
        self.app_label = app_label


class FakeModel:
    def __init__(self, app_label):
        self._meta = FakeMeta(app_label)


@pytest.mark.parametrize(
    ("app_label", "alias"),
    [
        ("accounts", "default"),
        ("auth", "default"),
        ("contenttypes", "default"),
        ("admin", "default"),
        ("sessions", "default"),
        ("gateway", "gateway"),
        ("aggregation", "aggregation"),
        ("something_else", "default"),
    ],
)
def test_each_app_reads_writes_and_migrates_only_in_its_database(app_label, alias):
    model = FakeModel(app_label)
    assert alias_for(app_label) == alias
    assert router.db_for_read(model) == alias
    assert router.db_for_write(model) == alias
    for other in ("default", "gateway", "aggregation"):
        assert router.allow_migrate(other, app_label) is (other == alias)


def test_relations_are_allowed_only_within_one_database():
    assert router.allow_relation(get_user_model()(), LogEntry())
    assert router.allow_relation(FakeModel("gateway"), FakeModel("gateway"))
    assert not router.allow_relation(FakeModel("accounts"), FakeModel("gateway"))
    assert not router.allow_relation(FakeModel("gateway"), FakeModel("aggregation"))


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_migrations_created_tables_only_where_they_belong():
    tables = {alias: set(connections[alias].introspection.table_names()) for alias in connections}
    user_table = get_user_model()._meta.db_table
    assert user_table in tables["default"]
    assert ContentType._meta.db_table in tables["default"]
    for alias in ("gateway", "aggregation"):
        assert user_table not in tables[alias]
        assert ContentType._meta.db_table not in tables[alias]
    for model in apps.get_app_config("gateway").get_models():
        assert model._meta.db_table in tables["gateway"]
        assert model._meta.db_table not in tables["default"]
    for model in apps.get_app_config("aggregation").get_models():
        assert model._meta.db_table in tables["aggregation"]
        assert model._meta.db_table not in tables["default"]
