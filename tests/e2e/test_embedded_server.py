"""`make run` with no configuration: a real gunicorn process on the embedded defaults."""

import httpx
import pytest

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
    css = httpx.get(f"{embedded_server}/static/admin/css/base.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


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
