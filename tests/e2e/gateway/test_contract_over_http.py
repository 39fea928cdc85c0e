"""API.md's Gateway section, row by row, over real HTTP: gunicorn as deployed (2 workers, Redis,
PostgreSQL) in front of a real upstream on loopback. The routes REST API (every field of the
route shape, nested PATCH, names, conflicts, removal), /status, and the proxy's rules: longest
prefix, strip_prefix, methods, auth, identity and hop-by-hop headers, RateLimit-* on every
answer of a limited route, Retry-After, the cache and retries."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest

from tests.e2e.gateway.platform import (
    admin_headers,
    fresh_get,
    gunicorn_platform,
    until_every_worker_answers,
)
from tests.e2e.servers import send_raw, split_answer
from tests.factories.gateway import UpstreamServer, refusing_url
from tests.factories.tokens import access_token, tampered, user_uuid

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases=["default", "gateway"]),
]
ROUTES = "/api/v1/gateway/routes"
BODY_LIMIT = 2048  # GATEWAY_MAX_BODY_BYTES of this platform, so a 413 costs little to send
VALID = {"name": "shape", "path_prefix": "/shape", "upstream_url": "http://127.0.0.1:9/"}


@pytest.fixture(scope="module")
def gateway(django_db_setup, tmp_path_factory):
    """One platform for the module; each test's routes are gone after it (the tables are
    flushed, the Redis database emptied: every worker reloads an empty table)."""
    with gunicorn_platform(
        tmp_path_factory.mktemp("contract"), GATEWAY_MAX_BODY_BYTES=str(BODY_LIMIT)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def upstream():
    server = UpstreamServer().start()
    yield server
    server.stop()


def _api(gateway, method, path="", **kwargs):
    return httpx.request(
        method, gateway.url + ROUTES + path, headers=admin_headers(), timeout=10, **kwargs
    )


def _serve(gateway, upstream, *routes):
    """Create `routes`, then wait until every worker serves them: each has answered a route
    of a new name created after them (a worker may still hold the last test's table)."""
    name = f"ready-{uuid.uuid4().hex[:12]}"
    ready = {"name": name, "path_prefix": f"/{name}", "upstream_url": upstream.url}
    for route in (*routes, ready):
        created = _api(gateway, "POST", json=route)
        assert created.status_code == 201, created.text
    until_every_worker_answers(gateway, f"/{name}", 200, meanwhile={404})


def _raw(gateway, target: str, *lines: str, method: str = "GET"):
    """One request sent as written (the target is not normalised by a client library)."""
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{line}\r\n" for line in lines)
    return split_answer(send_raw(gateway.url, (head + "\r\n").encode("latin-1")))


def _forwarded(body: bytes) -> dict:
    """What the loopback upstream saw: method, path, query, headers (lowercased)."""
    return json.loads(body)


# --- the routes REST API ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Orders"}, "name"),
        ({"name": "-orders"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": None}, "name"),
        ({"path_prefix": "orders"}, "path_prefix"),
        ({"path_prefix": "/api"}, "path_prefix"),
        ({"path_prefix": "/a/../b"}, "path_prefix"),
        ({"path_prefix": "/a%2Fb"}, "path_prefix"),
        ({"path_prefix": "/a;b"}, "path_prefix"),
        ({"upstream_url": "ftp://svc/"}, "upstream_url"),
        ({"upstream_url": "http://svc/?x=1"}, "upstream_url"),
        ({"upstream_url": "http://user:pw@svc/"}, "upstream_url"),
        ({"strip_prefix": None}, "strip_prefix"),
        ({"methods": []}, "methods"),
        ({"methods": ["get"]}, "methods.0"),
        ({"methods": ["TRACE"]}, "methods.0"),
        ({"auth": "maybe"}, "auth"),
        ({"required_roles": ["admin"]}, "required_roles"),  # auth is "none"
        ({"auth": "required", "required_roles": ["Admin"]}, "required_roles.0"),
        ({"rate_limit": {"requests": 1}}, "rate_limit.window_seconds"),
        ({"rate_limit": {"requests": 0, "window_seconds": 1}}, "rate_limit.requests"),
        ({"rate_limit": {"requests": 1, "window_seconds": 86_401}}, "rate_limit.window_seconds"),
        ({"rate_limit": {"requests": 1, "window_seconds": 1, "key": "x"}}, "rate_limit.key"),
        ({"rate_limit": {"requests": 1, "window_seconds": 1, "key": "user"}}, "rate_limit"),
        ({"rate_limit": [1]}, "rate_limit"),
        ({"cache_ttl_seconds": -1}, "cache_ttl_seconds"),
        ({"cache_ttl_seconds": 1.5}, "cache_ttl_seconds"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"timeout_ms": 60_001}, "timeout_ms"),
        ({"retries": 6}, "retries"),
        ({"circuit_breaker": None}, "circuit_breaker"),
        ({"circuit_breaker": {"failure_threshold": 0}}, "circuit_breaker.failure_threshold"),
        ({"circuit_breaker": {"recovery_seconds": 86_401}}, "circuit_breaker.recovery_seconds"),
        ({"enabled": None}, "enabled"),
    ],
)
def test_each_field_of_the_route_shape_is_validated(gateway, changes, field):
    refused = _api(gateway, "POST", json={**VALID, **changes})
    assert refused.status_code == 400, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "validation_error"
    assert field in refused.json()["errors"], refused.json()
    assert _api(gateway, "GET", "/shape").json()["code"] == "route_not_found"


