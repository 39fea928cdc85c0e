"""The gateway's metrics on /metrics after proxied calls to a real loopback upstream: each
family the proxy promises, with its labels and values, and labels that stay bounded (route
names, statuses, outcomes; never a path or a user)."""

from __future__ import annotations

import re
import time

import pytest

from core.domain.gateway.route import AuthMode, BreakerPolicy, LimitKey, RateLimitPolicy
from tests.factories.tokens import access_token, user_uuid
from tests.metrics import metric_samples, scrape, value

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

FAMILIES = {  # family → its label names (histograms' `le` apart)
    "platform_gateway_requests": {"route", "status"},
    "platform_gateway_request_duration_seconds": {"route", "status"},
    "platform_gateway_rate_limited": {"route"},
    "platform_gateway_cache": {"route", "result"},
    "platform_gateway_circuit_state": {"route"},
    "platform_gateway_upstream_duration_seconds": {"route", "outcome"},
}


def circuit_samples(client) -> dict[str, float]:
    """Route → value of every `platform_gateway_circuit_state` sample (each route once), once
    this process's route table is current, as each gunicorn worker's refresh thread keeps it."""
    from apps.gateway import wiring

    wiring.state().routes.current()
    found = [
        (sample.labels["route"], sample.value)
        for sample in metric_samples(client, only={"platform_gateway_circuit_state"})
    ]
    assert len(found) == len(dict(found)), f"a route reported more than once: {found}"
    return dict(found)


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
    before = scrape(client, only=FAMILIES)
    user = {"Authorization": f"Bearer {access_token(user_id=user_uuid('u-metered-42'))}"}
    assert proxy.get("/metered/items/1").headers["X-Cache"] == "MISS"
    assert proxy.get("/metered/items/1").headers["X-Cache"] == "HIT"
    assert proxy.get("/metered/items/2", headers=user).headers["X-Cache"] == "MISS"
    assert proxy.get("/metered/items/3").status_code == 429
    assert proxy.get("/failing").status_code == 500  # the upstream's answer; circuit opens
    assert proxy.get("/failing").status_code == 503
    assert proxy.get("/nowhere/7").status_code == 404
    after = scrape(client, only=FAMILIES)

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
    warm = {"Authorization": f"Bearer {access_token(user_id=user_uuid('user-warm'))}"}
    assert proxy.get("/wide/warm", headers=warm).status_code == 200
    assert proxy.get("/unrouted/warm").status_code == 404
    before = scrape(client, only=FAMILIES)
    for n in range(12):
        token = access_token(user_id=user_uuid(f"user-{n}"))
        proxy.get(f"/wide/orders/{n}?page={n}", headers={"Authorization": f"Bearer {token}"})
        proxy.get(f"/unrouted/{n}")
    after = scrape(client, only=FAMILIES)
    assert len(after) == len(before), set(after) - set(before)

    for (name, labels), _ in after.items():
        family = next(f for f in FAMILIES if name.startswith(f))
        names = {key for key, _ in labels} - {"le"}
        assert names == FAMILIES[family], (name, labels)
        found = dict(labels)
        assert "/" not in found["route"], (name, labels)
        assert "user-" not in found["route"], (name, labels)
        if "status" in found:
            assert re.fullmatch(r"[1-5]([0-9][0-9]|xx)", found["status"]), (name, labels)
        if "result" in found:
            assert found["result"] in {"HIT", "MISS", "BYPASS"}, (name, labels)
        if "outcome" in found:
            assert found["outcome"] in {"timeout", "connection", "too_large"} or re.fullmatch(
                r"[1-5]([0-9][0-9]|xx)", found["outcome"]
            ), (name, labels)
    text = client.get("/metrics").content.decode()
    for caller_or_path in ("user-1", "/wide/orders", "/unrouted", "page="):
        assert caller_or_path not in text


def test_a_status_outside_the_registry_counts_under_its_class(client, proxy, upstream, add_route):
    # An upstream that answers whatever status it is asked for (or a broken one) gave every
    # value of 100-599 a series of its own in each family, by the client's choice.
    add_route(name="reflect", path_prefix="/reflect", upstream_url=upstream.url + "/status")
    before = scrape(client, only=FAMILIES)
    for code in (299, 437, 599, 418):
        assert proxy.get(f"/reflect?code={code}").status_code == code  # passed on as sent
    after = scrape(client, only=FAMILIES)
    labels = {
        dict(labels).get("status") or dict(labels).get("outcome")
        for (name, labels) in set(after) - set(before)
        if dict(labels).get("route") == "reflect" and {"status", "outcome"} & dict(labels).keys()
    }
    assert labels == {"2xx", "4xx", "5xx", "418"}


