"""The host a request to Django is for: an absolute-form target's authority (RFC 9112 §3.2.2).

gunicorn hands the request line's target on as `RAW_URI`; the test client sends none, so its
requests are in origin form and keep their Host.
"""

import pytest


def test_an_absolute_form_target_for_a_host_not_allowed_is_a_400(client):
    response = client.get("/health", RAW_URI="http://evil.example/health", HTTP_HOST="localhost")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "bad_request"
    # Worded as the proxy words its own refusal of a host (tests/e2e/gateway/test_request_host).
    assert response.json()["detail"] == "The host the request is for is not allowed."


def test_the_host_header_beside_an_allowed_absolute_form_target_is_ignored(client):
    response = client.get("/health", RAW_URI="http://localhost/health", HTTP_HOST="evil.example")
    assert response.status_code == 200
    assert response.wsgi_request.get_host() == "localhost"


@pytest.mark.parametrize("host", ["local host", ""])
def test_an_invalid_host_header_beside_an_absolute_form_target_is_still_a_400(client, host):
    response = client.get("/health", RAW_URI="http://localhost/health", HTTP_HOST=host)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize("raw_uri", ["/health", None])
def test_an_origin_form_target_keeps_the_host_header(client, raw_uri):
    extra = {"RAW_URI": raw_uri} if raw_uri else {}
    assert client.get("/health", HTTP_HOST="localhost", **extra).status_code == 200
    assert client.get("/health", HTTP_HOST="evil.example", **extra).status_code == 400
