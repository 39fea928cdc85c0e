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


def test_the_token_pair_documents_every_member_login_and_refresh_always_answer(client):
    schema = client.get("/api/schema/?format=json").json()
    pair = schema["components"]["schemas"]["TokenPairOutput"]
    assert set(pair["required"]) == set(pair["properties"])
    token_type = pair["properties"]["token_type"]
    if "$ref" in token_type:
        token_type = schema["components"]["schemas"][token_type["$ref"].rsplit("/", 1)[1]]
    assert token_type["enum"] == ["Bearer"]


def test_the_user_change_documents_the_last_admin_refusal(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert "no active admin" in operation["description"]
    assert "`validation_error`" in operation["responses"]["400"]["description"]
