"""`check --database gateway` (and `migrate_all`) name stored routes that today's rules refuse."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command

from apps.gateway import wiring
from apps.gateway.models import RouteRow
from tests.factories.gateway import route

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def _store_routes():
    wiring.create_route().execute(route(name="orders", path_prefix="/orders")).unwrap()
    wiring.create_route().execute(route(name="legacy", path_prefix="/legacy")).unwrap()
    # Saved before the rules on roles and upstream hosts existed:
    RouteRow.objects.using("gateway").filter(name="legacy").update(
        auth="required", required_roles=["Ops Team"], upstream_url="http://a..b/"
    )


def test_a_stored_route_that_breaks_the_rules_is_a_warning_naming_its_fields():
    _store_routes()

    found = [m for m in checks.run_checks(databases=["gateway"]) if m.id == "gateway.W001"]

    assert len(found) == 1
    (warning,) = found
    assert warning.level == checks.WARNING
    assert warning.obj == "route legacy"
    assert "required_roles:" in warning.msg
    assert "upstream_url:" in warning.msg
    assert "orders" not in warning.msg


def test_a_stored_upstream_url_with_a_broken_escape_is_a_warning_and_still_serves(upstream, proxy):
    wiring.create_route().execute(route(name="old", path_prefix="/old")).unwrap()
    # Saved before upstream paths were held to RFC 3986:
    RouteRow.objects.using("gateway").filter(name="old").update(upstream_url=upstream.url + "/a%")

    found = [m for m in checks.run_checks(databases=["gateway"]) if m.id == "gateway.W001"]

    assert [(m.obj, "upstream_url:" in m.msg) for m in found] == [("route old", True)]
    assert proxy.get("/old/x").status_code == 200  # as stored: an upstream that takes it


def test_without_the_database_the_check_reads_nothing():
    _store_routes()
    assert not [m for m in checks.run_checks() if m.id == "gateway.W001"]


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_migrate_all_reports_them_once_every_database_is_migrated():
    _store_routes()
    out, err = StringIO(), StringIO()
    call_command("migrate_all", stdout=out, stderr=err, verbosity=0)
    assert "All databases migrated." in out.getvalue()
    assert "gateway.W001" in err.getvalue()
    assert "Route 'legacy'" in err.getvalue()
