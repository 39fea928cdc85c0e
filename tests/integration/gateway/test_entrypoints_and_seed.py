"""config.wsgi's dispatcher, the Django fallback view, the seeder, the admin site, clients."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.gateway import wiring
from core.usecases.gateway.ports import UpstreamFailure, UpstreamRequest
from tests.factories.gateway import refusing_url
from tests.factories.tokens import access_token, user_uuid

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def test_wsgi_dispatcher_sends_platform_paths_to_django_and_the_rest_to_the_proxy():
    from django.core import signals
    from django.db import close_old_connections

    from config.wsgi import application

    # Django's real handler would close the test transaction's connection after a request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)

    seen = []

    def start_response(status, headers):
        seen.append((status, dict(headers)))

    base = {"REQUEST_METHOD": "GET", "HTTP_HOST": "testserver", "SERVER_NAME": "testserver"}
    base |= {"SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    import io

    for path in ("/health", "/api/v1/nothing", "/somewhere"):
        body = b"".join(
            application({**base, "PATH_INFO": path, "wsgi.input": io.BytesIO()}, start_response)
        )
        seen[-1] = (*seen[-1], body)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    assert seen[0][0].startswith("200")
    assert b'"not_found"' in seen[1][2]
    assert b'"route_not_found"' in seen[2][2]


def test_django_view_serves_the_same_proxy_untouched_by_problem_middleware(client, upstream):
    wiring.create_route().execute(
        __import__("tests.factories.gateway", fromlist=["route"]).route(upstream_url=upstream.url)
    )
    ok = client.get("/orders/cookie?x=1", HTTP_X_REQUEST_ID="rid-9")
    assert ok.status_code == 200
    assert ok["X-Request-ID"] == "rid-9"
    assert ok.json()["query"] == "x=1"
    assert {"a", "b"} <= set(ok.cookies)
    failing = client.get("/orders/fail")
    assert failing.status_code == 500
    assert failing["Content-Type"] == "application/json"  # the upstream's body, not a problem
    assert client.get("/nope").json()["code"] == "route_not_found"
    assert client.get("/api/v1/nope").json()["code"] == "not_found"


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])  # every seeder runs
def test_seed_demo_adds_the_demo_route_once():
    call_command("seed")
    assert wiring.get_route().execute("demo").is_err()
    first, second = io.StringIO(), io.StringIO()
    call_command("seed", "--demo", stdout=first)
    call_command("seed", "--demo", stdout=second)  # idempotent: no error, nothing changed
    demo = wiring.get_route().execute("demo").unwrap()
    assert demo.path_prefix == "/demo"
    assert demo.upstream_url.endswith("/health")
    assert f"[gateway] demo route 'demo': /demo -> {demo.upstream_url}" in first.getvalue()
    assert (
        f"[gateway] demo route 'demo' already present: /demo -> {demo.upstream_url}"
        in second.getvalue()
    )


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])  # every seeder runs
def test_seed_demo_keeps_a_demo_route_the_operator_changed_and_says_where_it_points(add_route):
    """The route named `demo` is the demo route, whatever an operator made of it since: seeding
    again keeps it as it is (and succeeds), but says where it points, since the README's tour
    expects it at /demo."""
    add_route(name="demo", path_prefix="/demo-moved", upstream_url="http://127.0.0.1:9/x")
    out = io.StringIO()
    call_command("seed", "--demo", stdout=out)
    assert (
        "[gateway] demo route 'demo' already present: /demo-moved -> http://127.0.0.1:9/x"
        in out.getvalue()
    )
    assert wiring.get_route().execute("demo").unwrap().path_prefix == "/demo-moved"


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])  # every seeder runs
@pytest.mark.parametrize("prefix", ["/demo", "/demo/"])
def test_seed_demo_fails_when_another_route_serves_the_demo_prefix(add_route, prefix):
    """`/demo` served by another route: the demo route cannot be added, so `seed --demo` exits
    non-zero (`make run SEED_ARGS=--demo` stops there) and names the route in the way; the
    other seeders still run and that route is left alone."""
    add_route(name="mine", path_prefix=prefix)
    out = io.StringIO()
    with pytest.raises(CommandError, match="could not be created"):  # a non-zero exit status
        call_command("seed", "--demo", stdout=out)
    assert (
        "[gateway] demo route not added (route_prefix_taken): path_prefix: Route 'mine' already "
        "serves it. Move or remove that route, or seed without --demo." in out.getvalue()
    )
    assert "[aggregation]" in out.getvalue()  # the seeders after this one ran too
    assert wiring.get_route().execute("demo").is_err()
    assert wiring.get_route().execute("mine").unwrap().path_prefix == "/demo"


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])  # every seeder runs
def test_seed_demo_fails_on_a_public_base_url_no_route_can_point_at(settings):
    settings.PUBLIC_BASE_URL = "ftp://files.example.com"
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("seed", "--demo", stdout=out)
    assert (
        "[gateway] demo route not added (validation_error): upstream_url: Use an http:// or "
        "https:// URL.\n" in out.getvalue()
    )


def test_admin_site_lists_routes_with_circuit_state_and_saves_announce(admin_client, upstream):
    from apps.gateway.models import RouteRow

    wiring.create_route().execute(
        __import__("tests.factories.gateway", fromlist=["route"]).route(upstream_url=upstream.url)
    )
    listing = admin_client.get("/admin/gateway/routerow/")
    assert listing.status_code == 200
    assert b"closed" in listing.content
    row = RouteRow.objects.using("gateway").get(name="orders")
    form = {
        "name": "orders",
        "path_prefix": "/orders2",
        "upstream_url": upstream.url,
        "strip_prefix": "on",
        "enabled": "on",
        "methods": '["get"]',
        "auth": "none",
        "required_roles": "[]",
        "rate_limit_requests": "",
        "rate_limit_window_seconds": "",
        "rate_limit_key": "",
        "cache_ttl_seconds": "0",
        "timeout_ms": "1000",
        "retries": "0",
        "failure_threshold": "5",
        "recovery_seconds": "30",
    }
    changed = admin_client.post(f"/admin/gateway/routerow/{row.pk}/change/", form)
    assert changed.status_code == 302, changed.content[:2000]
    assert wiring.state().routes.current().match("/orders2/x").methods == frozenset({"GET"})
    bad = admin_client.post(
        f"/admin/gateway/routerow/{row.pk}/change/",
        {**form, "upstream_url": "ftp://x", "rate_limit_requests": "5"},
    )
    assert bad.status_code == 200
    assert b"errorlist" in bad.content
    deleted = admin_client.post(f"/admin/gateway/routerow/{row.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert wiring.state().routes.current().match("/orders2/x") is None


def test_both_upstream_clients_map_failures(upstream):
    from apps.gateway.upstream import HttpClientUpstream
    from apps.gateway.upstream_curl import CurlUpstream

    for client in (HttpClientUpstream(pool_size=1), CurlUpstream()):
        ok = client.send(
            UpstreamRequest("GET", upstream.url + "/x?y=1", (("A", "1"), ("a", "2")), None), 2
        )
        assert ok.unwrap().status == 200
        assert ok.unwrap().body
        again = client.send(UpstreamRequest("POST", upstream.url + "/x", (), b"hi"), 2)
        assert again.unwrap().status == 200
        refused = client.send(UpstreamRequest("GET", refusing_url() + "/", (), None), 1)
        assert refused.unwrap_err() is UpstreamFailure.CONNECTION
        slow = client.send(UpstreamRequest("GET", upstream.url + "/slow?ms=800", (), None), 0.1)
        assert slow.unwrap_err() is UpstreamFailure.TIMEOUT
        client.close()


def test_http_client_pool_leaves_out_a_kept_connection_the_upstream_closed():
    import socket
    import threading

    from apps.gateway.upstream import HttpClientUpstream

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    closed = threading.Event()

    def serve_one_answer_per_connection():
        for _ in range(2):
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            connection.close()  # without announcing it: the client pooled it
            closed.set()

    thread = threading.Thread(target=serve_one_answer_per_connection, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    client = HttpClientUpstream(pool_size=2)
    assert client.send(UpstreamRequest("GET", url, (), None), 2).unwrap().body == b"ok"
    assert closed.wait(5)  # the close reached the client's pooled connection: not used
    assert client.send(UpstreamRequest("GET", url, (), None), 2).unwrap().body == b"ok"
    thread.join(timeout=5)
    listener.close()
    client.close()


def test_token_headers_reach_the_upstream_through_the_django_view(
    client, upstream, django_capture_on_commit_callbacks
):
    from core.domain.gateway.route import AuthMode
    from tests.factories.gateway import route

    with django_capture_on_commit_callbacks(using="gateway", execute=True):  # as committed
        wiring.create_route().execute(route(upstream_url=upstream.url, auth=AuthMode.REQUIRED))
    token = access_token(user_id=user_uuid("u-view"))
    seen = client.get("/orders", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert seen["headers"]["x-user-id"] == user_uuid("u-view")