def test_a_route_is_created_with_the_documented_defaults_and_read_back(gateway):
    created = _api(gateway, "POST", json={**VALID, "path_prefix": "/shape/"})
    assert created.status_code == 201
    expected = {
        **VALID,
        "path_prefix": "/shape",
        "strip_prefix": True,
        "methods": ["GET", "HEAD"],
        "auth": "none",
        "required_roles": [],
        "rate_limit": None,
        "cache_ttl_seconds": 0,
        "timeout_ms": 5000,
        "retries": 0,
        "circuit_breaker": {"failure_threshold": 5, "recovery_seconds": 30},
        "enabled": True,
    }
    assert created.json() == expected
    assert _api(gateway, "GET", "/shape").json() == expected
    assert _api(gateway, "GET").json()["results"] == [expected]


def test_patch_merges_nested_policies_and_null_removes_the_limit(gateway):
    _api(gateway, "POST", json={**VALID, "auth": "optional"})

    def patch(body):
        return _api(gateway, "PATCH", "/shape", json=body)

    assert patch({"rate_limit": {"requests": 5}}).json()["errors"] == {
        "rate_limit.window_seconds": ["Required for a route with no limit yet."]
    }
    limit = patch({"rate_limit": {"requests": 5, "window_seconds": 10}}).json()["rate_limit"]
    assert limit == {"requests": 5, "window_seconds": 10, "key": "ip"}
    limit = patch({"rate_limit": {"key": "user"}}).json()["rate_limit"]
    assert limit == {"requests": 5, "window_seconds": 10, "key": "user"}
    breaker = patch({"circuit_breaker": {"recovery_seconds": 7}}).json()["circuit_breaker"]
    assert breaker == {"failure_threshold": 5, "recovery_seconds": 7}
    refused = patch({"auth": "none"})  # the per-user limit needs a token
    assert (refused.status_code, list(refused.json()["errors"])) == (400, ["rate_limit"])
    assert patch({"rate_limit": None}).json()["rate_limit"] is None
    assert patch({"name": "other"}).json()["errors"]["name"]
    assert patch({}).json()["name"] == "shape"  # nothing given: nothing changed
    assert _api(gateway, "PATCH", "/missing", json={}).json()["code"] == "route_not_found"


