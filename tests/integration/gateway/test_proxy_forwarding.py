"""The lean proxy forwards method, path, query, body and end-to-end headers; sets its own."""

import json
import threading
from types import SimpleNamespace
from wsgiref.util import setup_testing_defaults

import httpx
import pytest

from core.domain.gateway.route import AuthMode
from tests.factories.gateway import gunicorn_environ

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def test_request_is_forwarded_with_prefix_stripped(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url + "/base")
    response = proxy.post(
        "/orders/42/items?x=1&y=%20z",
        content=b'{"a": 1}',
        headers={"Content-Type": "application/json", "X-Custom": "kept"},
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/base/42/items"
    assert seen["query"] == "x=1&y=%20z"
    assert seen["body"] == '{"a": 1}'
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["x-request-id"] == response.headers["x-request-id"]
    assert seen["headers"]["x-forwarded-for"] == "10.1.2.3"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-host"] == "testserver"
    assert seen["headers"]["traceparent"].startswith("00-")


def test_prefix_is_kept_when_strip_prefix_is_off(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, strip_prefix=False)
    assert proxy.get("/orders/1").json()["path"] == "/orders/1"


def test_incoming_request_id_and_trace_are_continued(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url)
    trace = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    response = proxy.get("/orders", headers={"X-Request-ID": "abc-1", "traceparent": trace})
    assert response.headers["x-request-id"] == "abc-1"
    sent = response.json()["headers"]
    assert sent["x-request-id"] == "abc-1"
    assert sent["traceparent"].startswith("00-" + "1" * 32 + "-")
    assert sent["traceparent"] != trace


def test_spoofed_identity_and_forwarding_headers_are_replaced(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url)
    response = proxy.get(
        "/orders",
        headers={
            "X-User-Id": "admin",
            "X-User-Roles": "admin",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
        },
    )
    sent = response.json()["headers"]
    assert "x-user-id" not in sent
    assert "x-user-roles" not in sent
    assert sent["x-forwarded-for"] == "10.1.2.3"
    assert sent["x-forwarded-proto"] == "http"


@pytest.mark.parametrize("auth", [AuthMode.NONE, AuthMode.OPTIONAL])
def test_identity_claims_spelt_with_underscores_are_dropped_too(proxy, upstream, add_route, auth):
    # WSGI folds `X_User_Id` and `X-User-Id` into one key (HTTP_X_USER_ID): gunicorn drops
    # names with `_`, a server that folds them must not get them through either.
    add_route(upstream_url=upstream.url, auth=auth)
    sent = proxy.get(
        "/orders",
        headers={"X_User_Id": "admin", "x_user_roles": "admin", "X_Forwarded_For": "6.6.6.6"},
    ).json()["headers"]
    assert not {"x-user-id", "x-user-roles", "x_user_id", "x_user_roles"} & set(sent)
    assert sent["x-forwarded-for"] == "10.1.2.3"


def test_trusted_proxy_chain_is_extended(proxy, upstream, add_route, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    add_route(upstream_url=upstream.url)
    sent = proxy.get(
        "/orders", headers={"X-Forwarded-For": "7.7.7.7", "X-Forwarded-Proto": "https"}
    ).json()["headers"]
    assert sent["x-forwarded-for"] == "7.7.7.7, 10.1.2.3"
    assert sent["x-forwarded-proto"] == "https"


def test_hop_by_hop_headers_are_not_forwarded_either_way(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url)
    # `HTTP2-Settings` goes with an h2c upgrade of this one connection (RFC 7540 §3.2.1),
    # even when the client leaves it out of `Connection`.
    response = proxy.get(
        "/orders/hop",
        headers={
            "Connection": "X-Private",
            "X-Private": "1",
            "TE": "trailers",
            "HTTP2-Settings": "AAMAAABkAAQAAP__",
        },
    )
    sent = response.json()["headers"]
    assert "x-private" not in sent
    assert "te" not in sent
    assert "http2-settings" not in sent
    assert "x-secret-hop" not in response.headers
    assert response.headers["x-end"] == "yes"


def test_repeated_response_headers_survive(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url)
    response = proxy.get("/orders/cookie")
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_an_upstream_cannot_set_the_django_admins_cookies(proxy, upstream, add_route):
    # They share this origin: an upstream's `sessionid` would sign an admin's browser into a
    # session of its choosing, its `csrftoken` fix the admin's CSRF token.
    add_route(upstream_url=upstream.url)
    response = proxy.get("/orders/platformcookies")
    assert response.headers.get_list("set-cookie") == ["b=2; Path=/"]


def test_head_is_forwarded_without_a_body(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url)
    response = proxy.head("/orders/x")
    assert response.status_code == 200
    assert response.content == b""
    assert upstream.seen[-1]["method"] == "HEAD"


def test_answers_without_a_body_never_state_a_length_of_zero_they_do_not_have(
    proxy, upstream, add_route
):
    # RFC 9110 §8.6: a 304 or a HEAD answer may only state the full answer's length, and 204
    # none; the proxy passes the upstream's on and makes none up.
    add_route(upstream_url=upstream.url)
    not_modified = proxy.get("/orders/notmodified", headers={"If-None-Match": '"v1"'})
    assert not_modified.status_code == 304
    assert not_modified.headers.get_list("content-length") == ["4096"]
    unsized = proxy.head("/orders/unsized")
    assert unsized.status_code == 200
    assert "content-length" not in unsized.headers
    assert int(proxy.head("/orders/x").headers["content-length"]) > 0  # the upstream's
    refused = proxy.head("/nothing")  # the gateway's own answer: the length of its GET
    assert refused.headers["content-length"] == str(len(proxy.get("/nothing").content))


def test_unknown_path_is_route_not_found(proxy):
    response = proxy.get("/nothing/here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "route_not_found"
    assert len(response.headers["x-request-id"]) == 32


def test_method_outside_the_route_is_405_with_allow(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, methods=frozenset({"GET"}))
    response = proxy.delete("/orders/1")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


def test_oversized_body_is_413_before_any_upstream_call(proxy, upstream, add_route, settings):
    settings.GATEWAY_MAX_BODY_BYTES = 10
    add_route(upstream_url=upstream.url)
    response = proxy.post("/orders", content=b"x" * 11)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert upstream.calls == {}


def test_malformed_content_length_and_a_foreign_or_empty_host_are_400(upstream, add_route):
    from apps.gateway.entrypoint import GatewayApplication

    add_route(upstream_url=upstream.url)
    app, answers = GatewayApplication(), []

    def start_response(status, headers):
        answers.append(status)

    base = {"REQUEST_METHOD": "POST", "PATH_INFO": "/orders", "wsgi.url_scheme": "http"}
    app({**base, "HTTP_HOST": "testserver", "CONTENT_LENGTH": "x"}, start_response)
    app({**base, "HTTP_HOST": "testserver", "CONTENT_LENGTH": "-1"}, start_response)
    app({**base, "HTTP_HOST": "evil.example"}, start_response)
    app({**base, "HTTP_HOST": "", "SERVER_NAME": "testserver"}, start_response)  # no fallback
    assert answers == ["400 Bad Request"] * 4
    assert upstream.calls == {}


def test_a_change_of_allowed_hosts_is_heeded_by_a_running_proxy(
    proxy, upstream, add_route, settings
):
    # The handler remembers each host's verdict; the verdicts belong to one ALLOWED_HOSTS list.
    add_route(upstream_url=upstream.url)
    for_api = {"Host": "api.example"}
    assert proxy.get("/orders", headers=for_api).status_code == 400
    assert proxy.get("/orders").status_code == 200  # testserver
    settings.ALLOWED_HOSTS = ["api.example"]
    assert proxy.get("/orders", headers=for_api).status_code == 200
    assert proxy.get("/orders").status_code == 400


def _post_to_gateway(body, **fields):
    """A POST of `body` (a stream, as the server hands it over) to /orders, straight to the
    gateway's WSGI application: its status line and its body."""
    from apps.gateway.entrypoint import GatewayApplication

    statuses = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/orders",
        "HTTP_HOST": "testserver",
        "wsgi.input": body,
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1",
        **fields,
    }
    answer = GatewayApplication()(environ, lambda status, headers: statuses.append(status))
    return statuses[0], b"".join(answer)


def test_chunked_bodies_are_read_and_limited(upstream, add_route, settings):
    import io

    settings.GATEWAY_MAX_BODY_BYTES = 10
    add_route(upstream_url=upstream.url)
    statuses = [
        _post_to_gateway(io.BytesIO(body), HTTP_TRANSFER_ENCODING="chunked")[0]
        for body in (b"small", b"x" * 20)
    ]
    assert statuses == ["200 OK", "413 Request Entity Too Large"]
    assert upstream.seen[-1]["method"] == "POST"


@pytest.mark.parametrize("framing", [b"0x4\r\nabcd\r\n0\r\n\r\n", b"4;x\nbad\r\nabcd\r\n0\r\n\r\n"])
def test_a_chunked_body_whose_framing_breaks_as_it_is_read_is_a_400(upstream, add_route, framing):
    # Under gunicorn the worker's poller refuses such a body before any thread reads it, but a
    # body past what it holds (MAX_HELD_BODY_BYTES) is decoded by gunicorn as the proxy reads
    # it, and its error raised there: gunicorn's own reader over the bytes, as a thread has it.
    from gunicorn.http.body import Body, ChunkedReader
    from gunicorn.http.unreader import IterUnreader

    add_route(upstream_url=upstream.url)
    reader = Body(ChunkedReader(SimpleNamespace(trailers=[]), IterUnreader([framing])))
    status, body = _post_to_gateway(reader, HTTP_TRANSFER_ENCODING="chunked")
    assert status == "400 Bad Request"
    problem = json.loads(body)
    assert (problem["code"], problem["detail"]) == (
        "malformed_request",
        "The request body is not valid HTTP/1.1.",
    )
    assert upstream.calls == {}


def test_a_body_shorter_than_its_content_length_never_goes_upstream(upstream, add_route):
    import io

    add_route(upstream_url=upstream.url)
    # What gunicorn's reader gives when the client stops sending: the bytes that came.
    status, body = _post_to_gateway(io.BytesIO(b"amount=10"), CONTENT_LENGTH="11")
    assert status == "400 Bad Request"
    assert b"malformed_request" in body
    assert upstream.calls == {}


def test_unexpected_errors_are_a_500_problem(add_route):
    from apps.gateway.entrypoint import GatewayApplication, GatewayHandler

    def broken():
        raise RuntimeError("boom")

    app = GatewayApplication(GatewayHandler(forward=broken))
    statuses = []
    body = app(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "HTTP_HOST": "testserver"},
        lambda status, headers: statuses.append(status),
    )
    assert statuses == ["500 Internal Server Error"]
    assert b"internal_error" in body[0]


@pytest.fixture
def orders_and_its_admin(upstream, add_route):
    """A public `/orders` route (upstream `/base`) and a protected `/orders/admin` below it."""
    add_route(upstream_url=upstream.url + "/base")
    add_route(
        name="orders-admin",
        path_prefix="/orders/admin",
        upstream_url=upstream.url + "/admin",
        auth=AuthMode.REQUIRED,
    )


def test_paths_are_matched_and_forwarded_in_normal_form(proxy, orders_and_its_admin):
    assert proxy.get("/orders//admin/users").json()["code"] == "not_authenticated"
    assert proxy.get("/orders/%61dmin/users").json()["code"] == "not_authenticated"
    assert proxy.get("/orders//42//items/").json()["path"] == "/base/42/items/"


@pytest.mark.parametrize(
    "path", ["/orders/admin./users", "/orders/admin%20/users", "/orders/admin%09/users"]
)
def test_a_trimmed_reading_that_leads_to_another_route_is_refused(
    proxy, upstream, orders_and_its_admin, path
):
    """Windows and IIS drop a segment's trailing dots and spaces, old Spring trimmed
    whitespace: `/orders/admin./users` reached the open route's upstream as
    `/base/admin./users`, which such an upstream reads as `/base/admin/users`."""
    refused = proxy.get(path)
    assert (refused.status_code, refused.json()["code"]) == (400, "malformed_request")
    assert proxy.get("/orders/items.").json()["path"] == "/base/items."
    assert [seen["path"] for seen in upstream.seen] == ["/base/items."]


@pytest.mark.parametrize(
    "raw_uri",
    [
        "/orders/admin%2Fusers",
        "http://testserver/orders/admin%2Fusers?x=1",
        # Normalised once, `%%32%65` was `%2e`: the open route forwarded `/base/x/%2E%2E/admin`,
        # which an upstream that decodes before it resolves dot segments reads as `/admin`,
        # the protected route's upstream path.
        "/orders/x/%%32%65%%32%65/admin/users",
        "/orders/%zz",
    ],
)
def test_an_encoded_slash_or_a_stray_percent_is_refused_with_a_problem_document(
    upstream, add_route, raw_uri
):
    from apps.gateway.entrypoint import GatewayApplication

    add_route(upstream_url=upstream.url)
    # As gunicorn calls it: PATH_INFO decoded, the request line's target as sent in RAW_URI
    # (origin form, or the absolute form a client may send).
    environ = {"PATH_INFO": "/orders/admin/users", "RAW_URI": raw_uri}
    setup_testing_defaults(environ)
    answered = []
    body = b"".join(GatewayApplication()(environ, lambda *status: answered.append(status)))
    status, headers = answered[0]
    assert status == "400 Bad Request"
    assert dict(headers)["Content-Type"] == "application/problem+json"
    assert json.loads(body)["code"] == "malformed_request"
    assert upstream.seen == []


@pytest.mark.parametrize(
    ("raw_uri", "sent"),
    [
        ("/orders/x?", "/x?"),
        ("/orders/x", "/x"),
        ("/orders/x?a=1&b", "/x?a=1&b"),
        ("http://testserver/orders/x?", "/x?"),
        ("http://testserver/orders/x", "/x"),
    ],
)
def test_the_query_is_forwarded_as_sent_even_an_empty_one(upstream, add_route, raw_uri, sent):
    from apps.gateway.entrypoint import GatewayApplication

    add_route(upstream_url=upstream.url)
    answered = []
    GatewayApplication()(gunicorn_environ(raw_uri), lambda *status: answered.append(status))
    assert answered[0][0] == "200 OK"
    assert upstream.seen[-1]["path"] == sent


@pytest.mark.parametrize(
    ("raw_uri", "sent"),
    [
        ("/orders/x#/../../other/y", "/a/x"),
        ("/orders/x?q=1#/../../other", "/a/x?q=1"),
        ("http://testserver/orders/x#/../../other/y", "/a/x"),
    ],
)
def test_a_fragment_in_the_request_target_neither_routes_nor_travels(
    upstream, add_route, raw_uri, sent
):
    from apps.gateway.entrypoint import GatewayApplication

    add_route(upstream_url=upstream.url + "/a")
    add_route(name="other", path_prefix="/other", upstream_url=upstream.url + "/b")
    answered = []
    GatewayApplication()(gunicorn_environ(raw_uri), lambda *status: answered.append(status))
    assert answered[0][0] == "200 OK"
    assert [seen["path"] for seen in upstream.seen] == [sent]


def test_an_absolute_form_target_is_for_its_authority_not_the_host_header(upstream, add_route):
    # RFC 9112 §3.2.2: the allow-list, X-Forwarded-Host and the cache key see the authority.
    from apps.gateway.entrypoint import GatewayApplication

    add_route(upstream_url=upstream.url, cache_ttl_seconds=60)
    answered = []

    def get(raw_uri, host):
        environ = gunicorn_environ(raw_uri, HTTP_HOST=host)
        body = b"".join(GatewayApplication()(environ, lambda *status: answered.append(status)))
        status, headers = answered.pop()
        return int(status[:3]), dict(headers), body

    status, headers, _ = get("http://localhost/orders/x", "127.0.0.1")
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert dict(upstream.seen[-1]["headers"])["X-Forwarded-Host"] == "localhost"
    status, headers, _ = get("/orders/x", "localhost")
    assert (status, headers["X-Cache"]) == (200, "HIT")
    status, _, body = get("http://evil.example/orders/x", "localhost")
    assert (status, json.loads(body)["code"]) == (400, "bad_request")
    status, _, body = get("http://localhost/orders/x", "local host")  # still refused: invalid
    assert (status, json.loads(body)["code"]) == (400, "bad_request")
    assert len(upstream.seen) == 1


@pytest.mark.parametrize(
    ("method", "raw_uri"), [("OPTIONS", "*"), ("CONNECT", "127.0.0.1:9"), ("GET", "orders")]
)
def test_a_target_that_is_not_a_path_is_refused_at_once(upstream, add_route, method, raw_uri):
    # gunicorn hands these on (asterisk and authority forms): the route search never ended,
    # and each such request kept a worker thread spinning.
    from apps.gateway.entrypoint import GatewayApplication

    add_route(path_prefix="/", upstream_url=upstream.url)
    answered, body = [], []
    environ = gunicorn_environ(raw_uri, method)
    call = threading.Thread(
        target=lambda: body.append(
            b"".join(GatewayApplication()(environ, lambda *status: answered.append(status)))
        ),
        daemon=True,
    )
    call.start()
    call.join(timeout=10)
    assert not call.is_alive(), f"{method} {raw_uri} gets no answer"
    assert answered[0][0] == "400 Bad Request"
    assert json.loads(body[0])["code"] == "malformed_request"
    assert upstream.seen == []


def test_tracestate_travels_with_a_continued_trace_only(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url)
    trace = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    continued = proxy.get("/orders", headers={"traceparent": trace, "tracestate": "v=1"})
    assert continued.json()["headers"]["tracestate"] == "v=1"
    restarted = proxy.get("/orders", headers={"traceparent": "garbage", "tracestate": "v=1"})
    assert "tracestate" not in restarted.json()["headers"]


@pytest.mark.parametrize(
    ("incoming", "flags"),
    [
        (None, "00"),
        ("garbage", "00"),
        ("00-" + "1" * 32 + "-" + "2" * 16 + "-01", "01"),
        ("00-" + "1" * 32 + "-" + "2" * 16 + "-00", "00"),
    ],
    ids=["none", "invalid", "client-sampled", "client-not-sampled"],
)
def test_a_trace_the_gateway_starts_is_not_sampled_and_a_clients_keeps_its_flags(
    proxy, upstream, add_route, incoming, flags
):
    """W3C Trace Context: `01` says the caller may have recorded the trace. Without
    OpenTelemetry the gateway records nothing, so a trace it starts says `00`; a client's trace
    goes on with the client's own flags."""
    add_route(upstream_url=upstream.url)
    headers = {"traceparent": incoming} if incoming is not None else {}
    sent = proxy.get("/orders", headers=headers).json()["headers"]["traceparent"]
    assert sent.split("-")[3] == flags, sent


@pytest.mark.parametrize(
    "header",
    [
        "Forwarded",
        "X-Real-IP",
        "X-Forwarded-Port",
        "X-Forwarded-Prefix",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Forwarded-Scheme",
        "X-Forwarded-Uri",
        "X-Original-URI",
        "X-Original-Host",
        "Front-End-Https",
        "X-HTTP-Method-Override",
        "X-Method-Override",
        "True-Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "X-Client-IP",
        "X-Cluster-Client-IP",
        "X-Original-Forwarded-For",
        "Client-IP",
        "X-Forwarded",
        "Forwarded-For",
        "X-Envoy-External-Address",
    ],
)
def test_client_claims_about_its_address_or_the_url_are_dropped(proxy, upstream, add_route, header):
    add_route(upstream_url=upstream.url)
    response = proxy.get("/orders", headers={header: "/admin"})
    assert header.lower() not in response.json()["headers"]


@pytest.mark.parametrize(
    "header",
    [
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Groups",
        "X-Forwarded-Access-Token",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Auth-Request-Preferred-Username",
        "X-Auth-Request-Groups",
        "X-Auth-Request-Access-Token",
        "X-Remote-User",
        "Remote-User",
        "X-WEBAUTH-USER",
        "X-Consumer-ID",
        "X-Consumer-Username",
        "X-Consumer-Custom-ID",
        "X-Consumer-Groups",
        "X-Authenticated-Userid",
        "X-Authenticated-Scope",
        "X-Credential-Identifier",
        "X-Anonymous-Consumer",
        "X-Userinfo",
        "X-Amzn-Oidc-Identity",
        "X-Amzn-Oidc-Data",
        "X-Amzn-Oidc-Accesstoken",
        "X-MS-CLIENT-PRINCIPAL",
        "X-MS-CLIENT-PRINCIPAL-NAME",
        "X-MS-CLIENT-PRINCIPAL-ID",
        "X-MS-CLIENT-PRINCIPAL-IDP",
        "X-Goog-Authenticated-User-Email",
        "X-Goog-Authenticated-User-Id",
        "X-Goog-IAP-JWT-Assertion",
        "X-Auth-User",
        "X-User",
        "X-Roles",
    ],
)
def test_client_claims_of_an_authenticated_user_are_dropped(proxy, upstream, add_route, header):
    add_route(upstream_url=upstream.url)
    response = proxy.get("/orders", headers={header: "admin@example.com"})
    assert header.lower() not in response.json()["headers"]


def test_forwarded_and_x_real_ip_are_dropped_behind_trusted_proxies_too(
    proxy, upstream, add_route, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    add_route(upstream_url=upstream.url)
    response = proxy.get("/orders", headers={"Forwarded": "for=1.2.3.4", "X-Real-IP": "1.2.3.4"})
    sent = response.json()["headers"]
    assert "forwarded" not in sent
    assert "x-real-ip" not in sent


def test_path_parameters_pass_unless_they_lead_to_another_route(
    proxy, upstream, orders_and_its_admin
):
    kept = proxy.get("/orders/items;jsessionid=abc?a=1;b=2")
    assert kept.json()["path"] == "/base/items;jsessionid=abc"
    assert kept.json()["query"] == "a=1;b=2"
    for path in ("/orders/admin;x/users", "/orders/..;/orders/admin/users"):
        refused = proxy.get(path)
        assert (refused.status_code, refused.json()["code"]) == (400, "malformed_request")
    assert upstream.calls["/base/items;jsessionid=abc"] == 1


@pytest.mark.parametrize(
    "raw_uri",
    [
        "//api/v1/gateway/routes",
        "/x/../api/v1/auth/me",
        "/./health",
        "/%2E/metrics",
        "//.well-known/jwks.json",
        "/orders/../admin/",
    ],
)
def test_a_path_that_is_the_platforms_own_in_normal_form_is_never_forwarded(
    upstream, add_route, raw_uri
):
    """API.md: only paths that are not the platform's own are matched against the routes. The
    proxy matches a path in its normal form, so one the dispatcher hands it (`//api/…` is not
    `/api/…` to it) but whose normal form is the platform's is served by no route, not even
    the root route that catches everything else."""
    from apps.gateway.entrypoint import GatewayApplication
    from core.domain.gateway.route import is_platform_path

    add_route(name="root", path_prefix="/", upstream_url=upstream.url)
    environ = gunicorn_environ(raw_uri)
    assert not is_platform_path(environ["PATH_INFO"])  # config.wsgi sends it to the proxy
    answered = []
    body = b"".join(GatewayApplication()(environ, lambda *status: answered.append(status)))
    assert answered[0][0] == "404 Not Found"
    assert json.loads(body)["code"] == "route_not_found"
    assert upstream.seen == []


def test_the_gateways_own_answers_forbid_sniffing_and_the_upstreams_pass_as_sent(
    proxy, upstream, add_route, settings
):
    """Every Django answer carries `X-Content-Type-Options: nosniff`; the gateway's own
    problem documents do too. An upstream's answer passes as the upstream sent it."""
    from apps.gateway.entrypoint import GatewayApplication, GatewayHandler
    from apps.gateway.route_table import RoutesUnavailable

    add_route(upstream_url=upstream.url)
    add_route(name="secret", path_prefix="/secret", auth=AuthMode.REQUIRED)
    settings.GATEWAY_MAX_BODY_BYTES = 10
    own = [
        proxy.get("/nowhere"),  # 404
        proxy.get("/secret/x"),  # 401
        proxy.get("/orders/..;/secret/x"),  # 400 malformed_request
        proxy.get("/orders/x", headers={"Host": "elsewhere.test"}),  # 400 bad_request
        proxy.post("/orders/x", content=b"x" * 11),  # 413
    ]

    class Failing:
        def __init__(self, error):
            self.error = error

        def execute(self, request):
            raise self.error

    for error in (RoutesUnavailable(), RuntimeError("boom")):  # 503, 500
        app = GatewayApplication(GatewayHandler(forward=lambda error=error: Failing(error)))
        transport = httpx.WSGITransport(app=app)
        with httpx.Client(transport=transport, base_url="http://testserver") as client:
            own.append(client.get("/orders/1"))

    assert [r.status_code for r in own] == [404, 401, 400, 400, 413, 503, 500]
    assert all(r.headers.get("x-content-type-options") == "nosniff" for r in own)
    proxied = proxy.get("/orders/x")
    assert proxied.status_code == 200
    assert "x-content-type-options" not in proxied.headers