@pytest.mark.parametrize("change", ["moved", "removed"])
def test_the_circuit_gauge_follows_a_circuit_closed_by_a_route_change(
    client, api_client, proxy, upstream, add_route, change
):
    """A route sent to another upstream starts with a closed circuit (the status endpoint says
    `closed`): /metrics says so too, rather than the open circuit it forgot; a removed route has
    no circuit left to report."""
    add_route(
        name="moving",
        path_prefix="/moving",
        upstream_url=upstream.url + "/fail",
        circuit_breaker=BreakerPolicy(failure_threshold=1, recovery_seconds=3600),
    )
    assert proxy.get("/moving").status_code == 500
    assert circuit_samples(client)["moving"] == 2
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    url = "/api/v1/gateway/routes/moving"
    if change == "moved":
        moved = api_client.patch(url, {"upstream_url": upstream.url}, format="json")
        assert moved.status_code == 200
        assert api_client.get(f"{url}/status").json()["circuit"]["state"] == "closed"
        assert circuit_samples(client)["moving"] == 0
    else:
        assert api_client.delete(url).status_code == 204
        assert "moving" not in circuit_samples(client)


def test_the_circuit_gauge_is_read_from_the_shared_circuit_at_each_scrape(
    client, add_route, upstream
):
    """A circuit opened by another worker (say one since restarted: its gauge went with it, and
    a blocked call never sets it again) reads open here too, for as long as it stays open."""
    from apps.gateway.breaker import RedisCircuitBreaker
    from apps.gateway.redis_support import key_prefix, raw_redis

    policy = BreakerPolicy(failure_threshold=1, recovery_seconds=3600)
    add_route(name="shared", path_prefix="/shared", upstream_url=upstream.url)
    add_route(name="calm", path_prefix="/calm", upstream_url=upstream.url)
    other_worker = RedisCircuitBreaker(raw_redis(), key_prefix())
    assert circuit_samples(client) == {"shared": 0, "calm": 0}
    now = time.time()
    other_worker.record("shared", policy, now, success=False, probe=False)
    assert circuit_samples(client) == {"shared": 2, "calm": 0}  # open
    assert circuit_samples(client) == {"shared": 2, "calm": 0}  # and at every scrape
    other_worker.admit("shared", policy, now + 3600)  # an hour on: the probe's call
    assert circuit_samples(client) == {"shared": 1, "calm": 0}  # half-open
    other_worker.record("shared", policy, now + 3600, success=True, probe=True)
    assert circuit_samples(client) == {"shared": 0, "calm": 0}


def test_an_open_circuit_past_its_recovery_time_reads_half_open_as_on_the_status_endpoint(
    client, api_client, add_route, upstream
):
    """Stored open until a call comes to probe it, but the next call would probe: the gauge
    says half-open (1), as `/status` says `half_open`, not open (2)."""
    from apps.gateway.breaker import RedisCircuitBreaker
    from apps.gateway.redis_support import key_prefix, raw_redis

    policy = BreakerPolicy(failure_threshold=1, recovery_seconds=30)
    add_route(name="idle", path_prefix="/idle", upstream_url=upstream.url, circuit_breaker=policy)
    breaker = RedisCircuitBreaker(raw_redis(), key_prefix())
    breaker.record("idle", policy, time.time() - 31, success=False, probe=False)
    assert circuit_samples(client) == {"idle": 1}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    status = api_client.get("/api/v1/gateway/routes/idle/status").json()
    assert status["circuit"]["state"] == "half_open"


def test_the_circuit_gauge_reports_the_enabled_routes_of_the_table_only(
    client, api_client, add_route, upstream
):
    """A removed or disabled route has no circuit series (it serves nothing)."""
    add_route(name="kept", path_prefix="/kept", upstream_url=upstream.url)
    add_route(name="gone", path_prefix="/gone", upstream_url=upstream.url)
    add_route(name="off", path_prefix="/off", upstream_url=upstream.url, enabled=False)
    assert circuit_samples(client) == {"kept": 0, "gone": 0}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    assert api_client.delete("/api/v1/gateway/routes/gone").status_code == 204
    assert circuit_samples(client) == {"kept": 0}