def test_names_and_prefixes_are_unique(gateway, upstream):
    _api(gateway, "POST", json={**VALID, "upstream_url": upstream.url})
    _api(gateway, "POST", json={**VALID, "name": "other", "path_prefix": "/other"})
    for body, code in [
        ({**VALID, "path_prefix": "/elsewhere"}, "route_name_taken"),
        ({**VALID, "name": "third"}, "route_prefix_taken"),
        ({**VALID, "name": "third", "path_prefix": "/shape/"}, "route_prefix_taken"),
    ]:
        taken = _api(gateway, "POST", json=body)
        assert (taken.status_code, taken.json()["code"]) == (409, code)
    moved = _api(gateway, "PATCH", "/other", json={"path_prefix": "/shape/"})
    assert (moved.status_code, moved.json()["code"]) == (409, "route_prefix_taken")


def test_a_removed_route_answers_route_not_found_on_every_worker(gateway, upstream):
    _serve(gateway, upstream, {**VALID, "upstream_url": upstream.url})
    until_every_worker_answers(gateway, "/shape/x", 200)
    assert _api(gateway, "DELETE", "/shape").status_code == 204
    for gone in until_every_worker_answers(gateway, "/shape/x", 404, meanwhile={200}):
        assert gone.json()["code"] == "route_not_found"
    assert _api(gateway, "DELETE", "/shape").json()["code"] == "route_not_found"


def test_status_reports_the_circuit_and_the_recent_traffic_of_every_worker(gateway, upstream):
    # A name of its own: a route's traffic is kept under its name for the window, and other
    # tests' calls to `shape` may still be on their way from the workers.
    route = {"name": "traffic", "path_prefix": "/traffic", "upstream_url": upstream.url}
    breaker = {"failure_threshold": 2, "recovery_seconds": 600}
    _serve(gateway, upstream, route | {"circuit_breaker": breaker})
    statuses = [fresh_get(gateway.url + path).status_code for path in ("/traffic/ok",) * 3]
    statuses += [fresh_get(gateway.url + "/traffic/fail").status_code for _ in range(3)]
    assert statuses == [200, 200, 200, 500, 500, 503]
    counted = {}
    for _ in range(100):  # each worker adds its counts to the shared ones once a second
        status = _api(gateway, "GET", "/traffic/status").json()
        counted = status["requests"]["by_status"]
        if counted == {"200": 3, "500": 2, "503": 1}:
            break
        time.sleep(0.1)
    assert counted == {"200": 3, "500": 2, "503": 1}
    assert status["requests"]["total"] == 6
    assert status["enabled"] is True
    circuit = status["circuit"]
    assert (circuit["state"], circuit["consecutive_failures"]) == ("open", 2)
    assert circuit["opened_at"].endswith("Z")
    assert 500 <= circuit["retry_after_seconds"] <= 600
    assert status["window_seconds"] == 300
    assert set(status["latency_ms"]) == {"avg", "p50", "p95", "upstream_avg"}
    assert status["latency_ms"]["p95"] >= status["latency_ms"]["p50"] > 0


# --- the proxy ---------------------------------------------------------------------------------


