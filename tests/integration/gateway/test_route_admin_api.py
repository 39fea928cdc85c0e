"""Admin REST API of routes (/api/v1/gateway/routes…): CRUD, validation, auth, status."""

import pytest

from tests.factories.tokens import access_token

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

ROUTES = "/api/v1/gateway/routes"
BODY = {
    "name": "orders",
    "path_prefix": "/orders/",
    "upstream_url": "http://127.0.0.1:9/base",
    "methods": ["GET", "POST"],
    "auth": "required",
    "required_roles": ["ops"],
    "rate_limit": {"requests": 10, "window_seconds": 60, "key": "user"},
    "cache_ttl_seconds": 5,
    "timeout_ms": 1500,
    "retries": 1,
    "circuit_breaker": {"failure_threshold": 3, "recovery_seconds": 20},
}


@pytest.fixture
def admin(api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    return api_client


def test_admin_creates_reads_lists_changes_and_deletes_a_route(admin):
    created = admin.post(ROUTES, BODY, format="json")
    assert created.status_code == 201, created.json()
    assert created.json() == {
        **BODY,
        "path_prefix": "/orders",
        "enabled": True,
        "strip_prefix": True,
    }
    assert admin.get(f"{ROUTES}/orders").json()["upstream_url"] == "http://127.0.0.1:9/base"
    listed = admin.get(ROUTES).json()
    assert listed["count"] == 1
    assert listed["results"][0]["name"] == "orders"
    changed = admin.patch(f"{ROUTES}/orders", {"enabled": False, "rate_limit": None}, format="json")
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    assert changed.json()["rate_limit"] is None
    assert admin.delete(f"{ROUTES}/orders").status_code == 204
    assert admin.get(f"{ROUTES}/orders").json()["code"] == "route_not_found"
    assert admin.delete(f"{ROUTES}/orders").status_code == 404
    assert admin.patch(f"{ROUTES}/orders", {}, format="json").status_code == 404


def test_nested_field_errors_are_flat_and_a_rename_is_refused(admin):
    admin.post(ROUTES, BODY, format="json")
    bad = {**BODY, "name": "n2", "path_prefix": "/n2", "methods": ["GET", "BREW"]}
    bad["rate_limit"] = {"requests": 0, "window_seconds": 60}
    errors = admin.post(ROUTES, bad, format="json").json()["errors"]
    assert set(errors) == {"methods.1", "rate_limit.requests"}
    renamed = admin.patch(f"{ROUTES}/orders", {"name": "renamed"}, format="json")
    assert renamed.status_code == 400
    assert list(renamed.json()["errors"]) == ["name"]
    assert admin.get(f"{ROUTES}/renamed").status_code == 404
    same = admin.patch(f"{ROUTES}/orders", {"name": "orders", "retries": 1}, format="json")
    assert same.json()["retries"] == 1


def test_defaults_fill_a_minimal_route(admin):
    minimal = {"name": "m", "path_prefix": "/m", "upstream_url": "https://example.test"}
    body = admin.post(ROUTES, minimal, format="json").json()
    assert body["methods"] == ["GET", "HEAD"]
    assert body["auth"] == "none"
    assert body["circuit_breaker"] == {"failure_threshold": 5, "recovery_seconds": 30}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"path_prefix": "no-slash"}, "path_prefix"),
        ({"path_prefix": "/api/v9"}, "path_prefix"),
        ({"upstream_url": "ftp://x"}, "upstream_url"),
        ({"methods": []}, "methods"),
        ({"methods": ["BREW"]}, "methods"),
        ({"rate_limit": {"requests": 0, "window_seconds": 1}}, "rate_limit"),
        ({"rate_limit": {"requests": 2**31, "window_seconds": 1}}, "rate_limit"),
        ({"circuit_breaker": {"failure_threshold": 2**31}}, "circuit_breaker"),
        ({"upstream_url": "http://127.0.0.1:9/a b"}, "upstream_url"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"auth": "maybe"}, "auth"),
        ({"auth": "none"}, "rate_limit"),
        ({"upstream_url": "http://127.0.0.1:18141?"}, "upstream_url"),
        ({"upstream_url": "http://h/base/#"}, "upstream_url"),
        ({"required_roles": ["a\nb"]}, "required_roles"),
        ({"required_roles": ["Admin"]}, "required_roles"),
        ({"required_roles": ["a" * 51]}, "required_roles"),
        ({"required_roles": [1]}, "required_roles"),
        ({"name": "Bad Name"}, "name"),
        ({"name": "-orders"}, "name"),
        ({"name": "o" * 64}, "name"),
        ({"name": ""}, "name"),
        ({"retries": 6}, "retries"),
        ({"cache_ttl_seconds": -1}, "cache_ttl_seconds"),
        ({"cache_ttl_seconds": 86_401}, "cache_ttl_seconds"),
        ({"timeout_ms": 60_001}, "timeout_ms"),
        ({"rate_limit": {"requests": 1, "window_seconds": 0}}, "rate_limit"),
        ({"circuit_breaker": {"recovery_seconds": 0}}, "circuit_breaker"),
        ({"circuit_breaker": None}, "circuit_breaker"),
        ({"methods": "GET"}, "methods"),
        ({"strip_prefix": "sometimes"}, "strip_prefix"),
    ],
)
def test_invalid_routes_are_400_validation_errors(admin, change, field):
    response = admin.post(ROUTES, {**BODY, **change}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    errors = response.json()["errors"]
    assert any(name.split(".")[0] in (field, "required_roles") for name in errors)
    assert all(isinstance(messages, list) for messages in errors.values())


@pytest.mark.parametrize("path", ["/a%", "/a|b", '/a"b', "/a<b>", "/a^b", "/a`b", "/{x}", "/%zz"])
def test_an_upstream_url_a_url_cannot_hold_is_a_400_validation_error(admin, path):
    response = admin.post(
        ROUTES, {**BODY, "upstream_url": "http://127.0.0.1:1" + path}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert list(response.json()["errors"]) == ["upstream_url"]
    assert admin.get(f"{ROUTES}/orders").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"upstream_url": "http://127.0.0.1:1/h%00"}, "upstream_url", "'%00'"),
        ({"upstream_url": "http://0x7f.1/"}, "upstream_url", "four decimal numbers"),
        ({"upstream_url": "http://2130706433/"}, "upstream_url", "four decimal numbers"),
        ({"upstream_url": "http://0177.0.0.1/"}, "upstream_url", "four decimal numbers"),
        ({"path_prefix": "//"}, "path_prefix", "'//'"),
        ({"path_prefix": "/orders//"}, "path_prefix", "'//'"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_route_values_clients_read_otherwise_are_400_validation_errors(
    admin, method, change, field, message
):
    # An encoded NUL ends the path in a C upstream, clients and resolvers read a hex, octal or
    # single-number IPv4 host differently, and `//` was normalised to `/`, a catch-all.
    if method == "PATCH":
        stored = admin.post(ROUTES, BODY, format="json").json()
        response = admin.patch(f"{ROUTES}/orders", change, format="json")
        assert admin.get(f"{ROUTES}/orders").json() == stored
    else:
        response = admin.post(ROUTES, {**BODY, **change}, format="json")
        assert admin.get(f"{ROUTES}/orders").status_code == 404
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert message in errors[field][0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": 123}, "name"),
        ({"path_prefix": 5}, "path_prefix"),
        ({"upstream_url": 1}, "upstream_url"),
        ({"required_roles": [7]}, "required_roles.0"),
        ({"name": True}, "name"),
    ],
)
def test_a_string_field_takes_only_a_json_string(admin, change, field):
    # DRF's CharField turned 123 into "123": `{"name": 123}` was a route named "123".
    created = admin.post(ROUTES, {**BODY, **change}, format="json")
    assert (created.status_code, created.json()["code"]) == (400, "validation_error")
    assert created.json()["errors"] == {field: ["Not a valid string."]}
    assert admin.get(f"{ROUTES}/123").status_code == 404
    admin.post(ROUTES, BODY, format="json")
    changed = admin.patch(f"{ROUTES}/orders", change, format="json")
    assert changed.json()["errors"] == {field: ["Not a valid string."]}


