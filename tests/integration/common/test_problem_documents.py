"""Every error is an RFC 9457 problem document, never an HTML page or a bare 500."""

import pytest

pytestmark = [pytest.mark.urls("tests.integration.common.urls")]

PROBLEM = "application/problem+json"


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    return body


def test_unknown_api_path_is_a_404_problem(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_malformed_json_is_a_400_problem(client):
    response = client.post("/echo", data="{not json", content_type="application/json")
    assert_problem(response, 400, "malformed_request")


def test_json_nested_past_the_recursion_limit_is_malformed_not_a_500(client):
    deep = '{"name": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post("/echo", data=deep, content_type="application/json")
    assert_problem(response, 400, "malformed_request")


def test_field_errors_are_a_validation_error_with_errors(client):
    response = client.post("/echo", data={"name": "x" * 11}, content_type="application/json")
    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["name"]
    assert isinstance(body["errors"]["name"], list)


def test_non_object_body_is_a_validation_error(client):
    response = client.post("/echo", data="[1, 2]", content_type="application/json")
    body = assert_problem(response, 400, "validation_error")
    assert "non_field_errors" in body["errors"]


def test_wrong_media_type_is_a_415_problem(client):
    response = client.post("/echo", data="name=x", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")


def test_oversized_body_is_a_413_problem_before_parsing(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 2048
    response = client.post("/echo", data="x" * 4096, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


def test_garbage_content_length_is_a_400_problem(client):
    response = client.generic(
        "POST", "/echo", data=b"{}", content_type="application/json", CONTENT_LENGTH="abc"
    )
    assert_problem(response, 400, "malformed_request")


def test_unknown_method_on_a_drf_view_is_a_405_problem(client):
    assert_problem(client.delete("/echo"), 405, "method_not_allowed")


def test_unknown_method_on_a_plain_view_is_a_405_problem_with_allow(client):
    response = client.post("/plain")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad_request"),
        (403, "permission_denied"),
        (418, "error"),
        (503, "service_unavailable"),
    ],
)
def test_a_bare_error_page_of_a_plain_view_is_a_problem_with_the_platforms_code(
    client, status, code
):
    # 503 is `service_unavailable` wherever the platform answers it (docs/architecture.md).
    assert_problem(client.get(f"/plain-status/{status}"), status, code)


def test_throttling_is_a_429_problem_with_retry_after(client):
    response = client.get("/throttled")
    assert_problem(response, 429, "rate_limited")
    assert response["Retry-After"] == "7"


def test_problem_error_carries_its_code_and_extra_members(client):
    body = assert_problem(client.get("/conflict"), 409, "email_taken")
    assert body["hint"] == "log in"


def test_unhandled_exception_is_a_generic_500_without_details(client):
    client.raise_request_exception = False
    response = client.get("/broken")
    body = assert_problem(response, 500, "internal_error")
    assert "secret internal detail" not in response.content.decode()
    assert "X-Request-ID" in body["detail"]


def test_missing_token_is_a_401_problem_with_www_authenticate(client):
    response = client.get("/whoami")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_every_401_a_view_raises_carries_the_bearer_challenge(client):
    # RFC 9110 §15.5.2: a 401 MUST carry WWW-Authenticate, also one no authentication class
    # raised (a refused login, a refresh token refused in the body).
    response = client.get("/wrong-password")
    assert_problem(response, 401, "invalid_credentials")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db(databases=["default"])
def test_admin_form_without_csrf_token_is_a_403_problem(client):
    client.handler.enforce_csrf_checks = True
    response = client.post("/admin/login/", {"username": "a", "password": "b"})
    assert_problem(response, 403, "csrf_failed")


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        (lambda client: client.post("/api/schema/"), 405, "method_not_allowed"),
        (lambda client: client.get("/api/schema/?format=bogus"), 404, "not_found"),
        (
            lambda client: client.get("/api/schema/", HTTP_ACCEPT="application/xml"),
            406,
            "not_acceptable",
        ),
        (lambda client: client.post("/api/docs/"), 405, "method_not_allowed"),
    ],
    ids=["schema-post", "schema-unknown-format", "schema-unacceptable", "docs-post"],
)
def test_errors_of_views_that_render_yaml_or_html_are_json_problems(client, send, status, code):
    # The schema view negotiates YAML first and the docs view HTML; their errors are still JSON.
    body = assert_problem(send(client), status, code)
    assert isinstance(body["detail"], str)


# A JSON escape of a lone surrogate ("\ud800") parses into a Python string that is no Unicode
# text. A field error that quotes the value it refuses ('"\ud800" is not a valid choice.') must
# still be written out: JSON escapes it as it came.
SURROGATE_ECHOES = [
    ("post", "/api/v1/gateway/routes", '"auth": "\\ud800"', "auth"),
    ("post", "/api/v1/gateway/routes", '"methods": ["\\ud800"]', "methods.0"),
    (
        "post",
        "/api/v1/aggregation/composites",
        '"auth": "\\ud800", "sources": [{"key": "a", "url": "http://h/"}]',
        "auth",
    ),
    (
        "post",
        "/api/v1/aggregation/composites",
        '"sources": [{"key": "a", "url": "http://h/", "method": "\\ud800"}]',
        "sources.0.method",
    ),
    ("patch", "/api/v1/users/{user}", '"status": "\\ud800"', "status"),
]


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
@pytest.mark.parametrize(("method", "path", "member", "field"), SURROGATE_ECHOES)
def test_a_refused_value_quoted_in_a_field_error_is_written_even_when_no_text(
    client, method, path, member, field
):
    from tests.factories.accounts import UserFactory
    from tests.factories.tokens import access_token

    alice = UserFactory()
    admin = {"HTTP_AUTHORIZATION": f"Bearer {access_token(roles=('user', 'admin'))}"}
    valid = {  # the rest of a valid body (an unknown field is an error of its own)
        "/api/v1/gateway/routes": (
            '"name": "ok", "path_prefix": "/ok", "upstream_url": "http://h/", '
        ),
        "/api/v1/aggregation/composites": '"name": "ok", ',
        "/api/v1/users/{user}": "",
    }
    raw = "{" + valid[path] + member + "}"
    response = getattr(client, method)(
        path.format(user=alice.id), raw, content_type="application/json", **admin
    )
    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == [field]
    assert "\ud800" in body["errors"][field][0]  # the value as it came, escaped in the JSON
    # Text that is Unicode is still written as UTF-8, not escaped.
    accented = getattr(client, method)(
        path.format(user=alice.id),
        raw.replace("\\ud800", "B\u00fccher"),
        content_type="application/json",
        **admin,
    )
    assert "B\u00fccher".encode() in accented.content


@pytest.mark.parametrize("value", [0, 1.5, True, None, ["a"], {"a": 1}])
def test_a_string_field_takes_only_a_json_string(client, value):
    # DRF's CharField turned 0 into "0": a number was a name, or a failed login.
    body = assert_problem(
        client.post("/strict", {"name": value}, content_type="application/json"),
        400,
        "validation_error",
    )
    assert list(body["errors"]) == ["name"]


def test_a_json_string_field_takes_a_string(client):
    response = client.post("/strict", {"name": "ada"}, content_type="application/json")
    assert (response.status_code, response.json()) == (200, {"name": "ada"})
