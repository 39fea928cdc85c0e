"""`make run` with no configuration: a real gunicorn process on the embedded defaults."""

import json
import re

import httpx
import pytest

from tests.e2e.servers import send_raw, split_answer

pytestmark = pytest.mark.e2e


def test_health_and_readiness_with_three_databases_and_the_cache(embedded_server):
    assert httpx.get(f"{embedded_server}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{embedded_server}/health/ready")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {
        "database:default",
        "database:gateway",
        "database:aggregation",
        "cache",
    }


def test_operational_pages_are_served(embedded_server):
    metrics = httpx.get(f"{embedded_server}/metrics")
    assert metrics.status_code == 200
    assert "platform_django_http_requests_total_by_method_total" in metrics.text
    schema = httpx.get(f"{embedded_server}/api/schema/", headers={"Accept": "application/json"})
    assert schema.json()["openapi"].startswith("3.")
    assert httpx.get(f"{embedded_server}/admin/login/").status_code == 200
    docs = httpx.get(f"{embedded_server}/api/docs/")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" not in docs.text  # Swagger UI is served from here, offline too
    bundle = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', docs.text)
    assert bundle, docs.text
    assert httpx.get(f"{embedded_server}{bundle.group(1)}").status_code == 200
    css = httpx.get(f"{embedded_server}/static/admin/css/base.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/health", "/health/ready", "/metrics", "/api/schema/"])
def test_a_head_probe_is_answered_without_a_warning_in_the_log(embedded_process, path):
    # Django writes the body of a HEAD answer; gunicorn drops it and logged a warning for every
    # such request, so a load balancer probing with HEAD (docs/operations.md) left one warning
    # line per probe. The follow-up GET on the same connection is served once the HEAD has been
    # written completely, so its log line comes after anything the HEAD logged.
    log = embedded_process.var_dir / "server.log"
    probe_id, after_id = (f"{what}-{path.strip('/').replace('/', '.')}" for what in ("hp", "ah"))
    with httpx.Client(base_url=embedded_process.url) as http:
        probe = http.head(path, headers={"X-Request-ID": probe_id})
        after = http.get("/health", headers={"X-Request-ID": after_id})
    assert (probe.status_code, probe.content, after.status_code) == (200, b"", 200)
    assert "content-length" in probe.headers
    lines = log.read_text().splitlines()
    assert any(f'"request_id": "{after_id}"' in line for line in lines)
    logged = [json.loads(line) for line in lines if f'"request_id": "{probe_id}"' in line]
    assert [entry["level"] for entry in logged] == ["info"], logged


def test_unknown_api_path_is_a_problem_document_with_a_request_id(embedded_server):
    response = httpx.get(
        f"{embedded_server}/api/v1/does-not-exist", headers={"X-Request-ID": "e2e-1"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "e2e-1"
    assert response.json()["code"] == "not_found"


def test_malformed_and_oversized_requests_never_500(embedded_server):
    huge = httpx.post(
        f"{embedded_server}/api/v1/auth/login",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["code"] == "payload_too_large"
    wrong_method = httpx.put(f"{embedded_server}/health")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_static_file_refuses_other_methods_with_a_problem_document(embedded_server, method):
    response = httpx.request(
        method, f"{embedded_server}/static/admin/css/base.css", headers={"X-Request-ID": "st-1"}
    )
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["x-request-id"] == "st-1"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"POST /o HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "malformed_request"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "malformed_request"),
        (
            b"POST /o HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
            "not_implemented",
        ),
    ],
)
def test_requests_the_server_cannot_parse_get_problem_documents(
    embedded_server, request_bytes, status, code
):
    head, _, body = send_raw(embedded_server, request_bytes).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/problem+json"
    assert len(headers["X-Request-ID"]) == 32
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (status, code)


@pytest.mark.parametrize(
    ("request_bytes", "sent_id"),
    [
        (  # refused once its head was parsed: the id it sent is its id
            b"POST /o HTTP/1.1\r\nHost: x\r\nX-Request-ID: rid-501\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "rid-501",
        ),
        (b"GET /health HTTP/1.1\r\nX-Request-ID: rid-no-host\r\n\r\n", "rid-no-host"),
        (  # not parsed: a new id
            b"POST /o HTTP/1.1\r\nHost: x\r\nX-Request-ID: rid-400\r\nContent-Length: abc\r\n\r\n",
            None,
        ),
    ],
    ids=["501", "no-host", "unparsed"],
)
def test_a_refused_request_has_one_request_id_in_its_answer_and_its_log_line(
    embedded_process, request_bytes, sent_id
):
    # The worker's own refusals answered a new id each, which no log line carried: the id a
    # client quoted led nowhere, and the one it sent was dropped.
    _, headers, _ = split_answer(send_raw(embedded_process.url, request_bytes))
    request_id = headers["X-Request-ID"]
    if sent_id is None:
        assert re.fullmatch("[0-9a-f]{32}", request_id)
    else:
        assert request_id == sent_id
    log = (embedded_process.var_dir / "server.log").read_text()
    assert f"request_id={request_id}" in log


def test_the_log_line_of_a_refused_request_never_quotes_what_the_client_sent(embedded_process):
    # gunicorn's messages quote the request line, a header line without its colon and an
    # invalid header name: a token in a query or a mistyped `Authorization` line was logged.
    secret = "eyJsecret.never-logged"
    head = "GET /svc HTTP/1.1\r\nHost: localhost\r\n"
    log = embedded_process.var_dir / "server.log"
    for request_text, logged in (
        (f"GET /svc?access_token={secret}&q=café HTTP/1.1\r\nHost: x\r\n\r\n", "RequestLine"),
        (f"{head}Authorization Bearer {secret}\r\n\r\n", "Header"),
        (f"{head}Bearer {secret}: 1\r\n\r\n", "HeaderName"),
        (f"{head}X-Long: {secret}\x00\r\n\r\n", "Header: X-LONG"),  # the name, not the value
    ):
        answer = send_raw(embedded_process.url, request_text.encode())
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        refusals = [line for line in log.read_text().splitlines() if "Invalid request" in line]
        assert re.search(
            f" Invalid request from ip=127\\.0\\.0\\.1: Invalid{logged} request_id=[0-9a-f]{{32}}$",
            refusals[-1],
        ), refusals[-1]
    assert secret not in log.read_text()


@pytest.mark.parametrize("path", ["/health", "/no-route-here"], ids=["django", "gateway"])
def test_an_http11_request_without_a_host_is_a_400_and_an_http10_one_is_served(
    embedded_server, path
):
    # RFC 9112 §3.2: a Host header is required in HTTP/1.1 (not in 1.0), and one only.
    status, headers, body = split_answer(
        send_raw(embedded_server, f"GET {path} HTTP/1.1\r\n\r\n".encode())
    )
    assert status.startswith("HTTP/1.1 400 "), status
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["code"], problem["detail"]) == (
        "malformed_request",
        "The request is not valid HTTP/1.1: an HTTP/1.1 request needs a Host header",
    )
    two = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n".encode()
    status, _, body = split_answer(send_raw(embedded_server, two))
    assert (status[9:12], json.loads(body)["code"]) == ("400", "malformed_request")
    status, _, _ = split_answer(send_raw(embedded_server, f"GET {path} HTTP/1.0\r\n\r\n".encode()))
    assert status[9:12] == ("200" if path == "/health" else "404"), status


