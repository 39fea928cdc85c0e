"""The accounts endpoints in the OpenAPI schema."""

import pytest

pytestmark = pytest.mark.django_db(databases=["default"])


def test_openapi_documents_every_accounts_path(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/sessions/{session_id}",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
    ):
        assert path in schema["paths"], path
    login_responses = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"200", "400", "401", "403", "429"} <= set(login_responses)


def test_bearer_endpoints_declare_the_jwt_scheme(client):
    schema = client.get("/api/schema/?format=json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in schema["paths"]["/api/v1/auth/me"]["get"]["security"]
