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
