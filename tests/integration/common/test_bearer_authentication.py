"""DRF bearer authentication and role permissions, over HTTP."""

import pytest

from apps.common.tokens import CacheTokenRevocations, SimpleJWTAccessTokenVerifier
from tests.factories.tokens import access_token, user_uuid

pytestmark = [
    pytest.mark.urls("tests.integration.common.urls"),
    pytest.mark.django_db(databases=[]),
]


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_valid_token_authenticates_without_a_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/whoami", **bearer(access_token(user_id=user_uuid("u-1"))))
    assert response.status_code == 200
    assert response.json() == {"user_id": user_uuid("u-1"), "roles": ["user"]}


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer \xff", "Bearer nope"])
def test_malformed_bearer_headers_are_401_token_invalid(client, header):
    response = client.get("/whoami", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_the_scheme_and_token_may_be_split_by_any_ascii_whitespace(client):
    # The gateway splits the header the same way (tests/unit/gateway/test_forward_request.py).
    response = client.get(
        "/whoami", HTTP_AUTHORIZATION=f"Bearer\t{access_token(user_id=user_uuid('u-2'))}"
    )
    assert (response.status_code, response.json()["user_id"]) == (200, user_uuid("u-2"))


@pytest.mark.parametrize(
    "joined",
    ["Basic dXNlcjpwYXNz,Bearer {token}", "Bearer {token}, Basic dXNlcjpwYXNz"],
)
def test_field_lines_joined_around_a_bearer_token_are_401_token_invalid(client, joined):
    # Two `Authorization` lines reach the application joined with "," (gunicorn): read as
    # the first line's scheme, a Basic line first made the request anonymous.
    header = joined.format(token=access_token())
    response = client.get("/whoami", HTTP_AUTHORIZATION=header)
    assert (response.status_code, response.json()["code"]) == (401, "token_invalid")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_other_schemes_are_anonymous(client):
    response = client.get("/whoami", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.json()["code"] == "not_authenticated"


def test_revoked_token_is_401_token_revoked(client):
    token = access_token()
    principal = SimpleJWTAccessTokenVerifier().verify(token).unwrap()
    CacheTokenRevocations().revoke_token(principal.token_id, principal.expires_at)
    response = client.get("/whoami", **bearer(token))
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


def test_admin_role_is_needed_for_admin_endpoints(client):
    assert client.get("/admin-only", **bearer(access_token())).status_code == 403
    assert (
        client.get("/admin-only", **bearer(access_token(roles=("user", "admin")))).status_code
        == 200
    )