@pytest.mark.parametrize("path", ["/health", "/no-route-here"], ids=["django", "gateway"])
@pytest.mark.parametrize(
    "host", ["", "evil.example", "local host"], ids=["empty", "foreign", "bad"]
)
def test_a_host_that_is_empty_or_not_allowed_is_a_400_on_either_side(embedded_server, path, host):
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    status, headers, body = split_answer(send_raw(embedded_server, request.encode()))
    assert status.startswith("HTTP/1.1 400 "), status
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["code"] == "bad_request"


def test_chunked_request_bodies_reach_django_and_keep_the_size_limit(embedded_server):
    def chunks(*parts):
        yield from parts

    login = httpx.post(
        f"{embedded_server}/api/v1/auth/login",
        content=chunks(b'{"email": "nobody@example.com", ', b'"password": "not-the-one-1"}'),
        headers={"Content-Type": "application/json"},
    )
    assert login.status_code == 401  # the body was read: unknown credentials, not a 400
    assert login.json()["code"] == "invalid_credentials"
    huge = httpx.post(
        f"{embedded_server}/api/v1/auth/login",
        content=chunks(*[b" " * 65536] * 20),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("request_bytes", "detail"),
    [
        (  # chunk framing the worker's poller refuses before a thread reads it, with the
            # error gunicorn would give (the proxy's own read of such a body, past what the
            # poller holds: tests/integration/gateway/test_proxy_forwarding.py)
            b"POST /nowhere HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0x4\r\nabcd\r\n0\r\n\r\n",
            "The request is not valid HTTP/1.1: Invalid chunk size: b'0x4'",
        ),
        (
            b"POST /nowhere HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;x\nbad\r\nabcd\r\n0\r\n\r\n",
            "The request is not valid HTTP/1.1: Invalid chunk size: b'4;x\\n'",
        ),
        (  # the client stops sending before its Content-Length: nothing may go upstream
            b"POST /nowhere HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\namount=10",
            "The request body ended before its Content-Length.",
        ),
    ],
    ids=["bad-chunk-size", "bare-lf-in-chunk-extension", "body-cut-short"],
)
def test_a_proxied_request_whose_body_breaks_off_or_breaks_the_framing_is_a_400(
    embedded_server, request_bytes, detail
):
    answer = send_raw(embedded_server, request_bytes, then_stop_sending=True)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    problem = json.loads(body)
    assert (problem["code"], problem["detail"]) == ("malformed_request", detail)


def test_the_proxys_log_line_spells_a_utf_8_path_as_djangos_does(embedded_process):
    # WSGI hands the path over as its bytes read as latin-1: the proxy logged `/café` as
    # `/cafÃ©`, where Django's own lines have `/café`, so a search for the path found one side.
    for raw, request_id in ((b"/caf%C3%A9/m%C3%BCnchen", "rid-utf8"), (b"/raw%FF", "rid-raw")):
        request = b"GET " + raw + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        answer = send_raw(
            embedded_process.url, request + b"X-Request-ID: " + request_id.encode() + b"\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 404 "), answer
    lines = [
        json.loads(line)
        for line in (embedded_process.var_dir / "server.log").read_text().splitlines()
        if line.startswith("{") and '"platform.access"' in line
    ]
    paths = {
        line["request_id"]: line["path"] for line in lines if line["request_id"].startswith("rid-")
    }
    assert paths["rid-utf8"] == "/café/münchen"
    assert paths["rid-raw"] == "/raw\ufffd"  # not UTF-8: replaced
