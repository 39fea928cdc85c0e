"""POST /api/v1/auth/login."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories.accounts import PASSWORD, UserFactory
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_login_answers_a_token_pair_and_the_user(api_client, alice):
    body = login(api_client, "  ALICE@example.com ")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert body["refresh_expires_in"] == 7 * 24 * 3600
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["last_login_at"] is not None
    me = api_client.get("/api/v1/auth/me", **bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(alice.id)


def test_the_pair_is_stamped_on_the_accounts_clock(api_client, alice, clock):
    """`iat` and `exp` come from the clock the per-user cut-offs are set on, not simplejwt's
    own reading of the wall clock, so moving that clock moves both alike."""
    clock.advance(seconds=7)
    body = login(api_client, "alice@example.com")
    issued = int(clock.now().timestamp())
    access, refresh = AccessToken(body["access_token"]), RefreshToken(body["refresh_token"])
    assert (access["iat"], access["exp"]) == (issued, issued + 1800)
    assert (refresh["iat"], refresh["exp"]) == (issued, issued + 7 * 24 * 3600)


def test_the_lifetimes_answered_count_from_the_accounts_clock(api_client, alice, clock):
    """`expires_in` and `refresh_expires_in` are what the tokens say (`exp` - `iat`), so they
    come from the clock that stamped them, not from a second reading of the wall clock (a
    minute behind here, which made `refresh_expires_in` a minute short)."""
    body = login(api_client, "alice@example.com")
    assert (body["expires_in"], body["refresh_expires_in"]) == (1800, 7 * 24 * 3600)


def test_the_pair_carries_the_claims_api_md_lists(api_client, alice):
    """`sub`, `type`, `roles` (access only), `jti`, `iat`, `exp`, `iss`, `aud`; both tokens of
    one login name one family (`sid`)."""
    import jwt
    from django.conf import settings

    body = login(api_client, "alice@example.com")
    access, refresh = (
        jwt.decode(
            body[name],
            settings.SIMPLE_JWT["SIGNING_KEY"],
            algorithms=[settings.SIMPLE_JWT["ALGORITHM"]],
            audience=settings.SIMPLE_JWT["AUDIENCE"],
            issuer=settings.SIMPLE_JWT["ISSUER"],
        )
        for name in ("access_token", "refresh_token")
    )
    assert {"sub", "type", "roles", "jti", "iat", "exp", "iss", "aud"} <= set(access)
    assert {"sub", "type", "jti", "iat", "exp", "iss", "aud"} <= set(refresh)
    assert "roles" not in refresh
    assert (access["type"], refresh["type"]) == ("access", "refresh")
    assert access["sub"] == refresh["sub"] == str(alice.id)
    assert access["roles"] == ["user"]
    assert access["jti"] != refresh["jti"]
    assert access["sid"] == refresh["sid"]


def test_unknown_email_and_wrong_password_answer_identically(api_client, alice):
    unknown = api_client.post(
        "/api/v1/auth/login", {"email": "nobody@example.com", "password": "x" * 12}, format="json"
    )
    wrong = api_client.post(
        "/api/v1/auth/login", {"email": "alice@example.com", "password": "x" * 12}, format="json"
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize("email", ["ß@example.com", "\u212a@example.com"])
def test_an_address_folding_into_another_mailbox_is_answered_as_an_unknown_one(api_client, email):
    UserFactory(email="ss@example.com")
    UserFactory(email="k@example.com")
    folded = api_client.post(
        "/api/v1/auth/login", {"email": email, "password": PASSWORD}, format="json"
    )
    unknown = api_client.post(
        "/api/v1/auth/login", {"email": "nobody@example.com", "password": PASSWORD}, format="json"
    )
    assert folded.status_code == unknown.status_code == 401
    assert folded.json() == unknown.json()


def test_an_unknown_email_runs_bcrypt_once_at_the_same_cost_as_a_wrong_password(
    api_client, alice, monkeypatch
):
    """Without an account to check against, the hasher still runs (Django's dummy hash): the
    refusal costs what a wrong password costs. Counted at bcrypt itself, which Django's
    bcrypt-SHA256 hasher calls (`hashpw`) both to check a hash and to make its dummy one."""
    import bcrypt
    from django.contrib.auth.hashers import get_hasher

    runs: list[bytes] = []  # the work factor of each bcrypt run
    real_hashpw = bcrypt.hashpw

    def counting_hashpw(password, salt):
        runs.append(salt.split(b"$")[2])
        return real_hashpw(password, salt)

    monkeypatch.setattr(bcrypt, "hashpw", counting_hashpw)
    costs = {}
    for email in ("alice@example.com", "nobody@example.com"):
        runs.clear()
        refused = api_client.post("/api/v1/auth/login", {"email": email, "password": "x" * 12})
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
        costs[email] = list(runs)
    configured = f"{get_hasher().rounds:02d}".encode()  # alice's hash is at this cost too
    assert costs["nobody@example.com"] == costs["alice@example.com"] == [configured], costs


def test_unverified_user_hears_it_only_after_the_right_password(api_client):
    UserFactory(email="new@example.com", email_verified=False)
    wrong = api_client.post(
        "/api/v1/auth/login", {"email": "new@example.com", "password": "nope-nope-1"}, format="json"
    )
    assert wrong.json()["code"] == "invalid_credentials"
    right = api_client.post(
        "/api/v1/auth/login",
        {"email": "new@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )
    assert right.status_code == 403
    assert right.json()["code"] == "email_not_verified"


@pytest.mark.parametrize("status", ["inactive", "suspended"])
def test_inactive_account_is_403_after_the_right_password(api_client, status):
    UserFactory(email="gone@example.com", status=status)
    response = api_client.post(
        "/api/v1/auth/login",
        {"email": "gone@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"


def test_repeated_wrong_passwords_lock_the_account_with_the_same_401(api_client, alice, settings):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 3
    for _ in range(3):
        wrong = api_client.post(
            "/api/v1/auth/login",
            {"email": "alice@example.com", "password": "not-her-password"},
            format="json",
        )
        assert wrong.status_code == 401
    locked = api_client.post(
        "/api/v1/auth/login",
        {"email": "alice@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )
    assert locked.status_code == 401
    assert locked.json() == wrong.json()
    alice.refresh_from_db()
    assert alice.locked_until is not None


def test_a_lock_expires(api_client, alice):
    from datetime import timedelta

    from django.utils import timezone

    alice.locked_until = timezone.now() - timedelta(seconds=1)
    alice.failed_logins = 0
    alice.save()
    assert login(api_client, "alice@example.com")["user"]["email"] == "alice@example.com"


def test_login_is_rate_limited_per_ip_with_retry_after(api_client, alice, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "login": "2/m"}
    body = {"email": "alice@example.com", "password": "wrong-wrong-1"}
    for _ in range(2):
        assert api_client.post("/api/v1/auth/login", body, format="json").status_code == 401
    limited = api_client.post("/api/v1/auth/login", body, format="json")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    other_ip = api_client.post("/api/v1/auth/login", body, format="json", REMOTE_ADDR="10.0.0.9")
    assert other_ip.status_code == 401


def test_ipv4_clients_of_a_dual_stack_listener_each_have_their_own_login_budget(
    api_client, alice, settings
):
    """On an IPv6 socket that also takes IPv4 (`HOST=[::]`) every IPv4 peer is an IPv4-mapped
    address (`::ffff:a.b.c.d`). Masked to /64 as IPv6 addresses are, they were all `::`: one
    client spending the login budget locked every IPv4 client out of login."""
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "login": "2/m"}
    body = {"email": "alice@example.com", "password": "wrong-wrong-1"}
    attacker = {"REMOTE_ADDR": "::ffff:203.0.113.7"}
    for _ in range(2):
        answer = api_client.post("/api/v1/auth/login", body, format="json", **attacker)
        assert answer.status_code == 401
    assert api_client.post("/api/v1/auth/login", body, format="json", **attacker).status_code == 429
    other = api_client.post(
        "/api/v1/auth/login", body, format="json", REMOTE_ADDR="::ffff:198.51.100.9"
    )
    assert other.status_code == 401
    # The same client over IPv4 proper is the same client.
    same = api_client.post("/api/v1/auth/login", body, format="json", REMOTE_ADDR="203.0.113.7")
    assert same.status_code == 429


@pytest.mark.parametrize("forwarded_for", ["203.0.113.7:5123", "unknown", "[2001:db8::7]:443"])
def test_a_forwarded_for_entry_that_is_no_bare_address_is_never_a_500(
    api_client, alice, settings, forwarded_for
):
    # The per-IP limit's network math raised on anything but a bare address.
    settings.TRUSTED_PROXY_COUNT = 1
    body = {"email": "alice@example.com", "password": "wrong-wrong-1"}
    answer = api_client.post(
        "/api/v1/auth/login", body, format="json", HTTP_X_FORWARDED_FOR=forwarded_for
    )
    assert answer.status_code == 401


def test_deleted_users_cannot_log_in(api_client):
    UserFactory(email="old@example.com", status="deleted")
    response = api_client.post(
        "/api/v1/auth/login",
        {"email": "old@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize("body", [{}, {"email": "a@b.io"}, {"email": "a@b.io", "password": ""}])
def test_missing_fields_are_validation_errors(api_client, body):
    response = api_client.post("/api/v1/auth/login", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_a_stray_bearer_header_does_not_block_login(api_client, alice):
    assert login(api_client, "alice@example.com", HTTP_AUTHORIZATION="Bearer junk")


@pytest.mark.parametrize("email", ["a\n@x.io", "a@x\n.io", "not-an-email"])
def test_odd_emails_are_the_generic_401_never_a_500(api_client, email):
    response = api_client.post("/api/v1/auth/login", {"email": email, "password": "whatever-1234"})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


@pytest.mark.django_db(databases=["default"], transaction=True)
def test_a_wrong_password_costs_the_request_what_an_unknown_address_costs(
    api_client, background_work, django_assert_num_queries
):
    """The failure is counted (the lockout) off the request, so the refusal takes as long for a
    known address as for an unknown one (in the request, the count was a locked transaction
    more: 5.7 against 1.9 ms)."""
    alice = UserFactory(email="alice@example.com")
    answers = []
    for email in ("nobody@example.com", "alice@example.com"):
        with django_assert_num_queries(1):  # the lookup by email, and nothing else
            answers.append(
                api_client.post(
                    "/api/v1/auth/login", {"email": email, "password": "x" * 12}, format="json"
                )
            )
    assert answers[0].json() == answers[1].json()
    background_work.finish()
    assert len(background_work.tasks) == 1, "the failure was not counted on the lockout pool"
    alice.refresh_from_db()
    assert alice.failed_logins == 1  # counted all the same, on the lockout pool


@pytest.mark.parametrize(
    "body",
    [
        {"email": 1, "password": "whatever-it-is-1"},
        {"email": "alice@example.com", "password": 12345678901},
        {"email": ["alice@example.com"], "password": "whatever-it-is-1"},
    ],
)
def test_a_number_or_list_for_email_or_password_is_a_validation_error(api_client, alice, body):
    # DRF's CharField read 1 as "1": a failed login (401), counted as one, not a bad request.
    response = api_client.post("/api/v1/auth/login", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    alice.refresh_from_db()
    assert alice.failed_logins == 0