def test_a_disabled_route_leaves_the_gauge_and_comes_back_with_the_circuit_it_kept(
    client, api_client, proxy, add_route, upstream
):
    """No call reaches a disabled route's circuit (its paths answer 404 or go to a shorter
    prefix), so there is no state a call would find: its series leaves the page at once rather
    than keep an alert on `== 2` firing, or turn half-open (1) with nothing to probe. The
    circuit itself is kept, as the status endpoint shows; enabled again, the route reports it
    (here open an hour on, so half-open: the next call probes). The page's HELP line says
    which routes have a series, where an operator reading the metric finds it."""
    add_route(
        name="paused",
        path_prefix="/paused",
        upstream_url=upstream.url + "/fail",
        circuit_breaker=BreakerPolicy(failure_threshold=1, recovery_seconds=3600),
    )
    add_route(name="kept", path_prefix="/kept", upstream_url=upstream.url)
    assert proxy.get("/paused").status_code == 500
    assert circuit_samples(client) == {"paused": 2, "kept": 0}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    url = "/api/v1/gateway/routes/paused"
    assert api_client.patch(url, {"enabled": False}, format="json").status_code == 200
    assert circuit_samples(client) == {"kept": 0}
    status = api_client.get(f"{url}/status").json()
    assert (status["enabled"], status["circuit"]["state"]) == (False, "open")
    help_line = next(
        line
        for line in client.get("/metrics").content.decode().splitlines()
        if line.startswith("# HELP platform_gateway_circuit_state ")
    )
    assert "enabled route" in help_line
    assert "disabled or removed route has none" in help_line
    assert api_client.patch(url, {"enabled": True}, format="json").status_code == 200
    assert circuit_samples(client) == {"paused": 2, "kept": 0}


def test_without_redis_the_circuit_gauge_is_left_out_and_metrics_still_answer(
    client, add_route, upstream, settings
):
    from apps.gateway import wiring
    from apps.gateway.redis_support import REDIS_FALLBACKS
    from tests.conftest import UNREACHABLE_REDIS

    add_route(name="shared", path_prefix="/shared", upstream_url=upstream.url)
    assert circuit_samples(client) == {"shared": 0}
    settings.REDIS_URL = UNREACHABLE_REDIS
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": UNREACHABLE_REDIS}}
    wiring.reset_state()
    before = REDIS_FALLBACKS.labels("circuit_metrics")._value.get()
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "platform_gateway_requests_total" in text  # the rest of the page is there
    assert circuit_samples(client) == {}
    assert REDIS_FALLBACKS.labels("circuit_metrics")._value.get() >= before + 1


def test_in_embedded_mode_the_gauge_is_read_from_the_in_process_breaker(
    client, add_route, upstream, settings
):
    """No Redis (`make run`): the one worker's breaker is the shared state."""
    from apps.gateway import wiring
    from apps.gateway.breaker import InProcessCircuitBreaker

    settings.REDIS_URL = ""
    wiring.reset_state()
    add_route(name="embedded", path_prefix="/embedded", upstream_url=upstream.url)
    breaker = wiring.state().breaker
    assert isinstance(breaker, InProcessCircuitBreaker)
    breaker.record("embedded", BreakerPolicy(1, 60), time.time(), success=False, probe=False)
    assert circuit_samples(client) == {"embedded": 2}
    breaker.forget("embedded")
    assert circuit_samples(client) == {"embedded": 0}


@pytest.mark.django_db(databases=["default"])
def test_a_scrape_reads_no_route_from_the_database(client):
    """/metrics reports the circuits of the table a worker holds; one that has loaded none (it
    serves no route yet) reports none, and the scrape never waits on the gateway database."""
    from apps.gateway.breaker import RedisCircuitBreaker
    from apps.gateway.redis_support import key_prefix, raw_redis

    RedisCircuitBreaker(raw_redis(), key_prefix()).record(
        "elsewhere", BreakerPolicy(1, 60), 0.0, success=False, probe=False
    )
    response = client.get("/metrics")  # the gateway database is off limits to this test
    assert response.status_code == 200
    assert "platform_gateway_circuit_state" not in response.content.decode()


def test_a_circuit_gauge_left_in_worker_files_is_not_reported_beside_the_shared_one(
    client, add_route, upstream, tmp_path, monkeypatch
):
    """Under gunicorn the page sums the workers' files. A file of an older build, whose workers
    still kept the gauge, must not report the circuit a second time (or its stale value)."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    add_route(name="stale", path_prefix="/stale", upstream_url=upstream.url)
    older = MmapedDict(str(tmp_path / "gauge_livemostrecent_4242.db"))
    key = mmap_key(
        "platform_gateway_circuit_state",
        "platform_gateway_circuit_state",
        ["route"],
        ["stale"],
        "Circuit state by route: 0 closed, 1 half-open, 2 open.",
    )
    older.write_value(key, 2.0, 1.0)
    older.close()
    counter = MmapedDict(str(tmp_path / "counter_4242.db"))
    key = mmap_key(
        "platform_gateway_requests",
        "platform_gateway_requests_total",
        ["route", "status"],
        ["stale", "200"],
        "Proxied requests by route and status.",
    )
    counter.write_value(key, 3.0, 0.0)
    counter.close()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert circuit_samples(client) == {"stale": 0}  # closed, as Redis has it
    samples = scrape(client, only=FAMILIES)
    assert value(samples, "platform_gateway_requests_total", route="stale", status="200") == 3
