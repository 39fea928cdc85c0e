"""A test may ask for one context's database alone."""

import pytest
from django.db import connections


@pytest.mark.django_db(databases=["aggregation"])
def test_the_aggregation_database_can_be_used_without_default():
    with connections["aggregation"].cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(databases=["gateway"])
def test_the_gateway_database_can_be_used_without_default():
    with connections["gateway"].cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