def test_longest_prefix_and_strip_prefix_edge_cases(gateway, upstream):
    _serve(
        gateway,
        upstream,
        {"name": "api2", "path_prefix": "/api2", "upstream_url": upstream.url + "/base"},
        {"name": "slash", "path_prefix": "/slash", "upstream_url": upstream.url + "/base/"},
        {"name": "deep", "path_prefix": "/api2/deep", "upstream_url": upstream.url + "/deep"},
        {"name": "kept", "path_prefix": "/kept", "upstream_url": upstream.url + "/k"}
        | {"strip_prefix": False},
    )
    for target, path in [
        ("/api2", "/base"),  # the prefix is the whole path
        ("/api2/", "/base/"),
        ("/api2/x/", "/base/x/"),
        ("/api2?q=1", "/base?q=1"),
        ("/api2/deep", "/deep"),  # the longer prefix wins
        ("/api2/deeper", "/base/deeper"),  # whole segments only
        ("/api2//x", "/base/x"),
        ("/api2/./x", "/base/x"),
        ("/api2/x/..", "/base/"),
        ("/api2/deep/../x", "/base/x"),  # `..` is resolved before the match
        ("/api2/%7Ex", "/base/~x"),  # an unreserved escape, decoded
        ("/api2/a%3Fb", "/base/a%3Fb"),  # a reserved one, as sent
        ("/slash", "/base/"),  # upstream_url as written, trailing slash kept
        ("/slash?q=1", "/base/?q=1"),
        ("/slash/", "/base/"),
        ("/slash/x", "/base/x"),  # never `/base//x`
        ("/kept", "/k/kept"),
        ("/kept/x/", "/k/kept/x/"),
    ]:
        status, _, body = _raw(gateway, target)
        assert status == "HTTP/1.1 200 OK", (target, body)
        seen = upstream.seen[-1]["path"]
        assert seen == path, f"{target} reached the upstream as {seen}, not {path}"
        assert _forwarded(body)["path"] == path.partition("?")[0]
    for target, code in [
        ("/api", "not_found"),  # the platform's own (Django answers)
        ("/api2x", "route_not_found"),
        ("/api2/a%2Fb", "malformed_request"),  # an encoded slash
        ("/api2/a%2fb", "malformed_request"),
        ("/api2/a%5Cb", "malformed_request"),
        ("/api2/../api/v1/gateway/routes", "route_not_found"),  # the platform's, normalised
    ]:
        status, _, body = _raw(gateway, target)
        assert json.loads(body)["code"] == code, (target, status, body)


def test_a_method_not_in_methods_is_405_with_allow(gateway, upstream):
    _serve(gateway, upstream, {**VALID, "upstream_url": upstream.url, "methods": ["POST", "GET"]})
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND"):
        status, headers, body = _raw(gateway, "/shape/m405", "Content-Length: 0", method=method)
        assert status == "HTTP/1.1 405 Method Not Allowed", method
        assert headers["Allow"] == "GET, POST"
        if method != "HEAD":
            assert json.loads(body)["code"] == "method_not_allowed"
    assert upstream.calls["/m405"] == 0
    status, _, body = _raw(gateway, "/shape/m405", "Content-Length: 0", method="POST")
    assert _forwarded(body)["method"] == "POST"


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        # none, garbage, expired, re-signed claims, two parts after Bearer, Basic, good
        ("none", [200, 200, 200, 200, 200, 200, 200]),
        ("optional", [200, 401, 401, 401, 401, 200, 200]),
        ("required", [401, 401, 401, 401, 401, 401, 200]),
    ],
)
def test_auth_modes_with_good_and_bad_tokens(gateway, upstream, auth, expected):
    _serve(gateway, upstream, {**VALID, "upstream_url": upstream.url, "auth": auth})
    good = access_token(user_id=user_uuid("u-1"), roles=("user",))
    presented = [
        None,
        "Bearer not-a-token",
        f"Bearer {access_token(lifetime=timedelta(seconds=-5))}",
        f"Bearer {tampered(good, roles=['admin'])}",
        f"Bearer {good} extra",
        "Basic dTpw",
        f"bearer {good}",  # the scheme in any case
    ]
    statuses = []
    for authorization in presented:
        headers = {"Authorization": authorization} if authorization else {}
        answer = fresh_get(gateway.url + "/shape/who", headers=headers)
        statuses.append(answer.status_code)
        if answer.status_code == 401:
            assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        elif authorization and authorization.startswith("bearer"):
            sent = answer.json()["headers"]
            verified = (sent.get("x-user-id"), sent.get("x-user-roles"))
            assert verified == ((None, None) if auth == "none" else (user_uuid("u-1"), "user"))
    assert statuses == expected


