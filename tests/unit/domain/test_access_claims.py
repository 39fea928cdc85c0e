"""The claims a verified access token must carry to stand for a principal."""

from datetime import UTC, datetime

import pytest

from core.domain.shared.identity import principal_from_claims

LIFETIME = 1800
USER = "0b6f2a1e-6c1d-4a8e-9b8e-3f1f2d4c5a6b"


def _claims(**changes):
    claims = {
        "sub": USER,
        "jti": "j-1",
        "sid": "6d1c4c3e-2a55-4e0e-8c1a-0f9a8b7c6d5e",
        "iat": 1_700_000_000,
        "exp": 1_700_000_000 + LIFETIME,
        "roles": ["user", "admin"],
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not ...}


def test_claims_as_the_accounts_issue_them_give_the_principal():
    principal = principal_from_claims(_claims(), longest_lifetime=LIFETIME)
    assert principal is not None
    assert (principal.user_id, principal.token_id) == (USER, "j-1")
    assert principal.session_id == "6d1c4c3e-2a55-4e0e-8c1a-0f9a8b7c6d5e"
    assert principal.roles == {"user", "admin"}
    assert principal.issued_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert principal.expires_at == datetime.fromtimestamp(1_700_000_000 + LIFETIME, UTC)


def test_roles_may_be_absent_and_the_lifetime_may_be_shorter():
    principal = principal_from_claims(
        _claims(roles=..., exp=1_700_000_000), longest_lifetime=LIFETIME
    )
    assert principal is not None
    assert principal.roles == frozenset()


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sub": ...}, id="no-sub"),
        pytest.param({"sub": "u-1"}, id="sub-not-a-uuid"),
        pytest.param({"sub": USER.upper()}, id="sub-uppercase"),
        pytest.param({"sub": USER.replace("-", "")}, id="sub-without-hyphens"),
        pytest.param({"sub": USER + "x"}, id="sub-a-uuid-then-more"),
        pytest.param({"sub": USER + "\n"}, id="sub-a-uuid-then-a-newline"),
        pytest.param({"sub": 7}, id="sub-not-a-string"),
        pytest.param({"jti": ...}, id="no-jti"),
        pytest.param({"jti": 1}, id="jti-not-a-string"),
        pytest.param({"sid": ...}, id="no-sid"),
        pytest.param({"sid": ""}, id="sid-empty"),
        pytest.param({"sid": ["s"]}, id="sid-not-a-string"),
        pytest.param({"iat": True, "exp": 1 + LIFETIME}, id="iat-true"),
        pytest.param({"iat": 1_700_000_000.0}, id="iat-float"),
        pytest.param({"iat": ...}, id="no-iat"),
        pytest.param({"exp": 1_700_000_000.0 + LIFETIME}, id="exp-float"),
        pytest.param({"exp": True}, id="exp-true"),
        pytest.param({"exp": 1_700_000_000 + LIFETIME + 1}, id="longer-than-the-lifetime"),
        pytest.param({"exp": 1_699_999_999}, id="expires-before-issued"),
        pytest.param({"roles": "admin"}, id="roles-not-a-list"),
        pytest.param({"roles": ["user", 1]}, id="role-not-a-string"),
    ],
)
def test_claims_the_accounts_never_issue_give_no_principal(changes):
    assert principal_from_claims(_claims(**changes), longest_lifetime=LIFETIME) is None