def test_conflicting_names_and_prefixes_are_409(admin):
    admin.post(ROUTES, BODY, format="json")
    assert admin.post(ROUTES, BODY, format="json").json()["code"] == "route_name_taken"
    other = {**BODY, "name": "other"}
    assert admin.post(ROUTES, other, format="json").json()["code"] == "route_prefix_taken"
    admin.post(ROUTES, {**BODY, "name": "b", "path_prefix": "/b"}, format="json")
    patched = admin.patch(f"{ROUTES}/b", {"path_prefix": "/orders"}, format="json")
    assert patched.status_code == 409
    invalid = admin.patch(f"{ROUTES}/b", {"auth": "none"}, format="json")
    assert invalid.status_code == 400


def test_only_admins_may_manage_routes(api_client):
    assert api_client.get(ROUTES).status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('user',))}")
    response = api_client.get(ROUTES)
    assert response.status_code == 403
    assert api_client.post(ROUTES, BODY, format="json").status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", ROUTES, None),
        ("post", ROUTES, BODY),
        ("get", f"{ROUTES}/orders", None),
        ("patch", f"{ROUTES}/orders", {"retries": 2}),
        ("delete", f"{ROUTES}/orders", None),
        ("get", f"{ROUTES}/orders/status", None),
    ],
)
def test_every_route_operation_is_for_admins_only(admin, api_client, method, path, body):
    """API.md: every gateway admin row is `admin`: no token is a 401 with the bearer
    challenge, a token without the `admin` role a 403, and neither changes anything."""
    from rest_framework.test import APIClient

    assert admin.post(ROUTES, BODY, format="json").status_code == 201
    anonymous = getattr(APIClient(), method)(path, body, format="json")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    user = APIClient()
    user.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('user', 'ops'))}")
    forbidden = getattr(user, method)(path, body, format="json")
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "permission_denied"
    assert admin.get(f"{ROUTES}/orders").json()["retries"] == BODY["retries"]


