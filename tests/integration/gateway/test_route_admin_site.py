"""The Django admin's route form refuses what the domain and the REST API refuse."""

import json

import pytest

from apps.gateway.models import RouteRow

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

ADD = "/admin/gateway/routerow/add/"


def route_form(**changes):
    form = {
        "name": "orders",
        "path_prefix": "/orders",
        "upstream_url": "http://127.0.0.1:9/base",
        "strip_prefix": "on",
        "enabled": "on",
        "methods": '["GET"]',
        "auth": "required",
        "required_roles": '["ops"]',
        "rate_limit_requests": "",
        "rate_limit_window_seconds": "",
        "rate_limit_key": "",
        "cache_ttl_seconds": "0",
        "timeout_ms": "1000",
        "retries": "0",
        "failure_threshold": "5",
        "recovery_seconds": "30",
    }
    form.update(changes)
    return form


@pytest.mark.parametrize(
    "roles",
    [
        [1, None],
        [True],
        [{"a": 1}],
        ["x" * 65],
        ["a" * 51],
        ["a\nb"],
        ["Admin"],
        "admin",
    ],
)
def test_the_admin_refuses_required_roles_that_are_not_role_names(admin_client, roles):
    response = admin_client.post(ADD, route_form(required_roles=json.dumps(roles)))
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert not RouteRow.objects.using("gateway").exists()


def test_the_admin_trims_required_roles(admin_client):
    response = admin_client.post(ADD, route_form(required_roles='[" admin ", "billing:read"]'))
    assert response.status_code == 302, response.content.decode()[:3000]
    row = RouteRow.objects.using("gateway").get(name="orders")
    assert sorted(row.required_roles) == ["admin", "billing:read"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:18141?", "http://h/base/#"])
def test_the_admin_refuses_an_upstream_url_with_an_empty_query_or_fragment(admin_client, url):
    response = admin_client.post(ADD, route_form(upstream_url=url))
    assert response.status_code == 200
    assert b"Leave out query, fragment and credentials." in response.content
    assert not RouteRow.objects.using("gateway").exists()


def test_a_route_added_or_sent_elsewhere_in_the_admin_starts_with_a_closed_circuit(admin_client):
    from apps.gateway import wiring
    from core.domain.gateway.breaker import CircuitState
    from core.domain.gateway.route import BreakerPolicy

    breaker, policy = wiring.state().breaker, BreakerPolicy(1, 3600)

    def open_circuit():
        breaker.record("orders", policy, 1.0, success=False, probe=False)
        assert breaker.snapshot("orders").state is CircuitState.OPEN

    open_circuit()  # left by an earlier route of that name
    assert admin_client.post(ADD, route_form()).status_code == 302
    assert breaker.snapshot("orders").state is CircuitState.CLOSED
    pk = RouteRow.objects.using("gateway").get(name="orders").pk
    change = f"/admin/gateway/routerow/{pk}/change/"
    open_circuit()
    assert admin_client.post(change, route_form(timeout_ms="900")).status_code == 302
    assert breaker.snapshot("orders").state is CircuitState.OPEN  # the same upstream
    moved = route_form(upstream_url="http://127.0.0.1:9/replica")
    assert admin_client.post(change, moved).status_code == 302
    assert breaker.snapshot("orders").state is CircuitState.CLOSED
    open_circuit()
    assert (
        admin_client.post(f"/admin/gateway/routerow/{pk}/delete/", {"post": "yes"}).status_code
        == 302
    )
    assert breaker.snapshot("orders").state is CircuitState.CLOSED


@pytest.mark.django_db(databases=["default", "gateway"], transaction=True)
@pytest.mark.parametrize("change", ["add", "change"])
def test_other_workers_reload_an_admin_change_once_it_is_committed(admin_client, change):
    """Django admin saves inside a transaction on the gateway database and writes its history
    row (`django_admin_log`, default database) before that transaction commits. A worker that
    checks the version key in between must not find it changed: it would reload the old rows
    under the new version and serve them until the next change. The test holds the history
    table locked, so the admin's request waits there, between its save and its commit."""
    from django.db import connections, transaction

    from apps.gateway.repositories import DjangoRouteRepository
    from apps.gateway.route_table import VersionedRouteSource
    from tests.integration.races import blocked_by_me, in_thread, poll

    if change == "change":
        assert admin_client.post(ADD, route_form(path_prefix="/shop")).status_code == 302
        pk = RouteRow.objects.using("gateway").get(name="orders").pk
        url = f"/admin/gateway/routerow/{pk}/change/"
    else:
        url = ADD
    clock = [0.0]
    other_worker = VersionedRouteSource(
        DjangoRouteRepository().enabled, refresh_seconds=0.5, monotonic=lambda: clock[0]
    )
    assert other_worker.current().match("/orders") is None
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute("LOCK TABLE django_admin_log IN SHARE MODE")
        thread, answers = in_thread(lambda: admin_client.post(url, route_form()))
        poll(lambda: len(blocked_by_me(cursor)) >= 1, "the admin never wrote its history")
        clock[0] += 1  # the other worker's next check falls in the admin's transaction
        other_worker.current()
    thread.join(timeout=30)
    assert [answer.status_code for answer in answers] == [302]
    clock[0] += 1
    served = other_worker.current().match("/orders")
    assert served is not None, "the other worker kept the table from before the change"
    assert served.name == "orders"