def test_client_identity_headers_are_dropped_in_any_spelling(gateway, upstream):
    _serve(gateway, upstream, {**VALID, "upstream_url": upstream.url, "auth": "optional"})
    spoofed = ("X-User-Id: evil", "x-user-roles: admin", "X-USER-ID: evil2", "x-UsEr-RoLeS: root")
    _, _, body = _raw(gateway, "/shape/x", *spoofed)
    sent = _forwarded(body)["headers"]
    assert not {name for name in sent if name.startswith("x-user")}
    token = access_token(user_id=user_uuid("u-2"), roles=("b", "a"))
    _, _, body = _raw(gateway, "/shape/x", *spoofed, f"Authorization: Bearer {token}")
    sent = upstream.seen[-1]["headers"]
    assert [(n.lower(), v) for n, v in sent if n.lower().startswith("x-user")] == [
        ("x-user-id", user_uuid("u-2")),
        ("x-user-roles", "a,b"),
    ]


def test_hop_by_hop_headers_and_those_connection_names_are_not_forwarded(gateway, upstream):
    _serve(gateway, upstream, {**VALID, "upstream_url": upstream.url})
    _, _, body = _raw(
        gateway,
        "/shape/x",
        "Connection: X-Secret, x-other",
        "Connection: X-Third",
        "X-Secret: 1",
        "X-Other: 2",
        "X-Third: 3",
        "Keep-Alive: timeout=5",
        "TE: trailers",
        "Upgrade: websocket",
        "Proxy-Authorization: Basic eA==",
        "Proxy-Connection: keep-alive",
        "Trailer: X-Sum",
        "X-Kept: yes",
    )
    sent = set(_forwarded(body)["headers"])
    dropped = {"x-secret", "x-other", "x-third", "keep-alive", "te", "upgrade", "trailer"}
    assert not sent & (dropped | {"proxy-authorization", "proxy-connection"})
    assert "x-kept" in sent
    _, headers, _ = _raw(gateway, "/shape/hop")  # the upstream names X-Secret-Hop in its own
    assert "X-Secret-Hop" not in headers
    assert headers["X-End"] == "yes"


def test_every_answer_of_a_limited_route_carries_ratelimit_fields(gateway, upstream):
    """API.md: "Every answer carries RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset";
    refusals decided before the limiter count nothing, and Retry-After goes with 429 and 503."""
    limit = {"requests": 9, "window_seconds": 600}
    breaker = {"failure_threshold": 1, "recovery_seconds": 600}
    _serve(
        gateway,
        upstream,
        {
            **VALID,
            "upstream_url": upstream.url,
            "methods": ["GET", "POST"],
            "auth": "required",
            "required_roles": ["staff"],
            "rate_limit": limit,
            "timeout_ms": 300,
        },
        {"name": "down", "path_prefix": "/down", "upstream_url": refusing_url()}
        | {"rate_limit": limit, "circuit_breaker": breaker},
    )
    staff = {"Authorization": f"Bearer {access_token(roles=('staff',))}"}
    user = {"Authorization": f"Bearer {access_token(roles=('user',))}"}
    client = httpx.Client(base_url=gateway.url, timeout=10)

    answers = [
        ("no token", client.get("/shape/x"), 401, 9),
        ("bad token", client.get("/shape/x", headers={"Authorization": "Bearer x"}), 401, 9),
        ("no role", client.get("/shape/x", headers=user), 403, 9),
        ("method", client.put("/shape/x", headers=staff), 405, 9),
        ("too large", client.post("/shape/x", headers=staff, content=b"x" * 4096), 413, 9),
        ("passed", client.get("/shape/x", headers=staff), 200, 8),
        ("upstream 500", client.get("/shape/fail", headers=staff), 500, 7),
        ("timeout", client.get("/shape/slow?ms=1500", headers=staff), 504, 6),
        ("refused upstream", client.get("/down/x"), 502, 8),
        ("open circuit", client.get("/down/x"), 503, 7),
    ]
    for label, answer, status, remaining in answers:
        assert answer.status_code == status, (label, answer.text)
        assert answer.headers["RateLimit-Limit"] == "9", label
        assert answer.headers["RateLimit-Remaining"] == str(remaining), label
        assert 0 <= int(answer.headers["RateLimit-Reset"]) <= 600, label
        assert ("Retry-After" in answer.headers) is (status == 503), label
    assert 500 <= int(answers[-1][1].headers["Retry-After"]) <= 600
    for _ in range(6):
        client.get("/shape/x", headers=staff)
    refused = client.get("/shape/x", headers=staff)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    client.close()


