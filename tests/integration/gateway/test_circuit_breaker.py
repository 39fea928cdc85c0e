"""The Redis circuit breaker: transitions with an injected clock, shared state, 503 answers."""

import pytest

from core.domain.gateway.breaker import Admission, CircuitState
from core.domain.gateway.route import BreakerPolicy
from core.usecases.gateway.manage_routes import RouteChanges
from tests.factories.gateway import refusing_url

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])
POLICY = BreakerPolicy(failure_threshold=2, recovery_seconds=10)


def breakers():
    from apps.gateway.breaker import RedisCircuitBreaker
    from apps.gateway.redis_support import key_prefix, raw_redis

    # Two workers' adapters over the same Redis.
    return (
        RedisCircuitBreaker(raw_redis(), key_prefix()),
        RedisCircuitBreaker(raw_redis(), key_prefix()),
    )


def test_closed_to_open_to_half_open_to_closed_across_workers():
    one, two = breakers()
    assert one.admit("r", POLICY, 100.0) == (Admission.ALLOWED, 0)
    one.record("r", POLICY, 100.0, success=False, probe=False)
    assert two.snapshot("r").failures == 1
    two.record("r", POLICY, 101.0, success=False, probe=False)
    assert one.snapshot("r").state is CircuitState.OPEN
    assert one.admit("r", POLICY, 105.0) == (Admission.DENIED, 6)
    assert two.admit("r", POLICY, 105.0) == (Admission.DENIED, 6)
    assert one.admit("r", POLICY, 111.0) == (Admission.PROBE, 0)
    assert two.admit("r", POLICY, 111.5)[0] is Admission.DENIED
    one.record("r", POLICY, 112.0, success=True, probe=True)
    assert two.snapshot("r").state is CircuitState.CLOSED
    assert two.admit("r", POLICY, 112.0) == (Admission.ALLOWED, 0)


def test_failed_probe_reopens_and_a_success_resets_failures():
    one, two = breakers()
    for now in (0.0, 1.0):
        one.record("r", POLICY, now, success=False, probe=False)
    assert two.admit("r", POLICY, 11.0)[0] is Admission.PROBE
    two.record("r", POLICY, 12.0, success=False, probe=True)
    reopened = one.snapshot("r")
    assert reopened.state is CircuitState.OPEN
    assert reopened.opened_at == 12.0
    assert one.admit("r", POLICY, 21.0)[0] is Admission.DENIED
    one.record("s", POLICY, 0.0, success=False, probe=False)
    assert one.admit("s", POLICY, 0.5)[0] is Admission.ALLOWED
    one.record("s", POLICY, 0.5, success=True, probe=False)
    assert one.snapshot("s").failures == 0


def test_forgetting_a_circuit_closes_it_for_every_worker():
    one, two = breakers()
    for now in (0.0, 1.0):
        one.record("r", POLICY, now, success=False, probe=False)
    assert two.admit("r", POLICY, 2.0)[0] is Admission.DENIED  # two now knows it open until 11
    one.forget("r")
    assert one.snapshot("r").state is CircuitState.CLOSED
    assert one.admit("r", POLICY, 2.0) == (Admission.ALLOWED, 0)
    two.forget_local()  # what every worker does when it reloads the changed routes
    assert two.admit("r", POLICY, 2.0) == (Admission.ALLOWED, 0)


def test_a_route_created_again_or_sent_elsewhere_does_not_inherit_an_open_circuit(
    proxy, add_route, upstream
):
    from apps.gateway import wiring

    add_route(upstream_url=upstream.url + "/fail", circuit_breaker=BreakerPolicy(2, 3600))
    assert [proxy.get("/orders").status_code for _ in range(3)] == [500, 500, 503]
    moved = wiring.update_route().execute("orders", RouteChanges(upstream_url=upstream.url + "/ok"))
    assert moved.is_ok(), moved
    assert proxy.get("/orders").status_code == 200  # the new upstream is called at once
    back = wiring.update_route().execute(
        "orders", RouteChanges(upstream_url=upstream.url + "/fail")
    )
    assert back.is_ok(), back
    assert [proxy.get("/orders").status_code for _ in range(3)] == [500, 500, 503]
    assert wiring.delete_route().execute("orders").is_ok()
    add_route(upstream_url=upstream.url + "/ok")  # a new route under the same name
    assert proxy.get("/orders").status_code == 200
    assert wiring.route_status().execute("orders").unwrap().circuit.state is CircuitState.CLOSED


def test_open_circuit_answers_503_without_calling_upstream(proxy, add_route, upstream):
    add_route(upstream_url=upstream.url + "/fail", circuit_breaker=BreakerPolicy(2, 30))
    assert proxy.get("/orders").status_code == 500
    assert proxy.get("/orders").status_code == 500
    refused = proxy.get("/orders")
    assert refused.status_code == 503
    assert refused.json()["code"] == "upstream_unavailable"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert sum(upstream.calls.values()) == 2


def test_refused_connections_are_502_and_count_as_failures(proxy, add_route):
    add_route(upstream_url=refusing_url(), circuit_breaker=BreakerPolicy(1, 30))
    response = proxy.get("/orders")
    assert response.status_code == 502
    assert response.json()["code"] == "bad_gateway"
    assert proxy.get("/orders").status_code == 503


def test_slow_upstream_is_a_504_within_the_timeout(proxy, add_route, upstream):
    add_route(upstream_url=upstream.url, timeout_ms=200)
    response = proxy.get("/orders/slow", params={"ms": "1500"})
    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"


def test_idempotent_calls_are_retried_on_a_flaky_upstream(proxy, add_route, upstream):
    add_route(upstream_url=upstream.url, retries=2)
    assert proxy.get("/orders/flaky").status_code == 200
    assert upstream.calls["/flaky"] == 2
    assert proxy.post("/orders/flaky").status_code == 503
    assert upstream.calls["/flaky"] == 3


@pytest.mark.parametrize("retries", [0, 2])
def test_a_request_the_upstream_reads_and_drops_goes_at_most_retries_times_more(
    proxy, add_route, upstream, retries
):
    # API.md: idempotent methods are retried at most `retries` times. libcurl resent such a
    # request by itself when it had gone on a kept-alive connection: one send more than the
    # route allows (2 with `retries: 0`, 4 with 2).
    add_route(upstream_url=upstream.url, retries=retries)
    assert proxy.get("/orders/ok").status_code == 200  # leaves a kept-alive connection
    response = proxy.get("/orders/drop")
    assert (response.status_code, response.json()["code"]) == (502, "bad_gateway")
    assert upstream.calls["/drop"] == 1 + retries


def test_in_process_breaker_follows_the_same_rules():
    from apps.gateway.breaker import InProcessCircuitBreaker

    breaker = InProcessCircuitBreaker()
    breaker.record("r", POLICY, 0.0, success=False, probe=False)
    breaker.record("r", POLICY, 0.0, success=False, probe=False)
    assert breaker.admit("r", POLICY, 5.0) == (Admission.DENIED, 5)
    assert breaker.admit("r", POLICY, 10.0) == (Admission.PROBE, 0)
    breaker.record("r", POLICY, 10.0, success=True, probe=True)
    assert breaker.snapshot("r").state is CircuitState.CLOSED
    breaker.record("r", POLICY, 11.0, success=False, probe=False)
    breaker.forget("r")
    assert breaker.snapshot("r").failures == 0
