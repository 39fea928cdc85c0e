"""Answers made for a caller's credentials are not stored by browsers or shared caches."""

import pytest

from tests.factories.tokens import access_token

pytestmark = pytest.mark.django_db(databases=["default", "gateway", "aggregation"])


@pytest.mark.parametrize(
    "path", ["/api/v1/gateway/routes", "/api/v1/aggregation/composites", "/api/v1/aggregation/runs"]
)
@pytest.mark.parametrize("roles", [("user", "admin"), ("user",)])
def test_an_answer_to_a_bearer_request_is_never_stored(client, path, roles):
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {access_token(roles=roles)}")
    assert response.status_code in {200, 403}, response.content
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_a_public_answer_is_left_to_the_view(client):
    assert not client.get("/health").has_header("Cache-Control")


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/api/v1/auth/login", {"CONTENT_LENGTH": str(10 << 20)}),  # 413 before any view
        ("/api/v1/auth/login%00", {}),  # 400, a NUL in the path
        ("/api/v1/auth/login", {"CONTENT_LENGTH": "many"}),  # 400, no number
    ],
    ids=["too-large", "nul", "bad-length"],
)
def test_answers_refused_before_any_view_carry_the_same_headers(client, path, extra):
    # The middleware that refuses such requests answered ahead of Django's security headers
    # and of the no-store rule for credentialed requests.
    response = client.post(
        path, data=b"{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer x", **extra
    )
    assert response.status_code in {400, 413}, response.content
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]