def test_status_shows_the_circuit_and_traffic(admin, upstream):
    from apps.gateway.entrypoint import GatewayApplication

    admin.post(
        ROUTES,
        {
            "name": "flaky",
            "path_prefix": "/flaky",
            "upstream_url": upstream.url + "/fail",
            "circuit_breaker": {"failure_threshold": 1, "recovery_seconds": 60},
        },
        format="json",
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/flaky", "HTTP_HOST": "testserver"}
    app = GatewayApplication()
    for _ in range(2):
        app(dict(environ), lambda status, headers: None)
    status = admin.get(f"{ROUTES}/flaky/status").json()
    assert status["circuit"]["state"] == "open"
    assert status["circuit"]["consecutive_failures"] == 1
    assert status["circuit"]["opened_at"].endswith("Z")
    assert 1 <= status["circuit"]["retry_after_seconds"] <= 60
    assert status["requests"]["by_status"]["503"] >= 1
    assert status["requests"]["total"] >= 2
    assert status["latency_ms"]["p50"] is not None
    assert admin.get(f"{ROUTES}/nope/status").status_code == 404


def test_status_reads_half_open_once_the_recovery_time_is_over(admin, upstream):
    """From then on the breaker lets the next call through as the probe, so the status says
    half-open at the time of the read, though the shared circuit stays stored as open until
    that call arrives."""
    import time

    from apps.gateway import wiring
    from core.domain.gateway.breaker import CircuitState
    from core.domain.gateway.route import BreakerPolicy

    created = admin.post(
        ROUTES,
        {
            "name": "flaky",
            "path_prefix": "/flaky",
            "upstream_url": upstream.url,
            "circuit_breaker": {"failure_threshold": 1, "recovery_seconds": 60},
        },
        format="json",
    )
    assert created.status_code == 201
    breaker = wiring.state().breaker
    opened_at = time.time() - 61  # the failure that opened it came 61 s ago
    breaker.record("flaky", BreakerPolicy(1, 60), opened_at, success=False, probe=False)
    assert breaker.snapshot("flaky").state is CircuitState.OPEN
    circuit = admin.get(f"{ROUTES}/flaky/status").json()["circuit"]
    assert (circuit["state"], circuit["retry_after_seconds"]) == ("half_open", 0)
    assert circuit["consecutive_failures"] == 1
    assert circuit["opened_at"].endswith("Z")
    assert breaker.snapshot("flaky").state is CircuitState.OPEN  # reading changed nothing


def test_route_changes_take_effect_without_restart(admin, proxy, upstream):
    from prometheus_client import REGISTRY

    def routes_in_table():
        return REGISTRY.get_sample_value("platform_gateway_route_table_routes")

    assert proxy.get("/live/x").status_code == 404
    assert routes_in_table() == 0
    admin.post(
        ROUTES,
        {"name": "live", "path_prefix": "/live", "upstream_url": upstream.url},
        format="json",
    )
    assert proxy.get("/live/x").status_code == 200
    assert routes_in_table() == 1
    admin.patch(f"{ROUTES}/live", {"methods": ["POST"]}, format="json")
    assert proxy.get("/live/x").status_code == 405
    admin.patch(f"{ROUTES}/live", {"enabled": False}, format="json")
    assert proxy.get("/live/x").status_code == 404
    assert routes_in_table() == 0


def test_other_workers_pick_changes_up_through_the_version_key(
    upstream, django_capture_on_commit_callbacks
):
    from apps.gateway.repositories import DjangoRouteRepository
    from apps.gateway.route_table import CacheRouteChangeNotifier, VersionedRouteSource
    from tests.factories.gateway import route

    clock = [0.0]
    other_worker = VersionedRouteSource(
        DjangoRouteRepository().enabled, refresh_seconds=0.5, monotonic=lambda: clock[0]
    )
    assert other_worker.current().match("/orders") is None
    DjangoRouteRepository().add(route(upstream_url=upstream.url))
    with django_capture_on_commit_callbacks(using="gateway", execute=True):  # published at commit
        CacheRouteChangeNotifier().routes_changed()  # as done by another worker
    assert other_worker.current().match("/orders") is None  # not yet: checked twice a second
    clock[0] = 0.6
    assert other_worker.current().match("/orders").name == "orders"


def test_an_unreadable_database_keeps_the_last_table_and_is_retried_once_a_period(
    upstream, django_capture_on_commit_callbacks
):
    from django.db import OperationalError

    from apps.gateway.route_table import (
        CacheRouteChangeNotifier,
        RoutesUnavailable,
        VersionedRouteSource,
    )
    from tests.factories.gateway import route

    clock, loads, database = [0.0], [], {"up": False, "routes": [route(upstream_url=upstream.url)]}

    def load():
        loads.append(clock[0])
        if not database["up"]:
            raise OperationalError("connection refused")
        return database["routes"]

    worker = VersionedRouteSource(load, refresh_seconds=0.5, monotonic=lambda: clock[0])
    with pytest.raises(RoutesUnavailable):  # never loaded: nothing to serve
        worker.current()
    database["up"] = True
    assert worker.current().match("/orders").name == "orders"
    database["up"] = False
    database["routes"] = []
    with django_capture_on_commit_callbacks(using="gateway", execute=True):
        CacheRouteChangeNotifier().routes_changed()  # another worker changed the routes
    clock[0] = 0.6
    attempts = len(loads)
    for _ in range(20):  # many requests within one period: one reload attempt
        assert worker.current().match("/orders").name == "orders"  # the last table serves
    assert len(loads) == attempts + 1
    clock[0] = 1.2
    database["up"] = True
    assert worker.current().match("/orders") is None  # the database is back: the new table


def test_a_worker_with_no_routes_and_no_database_answers_503():
    import httpx

    from apps.gateway.entrypoint import GatewayApplication, GatewayHandler
    from apps.gateway.route_table import RoutesUnavailable

    class NoRouteTable:
        """`ForwardRequest` of a worker that never loaded its routes, the database down."""

        def execute(self, request):
            raise RoutesUnavailable

    app = GatewayApplication(GatewayHandler(forward=NoRouteTable))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver") as c:
        response = c.get("/orders/1")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"]


def test_patching_a_nested_policy_merges_it_with_the_current_one(admin):
    admin.post(ROUTES, {**BODY, "circuit_breaker": {"failure_threshold": 3}}, format="json")
    url = f"{ROUTES}/orders"
    breaker = admin.patch(url, {"circuit_breaker": {"recovery_seconds": 7}}, format="json")
    assert breaker.json()["circuit_breaker"] == {"failure_threshold": 3, "recovery_seconds": 7}
    limit = admin.patch(url, {"rate_limit": {"requests": 9}}, format="json")
    assert limit.json()["rate_limit"]["requests"] == 9
    assert limit.json()["rate_limit"]["window_seconds"] == BODY["rate_limit"]["window_seconds"]
    removed = admin.patch(url, {"rate_limit": None}, format="json")
    assert removed.json()["rate_limit"] is None


def test_a_new_limit_given_by_patch_needs_its_required_fields(admin):
    admin.post(ROUTES, {**BODY, "rate_limit": None}, format="json")
    url = f"{ROUTES}/orders"
    incomplete = admin.patch(url, {"rate_limit": {"requests": 5}}, format="json")
    assert incomplete.status_code == 400
    assert list(incomplete.json()["errors"]) == ["rate_limit.window_seconds"]
    complete = admin.patch(
        url, {"rate_limit": {"requests": 5, "window_seconds": 60}}, format="json"
    )
    assert complete.status_code == 200
    assert complete.json()["rate_limit"] == {"requests": 5, "window_seconds": 60, "key": "ip"}


@pytest.mark.parametrize(
    ("method", "body", "errors"),
    [
        ("post", {**BODY, "name": "typo", "path_prefix": "/typo", "timout_ms": 100}, ["timout_ms"]),
        ("patch", {"timout_ms": 100, "retries": 0}, ["timout_ms"]),
        ("patch", {"rate_limit": {"request": 5}}, ["rate_limit.request"]),
        ("patch", {"circuit_breaker": {"recovery": 5}}, ["circuit_breaker.recovery"]),
        (
            "post",
            {
                **BODY,
                "name": "typo",
                "path_prefix": "/typo",
                "rate_limit": {**BODY["rate_limit"], "burst": 1},
            },
            ["rate_limit.burst"],
        ),
    ],
    ids=["create", "patch", "patched-limit", "patched-breaker", "created-limit"],
)
def test_an_unknown_field_is_a_400_not_ignored(admin, method, body, errors):
    # As Kong's admin API answers it. A mistyped field used to be dropped: a PATCH answered 200
    # and changed nothing, a create took the default the caller meant to override.
    created = admin.post(ROUTES, BODY, format="json").json()
    path = ROUTES if method == "post" else f"{ROUTES}/orders"
    response = getattr(admin, method)(path, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["errors"]) == errors
    assert response.json()["errors"][errors[0]] == ["Unknown field."]
    assert admin.get(f"{ROUTES}/orders").json() == created
    assert admin.get(f"{ROUTES}/typo").status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"timeout_ms": "1500"},
        {"timeout_ms": "\u0663\u0660\u0660\u0660"},  # Arabic-Indic digits: int() takes them
        {"timeout_ms": 1500.0},
        {"retries": True},
        {"strip_prefix": "yes"},
        {"enabled": 1},
        {"rate_limit": {"requests": "10", "window_seconds": 60}},
    ],
)
def test_numbers_and_booleans_are_json_ones(admin, change):
    # DRF coerced text, floats and booleans: "yes" was true, "٣٠٠٠" 3000, true 1 retry.
    created = admin.post(ROUTES, BODY, format="json").json()
    response = admin.patch(f"{ROUTES}/orders", change, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert admin.get(f"{ROUTES}/orders").json() == created


def test_the_schema_documents_a_patch_as_changes_that_keep_what_they_do_not_give(client):
    """A PATCH keeps every field it does not give and merges nested policies (RFC 7396), so
    its documented body may default nothing (a generated client would send the default and
    reset the field) and may require no nested field (`{"rate_limit": {"requests": 9}}` is a
    valid change); a create's body keeps its defaults and required fields."""
    schema = client.get("/api/schema/?format=json").json()

    def resolve(node):
        while "$ref" in node or "allOf" in node:
            node = node["allOf"][0] if "allOf" in node else node
            if "$ref" in node:
                node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        return node

    def body(method, path):
        operation = schema["paths"][path][method]
        return resolve(operation["requestBody"]["content"]["application/json"]["schema"])

    patch = body("patch", f"{ROUTES}/{{name}}")
    assert "required" not in patch
    assert {name for name, field in patch["properties"].items() if "default" in field} == set()
    for nested in ("rate_limit", "circuit_breaker"):
        policy = resolve(patch["properties"][nested])
        assert "required" not in policy, nested
        assert [name for name, field in policy["properties"].items() if "default" in field] == []
    create = body("post", ROUTES)
    assert set(create["required"]) == {"name", "path_prefix", "upstream_url"}
    assert create["properties"]["timeout_ms"]["default"] == 5000
    assert set(resolve(create["properties"]["rate_limit"])["required"]) == {
        "requests",
        "window_seconds",
    }


def test_the_schema_offers_only_route_bodies_the_api_takes_and_states_the_rules(client):
    """Schema fuzzing sent schema-valid bodies that were refused: a PATCH renaming the route
    (its name cannot change, so the PATCH body does not offer it), and `methods: []`."""
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    patch, create = schema["PatchedRouteChangesRequest"], schema["RouteInputRequest"]
    assert "name" not in patch["properties"]
    assert "cannot change" in patch["description"]
    for body in (patch, create):
        fields = body["properties"]
        assert fields["methods"]["minItems"] == 1
        assert "absolute path" in fields["path_prefix"]["description"]
        assert "without query, fragment or credentials" in fields["upstream_url"]["description"]


def test_the_schema_names_route_operations_as_the_other_admin_apis_do(client):
    """`<context>_<resource>_<action>` with list/create/read/update/delete, as composites and
    users have them, not drf-spectacular's retrieve/partial_update/destroy."""
    paths = client.get("/api/schema/?format=json").json()["paths"]
    named = {
        (path, method): operation["operationId"]
        for path, methods in paths.items()
        if path.startswith(ROUTES)
        for method, operation in methods.items()
    }
    assert named == {
        (ROUTES, "get"): "gateway_routes_list",
        (ROUTES, "post"): "gateway_routes_create",
        (f"{ROUTES}/{{name}}", "get"): "gateway_routes_read",
        (f"{ROUTES}/{{name}}", "patch"): "gateway_routes_update",
        (f"{ROUTES}/{{name}}", "delete"): "gateway_routes_delete",
        (f"{ROUTES}/{{name}}/status", "get"): "gateway_routes_status",
    }


def test_the_schema_states_the_role_rule_that_create_and_patch_apply(admin, client):
    """`required_roles` items are role slugs of at most 50 characters (the shape tokens carry
    them in): the schema says so, and what it allows is accepted, what it refuses is not."""
    import re

    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    for body in ("RouteInputRequest", "PatchedRouteChangesRequest"):
        roles = components[body]["properties"]["required_roles"]["items"]
        assert roles["maxLength"] == 50, body
        pattern = re.compile(roles["pattern"])
        assert pattern.search("billing:read"), body
        assert not pattern.search("Admin"), body
    ok = {**BODY, "required_roles": ["r" * 50]}
    assert admin.post(ROUTES, ok, format="json").status_code == 201
    too_long = admin.patch(f"{ROUTES}/orders", {"required_roles": ["r" * 51]}, format="json")
    assert too_long.status_code == 400
    assert list(too_long.json()["errors"]) == ["required_roles.0"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("put", ROUTES, "GET, POST, HEAD, OPTIONS"),
        ("delete", ROUTES, "GET, POST, HEAD, OPTIONS"),
        ("put", f"{ROUTES}/orders", "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("post", f"{ROUTES}/orders", "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("post", f"{ROUTES}/orders/status", "GET, HEAD, OPTIONS"),
        ("delete", f"{ROUTES}/orders/status", "GET, HEAD, OPTIONS"),
    ],
)
def test_other_methods_are_405_problems_naming_the_allowed_ones(admin, method, path, allow):
    assert admin.post(ROUTES, BODY, format="json").status_code == 201
    response = getattr(admin, method)(path, BODY, format="json")
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == allow
    assert admin.get(f"{ROUTES}/orders").json()["upstream_url"] == BODY["upstream_url"]


@pytest.mark.parametrize("caller", ["no-token", "forged-token", "not-admin"])
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", ROUTES, "GET, POST, HEAD, OPTIONS"),
        ("PUT", f"{ROUTES}/orders", "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("BREW", f"{ROUTES}/orders/status", "GET, HEAD, OPTIONS"),
    ],
)
def test_other_methods_are_405_before_the_token_or_the_role_is_checked(
    api_client, method, path, allow, caller
):
    token = {"no-token": None, "forged-token": "forged", "not-admin": access_token()}[caller]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = api_client.generic(method, path, **headers)
    assert response.status_code == 405, response.content
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == allow


