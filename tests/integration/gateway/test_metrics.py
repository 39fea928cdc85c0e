"""The gateway's metrics on /metrics after proxied calls to a real loopback upstream: each
family the proxy promises, with its labels and values, and labels that stay bounded (route
names, statuses, outcomes; never a path or a user)."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.domain.gateway.route import AuthMode, BreakerPolicy, LimitKey, RateLimitPolicy
from tests.factories.tokens import access_token

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

FAMILIES = {  # family → its label names (histograms' `le` apart)
    "platform_gateway_requests": {"route", "status"},
    "platform_gateway_request_duration_seconds": {"route", "status"},
    "platform_gateway_rate_limited": {"route"},
    "platform_gateway_cache": {"route", "result"},
    "platform_gateway_circuit_state": {"route"},
    "platform_gateway_upstream_duration_seconds": {"route", "outcome"},
}


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every gateway sample on /metrics: (sample name, sorted labels) → value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        if family.name in FAMILIES:
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_proxied_calls_show_on_metrics_by_route_status_and_outcome(
    client, proxy, upstream, add_route
):
    add_route(
        name="metered",
        path_prefix="/metered",
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=RateLimitPolicy(3, 60),
        cache_ttl_seconds=60,
    )
    add_route(
        name="failing",
        path_prefix="/failing",
        upstream_url=upstream.url + "/fail",
        circuit_breaker=BreakerPolicy(failure_threshold=1, recovery_seconds=3600),
    )
    before = scrape(client)
    user = {"Authorization": f"Bearer {access_token(user_id='u-metered-42')}"}
    assert proxy.get("/metered/items/1").headers["X-Cache"] == "MISS"
    assert proxy.get("/metered/items/1").headers["X-Cache"] == "HIT"
    assert proxy.get("/metered/items/2", headers=user).headers["X-Cache"] == "MISS"
    assert proxy.get("/metered/items/3").status_code == 429
    assert proxy.get("/failing").status_code == 500  # the upstream's answer; circuit opens
    assert proxy.get("/failing").status_code == 503
    assert proxy.get("/nowhere/7").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "platform_gateway_requests_total"
    assert delta(requests, route="metered", status="200") == 3
    assert delta(requests, route="metered", status="429") == 1
    assert delta(requests, route="failing", status="500") == 1
    assert delta(requests, route="failing", status="503") == 1
    assert delta(requests, route="-", status="404") == 1  # no route: one shared label
    duration = "platform_gateway_request_duration_seconds"
    assert delta(f"{duration}_count", route="metered", status="200") == 3
    assert delta(f"{duration}_count", route="failing", status="503") == 1
    assert delta(f"{duration}_bucket", route="metered", status="200", le="+Inf") == 3
    assert delta(f"{duration}_sum", route="metered", status="200") > 0
    assert delta("platform_gateway_rate_limited_total", route="metered") == 1
    assert delta("platform_gateway_cache_total", route="metered", result="MISS") == 2
    assert delta("platform_gateway_cache_total", route="metered", result="HIT") == 1
    assert value(after, "platform_gateway_circuit_state", route="failing") == 2  # open
    upstream_time = "platform_gateway_upstream_duration_seconds"
    assert delta(f"{upstream_time}_count", route="metered", outcome="200") == 2  # not the HIT
    assert delta(f"{upstream_time}_count", route="failing", outcome="500") == 1  # not the 503
    assert delta(f"{upstream_time}_bucket", route="failing", outcome="500", le="+Inf") == 1


def test_metric_labels_are_route_names_statuses_and_outcomes_only(
    client, proxy, upstream, add_route
):
    """Label values come from bounded sets, whatever the paths and callers: many distinct
    paths, query strings and users add no series."""
    add_route(
        name="wide",
        path_prefix="/wide",
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=RateLimitPolicy(1000, 60, LimitKey.USER),
        cache_ttl_seconds=60,
    )
    warm = {"Authorization": f"Bearer {access_token(user_id='user-warm')}"}
    assert proxy.get("/wide/warm", headers=warm).status_code == 200
    assert proxy.get("/unrouted/warm").status_code == 404
    before = scrape(client)
    for n in range(12):
        token = access_token(user_id=f"user-{n}")
        proxy.get(f"/wide/orders/{n}?page={n}", headers={"Authorization": f"Bearer {token}"})
        proxy.get(f"/unrouted/{n}")
    after = scrape(client)
    assert len(after) == len(before), set(after) - set(before)

    for (name, labels), _ in after.items():
        family = next(f for f in FAMILIES if name.startswith(f))
        names = {key for key, _ in labels} - {"le"}
        assert names == FAMILIES[family], (name, labels)
        found = dict(labels)
        assert "/" not in found["route"], (name, labels)
        assert "user-" not in found["route"], (name, labels)
        if "status" in found:
            assert re.fullmatch(r"[1-5][0-9][0-9]", found["status"]), (name, labels)
        if "result" in found:
            assert found["result"] in {"HIT", "MISS", "BYPASS"}, (name, labels)
        if "outcome" in found:
            assert found["outcome"] in {"timeout", "connection", "too_large"} or re.fullmatch(
                r"[1-5][0-9][0-9]", found["outcome"]
            ), (name, labels)
    text = client.get("/metrics").content.decode()
    for caller_or_path in ("user-1", "/wide/orders", "/unrouted", "page="):
        assert caller_or_path not in text


@pytest.mark.parametrize("change", ["moved", "removed"])
def test_the_circuit_gauge_follows_a_circuit_closed_by_a_route_change(
    client, api_client, proxy, upstream, add_route, change
):
    """A route sent to another upstream, or removed, starts with a closed circuit (the status
    endpoint says `closed`): /metrics says so too, rather than the open circuit it forgot."""
    add_route(
        name="moving",
        path_prefix="/moving",
        upstream_url=upstream.url + "/fail",
        circuit_breaker=BreakerPolicy(failure_threshold=1, recovery_seconds=3600),
    )
    assert proxy.get("/moving").status_code == 500
    assert value(scrape(client), "platform_gateway_circuit_state", route="moving") == 2
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    url = "/api/v1/gateway/routes/moving"
    if change == "moved":
        moved = api_client.patch(url, {"upstream_url": upstream.url}, format="json")
        assert moved.status_code == 200
        assert api_client.get(f"{url}/status").json()["circuit"]["state"] == "closed"
    else:
        assert api_client.delete(url).status_code == 204
    assert value(scrape(client), "platform_gateway_circuit_state", route="moving") == 0


def test_the_in_process_breaker_sets_the_gauge_of_a_forgotten_circuit_to_closed(client):
    """The embedded server's breaker (no Redis) keeps the gauge in step the same way."""
    from apps.gateway.breaker import InProcessCircuitBreaker
    from apps.gateway.metrics import PrometheusGatewayMetrics

    breaker = InProcessCircuitBreaker(PrometheusGatewayMetrics())
    breaker.record("embedded", BreakerPolicy(1, 60), 0.0, success=False, probe=False)
    assert value(scrape(client), "platform_gateway_circuit_state", route="embedded") == 2
    breaker.forget("embedded")
    assert value(scrape(client), "platform_gateway_circuit_state", route="embedded") == 0
