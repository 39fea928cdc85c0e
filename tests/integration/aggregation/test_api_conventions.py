"""API.md's common rules on every aggregation operation: 401 with the bearer challenge, 403,
405 with `Allow` (before the token is checked), 413, 415, malformed JSON; each answered as a
problem document."""

from __future__ import annotations

import pytest

from tests.integration.aggregation.conftest import DATABASES, source

pytestmark = pytest.mark.django_db(databases=DATABASES)

BASE = "/api/v1/aggregation"
ADMIN_OPERATIONS = [
    ("get", f"{BASE}/composites"),
    ("post", f"{BASE}/composites"),
    ("get", f"{BASE}/composites/combo"),
    ("patch", f"{BASE}/composites/combo"),
    ("delete", f"{BASE}/composites/combo"),
    ("get", f"{BASE}/runs"),
]


@pytest.fixture(autouse=True)
def combo(make_composite, upstream):
    return make_composite("combo", source("a", upstream.url("/json")))


def send(client, method, path, body="{}", **headers):
    if method in {"post", "patch"}:
        return getattr(client, method)(path, body, content_type="application/json", **headers)
    return getattr(client, method)(path, **headers)


def problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert {"type", "title", "detail"} <= set(body)
    return body


@pytest.mark.parametrize(("method", "path"), ADMIN_OPERATIONS)
@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, "not_authenticated"), ("Bearer forged", "token_invalid")],
)
def test_admin_operations_answer_401_with_the_bearer_challenge(
    client, method, path, authorization, code
):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = send(client, method, path, **headers)
    problem(response, 401, code)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(("method", "path"), ADMIN_OPERATIONS)
def test_admin_operations_answer_403_without_the_admin_role(client, user_headers, method, path):
    problem(send(client, method, path, **user_headers), 403, "permission_denied")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", f"{BASE}/composites", "GET, POST, HEAD, OPTIONS"),
        ("put", f"{BASE}/composites/combo", "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("post", f"{BASE}/composites/combo/run", "GET, HEAD, OPTIONS"),
        ("delete", f"{BASE}/composites/combo/run", "GET, HEAD, OPTIONS"),
        ("post", f"{BASE}/runs", "GET, HEAD, OPTIONS"),
    ],
)
def test_unknown_methods_are_405_with_allow(client, admin_headers, upstream, method, path, allowed):
    calls = sum(upstream.calls.values())
    response = send(client, method, path, **admin_headers)
    problem(response, 405, "method_not_allowed")
    assert response["Allow"] == allowed
    assert sum(upstream.calls.values()) == calls  # a refused run calls no source


@pytest.mark.parametrize("caller", ["no-token", "forged-token", "not-admin"])
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", f"{BASE}/composites", "GET, POST, HEAD, OPTIONS"),
        ("POST", f"{BASE}/composites/combo", "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("DELETE", f"{BASE}/composites/combo/run", "GET, HEAD, OPTIONS"),
        ("BREW", f"{BASE}/runs", "GET, HEAD, OPTIONS"),
    ],
)
def test_unknown_methods_are_405_before_the_token_or_the_role_is_checked(
    client, user_headers, method, path, allowed, caller
):
    headers = {
        "no-token": {},
        "forged-token": {"HTTP_AUTHORIZATION": "Bearer forged"},
        "not-admin": user_headers,
    }[caller]
    response = client.generic(method, path, **headers)
    problem(response, 405, "method_not_allowed")
    assert response["Allow"] == allowed


@pytest.mark.parametrize(
    ("method", "path"), [("post", f"{BASE}/composites"), ("patch", f"{BASE}/composites/combo")]
)
def test_bodies_must_be_well_formed_json(client, admin_headers, settings, method, path):
    send_as = getattr(client, method)
    settings.MAX_REQUEST_BODY_BYTES = 2048
    description = "x" * 4096  # valid, but the body is past the limit
    oversized = send_as(
        path,
        {"name": "big", "description": description, "sources": []},
        content_type="application/json",
        **admin_headers,
    )
    problem(oversized, 413, "payload_too_large")
    wrong_type = send_as(path, "name=x", content_type="text/plain", **admin_headers)
    problem(wrong_type, 415, "unsupported_media_type")
    malformed = send_as(path, '{"name": ', content_type="application/json", **admin_headers)
    problem(malformed, 400, "malformed_request")
    not_an_object = send_as(path, "[1]", content_type="application/json", **admin_headers)
    body = problem(not_an_object, 400, "validation_error")
    assert list(body["errors"]) == ["non_field_errors"]
    assert client.get(f"{BASE}/composites/combo", **admin_headers).json()["timeout_ms"] == 2000


def test_field_errors_name_the_nested_field(client, admin_headers):
    definition = {
        "name": "nested",
        "sources": [
            {"key": "a", "url": "http://h/"},
            {"key": "b", "url": "ftp://h/", "fields": ["ok", 7, {"x": 1}], "timeout_ms": 0},
        ],
    }
    response = client.post(
        f"{BASE}/composites", definition, content_type="application/json", **admin_headers
    )
    errors = problem(response, 400, "validation_error")["errors"]
    assert set(errors) == {
        "sources.1.url",
        "sources.1.fields.1",  # a number is no field name (JSONString)
        "sources.1.fields.2",
        "sources.1.timeout_ms",
    }
    assert all(
        isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        for messages in errors.values()
    )