def test_a_method_a_view_has_is_still_refused_without_the_admin_role(api_client):
    for authorization in (None, f"Bearer {access_token()}"):
        headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
        for method in ("GET", "POST", "HEAD", "OPTIONS"):
            response = api_client.generic(method, ROUTES, **headers)
            assert response.status_code == (401 if authorization is None else 403), method


@pytest.mark.parametrize("method", ["post", "patch"])
def test_bodies_that_are_not_a_json_object_are_400_or_415_problems(admin, method):
    assert admin.post(ROUTES, BODY, format="json").status_code == 201
    path = ROUTES if method == "post" else f"{ROUTES}/orders"
    send = getattr(admin, method)
    malformed = send(path, '{"name": ', content_type="application/json")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_request")
    form = send(path, "name=x", content_type="application/x-www-form-urlencoded")
    assert (form.status_code, form.json()["code"]) == (415, "unsupported_media_type")
    listed = send(path, ["orders"], format="json")
    assert (listed.status_code, listed.json()["code"]) == (400, "validation_error")
    for answer in (malformed, form, listed):
        assert answer.headers["Content-Type"] == "application/problem+json"
    assert admin.get(ROUTES).json()["count"] == 1
    assert admin.get(f"{ROUTES}/orders").json()["timeout_ms"] == BODY["timeout_ms"]