def test_cache_rules_over_http(gateway, upstream):
    _serve(
        gateway,
        upstream,
        {**VALID, "upstream_url": upstream.url, "auth": "optional", "cache_ttl_seconds": 60}
        | {"methods": ["GET", "HEAD", "POST"]},
    )

    def get(path, method="GET", **headers):
        return httpx.request(method, gateway.url + path, headers=headers, timeout=10)

    first, second = get("/shape/c1"), get("/shape/c1")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.json()["call"] == second.json()["call"] == 1
    assert second.headers["Age"].isdigit()
    # A HEAD is its own entry (its answer has no body to give a GET), never a GET's body.
    head = get("/shape/c1", "HEAD")
    assert (head.headers["X-Cache"], head.content) == ("MISS", b"")
    assert get("/shape/c1", "HEAD").headers["X-Cache"] == "HIT"
    assert get("/shape/c1").json()["call"] == 1
    for uncacheable in ("cookie", "private", "nostore"):
        answers = [get(f"/shape/{uncacheable}") for _ in range(2)]
        assert [a.json()["call"] for a in answers] == [1, 2], uncacheable
        assert answers[1].headers["X-Cache"] == "MISS"
    assert get("/shape/cookie").headers.get_list("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    # One user's answer never serves another, nor anyone anonymous; the same user hits.
    alice = {"Authorization": f"Bearer {access_token(user_id=user_uuid('alice'))}"}
    bob = {"Authorization": f"Bearer {access_token(user_id=user_uuid('bob'))}"}
    calls = [get("/shape/mine", **who).json()["call"] for who in ({}, alice, bob, alice, {})]
    assert calls == [1, 2, 3, 2, 1]
    # Unverified credentials bypass it both ways; so do a body on a GET and a POST.
    assert get("/shape/mine", Cookie="s=1").headers["X-Cache"] == "BYPASS"
    assert get("/shape/mine", Authorization="Basic eA==").headers["X-Cache"] == "BYPASS"
    fat = httpx.request("GET", gateway.url + "/shape/mine", content=b"{}", timeout=10)
    assert fat.headers["X-Cache"] == "BYPASS"
    assert httpx.post(gateway.url + "/shape/mine", timeout=10).headers["X-Cache"] == "BYPASS"
    # A Vary answer serves only requests that send the same in the fields it names.
    gzip = [get("/shape/vary", **{"Accept-Encoding": "gzip"}) for _ in range(2)]
    assert [a.headers["X-Cache"] for a in gzip] == ["MISS", "HIT"]
    assert get("/shape/vary", **{"Accept-Encoding": "br"}).headers["X-Cache"] == "MISS"
    # Upstream failures are answered, never stored.
    failing = [get("/shape/fail") for _ in range(2)]
    assert [(a.status_code, a.headers["X-Cache"]) for a in failing] == [(500, "MISS")] * 2


def test_only_idempotent_methods_are_retried_and_within_timeout_ms(gateway, upstream):
    methods = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"]
    breaker = {"failure_threshold": 100, "recovery_seconds": 1}
    _serve(
        gateway,
        upstream,
        {**VALID, "upstream_url": upstream.url, "methods": methods, "retries": 2}
        | {"timeout_ms": 1000, "circuit_breaker": breaker},
    )
    for method in methods:  # `flaky` answers 503 to every odd call of its path
        answer = httpx.request(method, f"{gateway.url}/shape/{method}/flaky", timeout=10)
        retried = method not in {"POST", "PATCH"}
        assert answer.status_code == (200 if retried else 503), method
        assert upstream.calls[f"/{method}/flaky"] == (2 if retried else 1), method
    # An attempt that takes the whole budget leaves none for a retry: one call, then 504.
    answer = httpx.get(f"{gateway.url}/shape/budget/slow?ms=2500", timeout=10)
    assert answer.status_code == 504
    assert upstream.calls["/budget/slow"] == 1
