"""The OpenAPI conformance check (tests/openapi_conformance.py) catches every kind of answer the
schema does not document, and leaves alone what the schema does not claim to describe."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.openapi_conformance import MIDDLEWARE, RECORDER, Answer, published_contract

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[3]
USER = {
    "id": "9b2f0c52-3f0e-4c7a-9d3e-0a8c2d1e4f5a",
    "email": "alice@example.com",
    "full_name": "Alice",
    "status": "active",
    "email_verified": True,
    "roles": ["user"],
    "created_at": "2026-01-02T03:04:05.678901Z",
    "last_login_at": None,
}
PROBLEM = {"type": "urn:x", "title": "Unauthorized", "status": 401, "detail": "No."}
PROBLEM_TYPE = "application/problem+json"


@pytest.fixture(scope="module")
def contract():
    return published_contract()


def answer(method, path, status, body=b"", content_type="application/json"):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return Answer(method, path, path, status, content_type, body)


def test_a_documented_answer_passes(contract):
    assert contract.violations(answer("GET", "/api/v1/auth/me", 200, USER)) == []
    assert contract.violations(answer("DELETE", "/api/v1/auth/sessions/x", 204)) == []
    problem = {**PROBLEM, "code": "token_expired"}
    assert contract.violations(answer("GET", "/api/v1/auth/me", 401, problem, PROBLEM_TYPE)) == []


@pytest.mark.parametrize(
    ("sent", "violation"),
    [
        (answer("GET", "/health", 418, {}), "status 418 is not documented for GET /health"),
        (
            answer("GET", "/api/v1/auth/me", 200, USER, "text/html"),
            "GET /api/v1/auth/me 200 documents application/json, the answer is 'text/html'",
        ),
        (
            answer("GET", "/api/v1/auth/me", 200, {**USER, "status": "asleep"}),
            "body at ['status']: 'asleep' is not one of",
        ),
        (
            answer("GET", "/api/v1/auth/me", 200, {**USER, "password": "x"}),
            "Additional properties are not allowed ('password' was unexpected)",
        ),
        (
            answer("GET", "/api/v1/auth/me", 200, {**USER, "created_at": "yesterday"}),
            "body at ['created_at']: 'yesterday' is not a 'date-time'",
        ),
        (
            answer("GET", "/api/v1/auth/me", 200, {k: v for k, v in USER.items() if k != "id"}),
            "'id' is a required property",
        ),
        (
            answer("GET", "/api/v1/auth/me", 401, {**PROBLEM, "code": "nope"}, PROBLEM_TYPE),
            "GET /api/v1/auth/me 401: code 'nope' is not one of the documented",
        ),
        (
            answer("DELETE", "/api/v1/auth/sessions/x", 204, {}),
            "DELETE /api/v1/auth/sessions/{session_id} 204 documents no body",
        ),
        (
            answer("GET", "/api/v1/auth/me", 200),
            "GET /api/v1/auth/me 200 documents a body (application/json), none was sent",
        ),
        (
            answer("GET", "/api/v1/auth/me", 200, b"{no"),
            "GET /api/v1/auth/me 200 application/json: the body is not JSON",
        ),
    ],
    ids=[
        "status",
        "media-type",
        "enum",
        "undocumented-member",
        "format",
        "required-member",
        "problem-code",
        "body-where-none",
        "no-body",
        "not-json",
    ],
)
def test_an_undocumented_answer_is_a_violation(contract, sent, violation):
    found = contract.violations(sent)
    assert any(violation in line for line in found), found


def test_nullable_members_admit_null_and_still_check_the_rest(contract):
    path = "/api/v1/gateway/routes/orders"
    route = {
        "name": "orders",
        "path_prefix": "/orders",
        "upstream_url": "http://127.0.0.1:9/base",
        "strip_prefix": True,
        "methods": ["GET"],
        "auth": "none",
        "required_roles": [],
        "rate_limit": None,
        "cache_ttl_seconds": 0,
        "timeout_ms": 1000,
        "retries": 0,
        "circuit_breaker": {"failure_threshold": 5, "recovery_seconds": 30},
        "enabled": True,
    }
    assert contract.violations(answer("GET", path, 200, route)) == []
    limited = {**route, "rate_limit": {"requests": 1, "window_seconds": 1, "key": "moon"}}
    found = contract.violations(answer("GET", path, 200, limited))
    assert any("'moon' is not one of" in line for line in found), found


def test_a_literal_path_segment_wins_over_a_parameter(contract):
    assert contract.template_of("/api/v1/auth/sessions") == "/api/v1/auth/sessions"
    assert contract.template_of("/api/v1/auth/sessions/1") == "/api/v1/auth/sessions/{session_id}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("OPTIONS", "/health"),
        ("HEAD", "/metrics"),
        ("GET", "/admin/"),
        ("GET", "/api/schema/"),
        ("GET", "/orders/1"),  # proxied: the gateway's catch-all /{path}
        ("GET", "/api/v1/nothing-here"),
    ],
)
def test_undocumented_requests_are_out_of_scope(contract, method, path):
    assert contract.violations(answer(method, path, 418, b"<p>", "text/html")) == []


def test_the_middleware_is_outermost_and_records_each_answer(client, settings):
    assert settings.MIDDLEWARE[0] == MIDDLEWARE
    narrowed = published_contract()
    del narrowed.schema["paths"]["/health"]["get"]["responses"]["200"]
    published, RECORDER.contract = RECORDER.contract, narrowed
    try:
        assert client.get("/health").status_code == 200
    finally:
        RECORDER.contract = published
        found = RECORDER.drain()
    assert found == ["GET /health -> 200: status 200 is not documented for GET /health"]


def test_a_violation_fails_the_test_that_caused_it_and_says_where(pytester, monkeypatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.test")
    pytester.makeconftest('pytest_plugins = ["tests.openapi_conformance"]')
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            """
            from tests.openapi_conformance import RECORDER, published_contract

            def test_health(client):
                RECORDER.contract = published_contract()
                del RECORDER.contract.schema["paths"]["/health"]["get"]["responses"]["200"]
                assert client.get("/health?probe=1").status_code == 200
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_inner.py::test_health: answers during the test that the OpenAPI schema "
            "does not document*",
            "*GET /health?probe=1 -> 200: status 200 is not documented for GET /health",
        ]
    )