def test_unknown_routes_are_404_route_not_found_problems(admin):
    for method in ("get", "patch", "delete"):
        response = getattr(admin, method)(f"{ROUTES}/nope", {"retries": 1}, format="json")
        assert response.status_code == 404, method
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "route_not_found", method
    status = admin.get(f"{ROUTES}/nope/status")
    assert (status.status_code, status.json()["code"]) == (404, "route_not_found")


def test_status_counts_each_answer_of_the_route_by_status(admin, proxy, upstream, settings):
    created = admin.post(
        ROUTES,
        {"name": "calm", "path_prefix": "/calm", "upstream_url": upstream.url},
        format="json",
    )
    assert created.status_code == 201
    assert proxy.get("/calm/a").status_code == 200
    assert proxy.get("/calm/b").status_code == 200
    assert proxy.post("/calm/c").status_code == 405  # the route's own refusal, counted too
    assert proxy.get("/elsewhere").status_code == 404  # no route: not this route's
    status = admin.get(f"{ROUTES}/calm/status")
    assert status.status_code == 200
    body = status.json()
    assert body["name"] == "calm"
    assert body["enabled"] is True
    assert body["circuit"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "retry_after_seconds": None,
    }
    assert body["window_seconds"] == settings.GATEWAY_STATUS_WINDOW_SECONDS
    assert body["requests"] == {"total": 3, "by_status": {"200": 2, "405": 1}}
    latency = body["latency_ms"]
    assert all(latency[key] is not None and latency[key] >= 0 for key in latency), latency
    assert latency["p50"] <= latency["p95"]
