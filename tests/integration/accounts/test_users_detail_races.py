"""PATCH /api/v1/users/{id} racing a refresh of the user's session, or other changes (real
PostgreSQL): no refresh keeps a token that carries what the change took away, a change that did
not commit revokes nothing, and changes at once are decided one after the other, two admins
ending each other among them (one of them stays an admin).

The interleavings are made by PostgreSQL itself, not by patching: the test holds a lock in its
own transaction so that a request stops at a chosen statement, lets the other request run into
it, and releases it once it sees where each one waits (`pg_blocking_pids`).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import User
from apps.common.tokens import SimpleJWTAccessTokenVerifier
from core.domain.shared.identity import TokenError
from core.domain.shared.result import Err
from tests.factories.accounts import PASSWORD, AdminFactory
from tests.integration.accounts.conftest import bearer, login
from tests.integration.races import blocked_by_me, in_thread, lock_waiters, poll

pytestmark = pytest.mark.django_db(transaction=True, databases=["default"])

NEW_ROLES = ["billing:read", "user"]  # sorted, as `_accepted_roles` lists them


def _refresh(refresh_token: str):
    return lambda: APIClient().post(
        "/api/v1/auth/refresh", {"refresh_token": refresh_token}, format="json"
    )


def _patch(admin_token: str, user_id, body: dict):
    def call():
        client = APIClient(raise_request_exception=False)  # a 5xx is an answer to assert on
        return client.patch(f"/api/v1/users/{user_id}", body, format="json", **bearer(admin_token))

    return call


def _accepted_roles(access_token: str) -> list[str] | None:
    """The roles an access token carries if the token checks (the gateway's) accept it."""
    verified = SimpleJWTAccessTokenVerifier().verify(access_token)
    if verified == Err(TokenError.REVOKED):
        return None
    return sorted(verified.unwrap().roles)


@pytest.fixture
def tokens(alice, admin_user):
    return login(APIClient(), "alice@example.com"), login(APIClient(), "root@example.com")


def test_a_refresh_while_the_roles_change_commits_carries_the_new_roles(alice, tokens):
    pair, admin = tokens
    with transaction.atomic(), connections["default"].cursor() as cursor:
        # Reads and row locks go on, row writes wait: the change locks alice's row, decides
        # what to revoke, then waits at its write, before it commits.
        cursor.execute("LOCK TABLE accounts_user IN SHARE MODE")
        change = in_thread(_patch(admin["access_token"], alice.id, {"roles": NEW_ROLES}))
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the change never reached its write")
        refresh = in_thread(_refresh(pair["refresh_token"]))
        # Either the refresh is done, or it waits for the change's lock on alice's row.
        poll(
            lambda: not refresh[0].is_alive() or lock_waiters(cursor) >= 2,
            "the refresh neither finished nor waited",
        )
    for thread, _ in (change, refresh):
        thread.join(timeout=30)
    assert change[1][0].status_code == 200, change[1][0].content
    fresh = refresh[1][0].json()
    assert AccessToken(fresh["access_token"])["roles"] == NEW_ROLES
    assert _accepted_roles(fresh["access_token"]) == NEW_ROLES


def test_a_refresh_that_read_the_old_roles_before_the_change_has_its_token_denied(alice, tokens):
    pair, admin = tokens
    session_id = AccessToken(pair["access_token"])["sid"]
    with transaction.atomic(), connections["default"].cursor() as cursor:
        # The refresh reads alice, mints a pair with her roles, then waits at its swap.
        cursor.execute("SELECT 1 FROM accounts_session WHERE id = %s FOR UPDATE", [session_id])
        refresh = in_thread(_refresh(pair["refresh_token"]))
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the refresh never reached its swap")
        change = in_thread(_patch(admin["access_token"], alice.id, {"roles": NEW_ROLES}))
        # Either the change is done, or it waits for the refresh's lock on alice's row.
        poll(
            lambda: not change[0].is_alive() or lock_waiters(cursor) >= 2,
            "the change neither finished nor waited",
        )
    for thread, _ in (refresh, change):
        thread.join(timeout=30)
    assert change[1][0].status_code == 200, change[1][0].content
    minted = refresh[1][0].json()
    assert AccessToken(minted["access_token"])["roles"] == ["user"]
    # Minted from the old roles: the change denies it, wherever it is checked.
    assert _accepted_roles(minted["access_token"]) is None
    me = APIClient().get("/api/v1/auth/me", **bearer(minted["access_token"]))
    assert (me.status_code, me.json()["code"]) == (401, "token_revoked")
    # The session lives on and its next refresh carries the new roles.
    again = _refresh(minted["refresh_token"])().json()
    assert _accepted_roles(again["access_token"]) == NEW_ROLES


@pytest.mark.parametrize("body", [{"status": "suspended"}, {"roles": NEW_ROLES}])
def test_a_change_that_did_not_commit_revokes_nothing(alice, tokens, body):
    pair, admin = tokens
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("LOCK TABLE accounts_user IN SHARE MODE")
        change = in_thread(_patch(admin["access_token"], alice.id, body))
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the change never reached its write")
        # The database fails the change at its write: it rolls back.
        cursor.execute("SELECT pg_cancel_backend(%s)", blocked_by_me(cursor))
    change[0].join(timeout=30)
    assert change[1][0].status_code == 503, change[1][0].content
    alice.refresh_from_db()
    assert (alice.status, alice.roles) == ("active", ["user"])
    # Nothing changed, so alice's tokens go on working, also where only the cache is asked.
    assert _accepted_roles(pair["access_token"]) == ["user"]
    assert APIClient().get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    fresh = _refresh(pair["refresh_token"])().json()
    assert _accepted_roles(fresh["access_token"]) == ["user"]


def _login():
    return APIClient().post(
        "/api/v1/auth/login",
        {"email": "alice@example.com", "password": PASSWORD},
        format="json",
    )


@pytest.mark.parametrize("body", [{"roles": NEW_ROLES}, {"status": "suspended"}])
def test_a_login_that_read_alice_before_the_change_committed_goes_by_the_change(
    alice, tokens, body
):
    _, admin = tokens
    with transaction.atomic(), connections["default"].cursor() as cursor:
        # The change waits for alice's row first; the login reads her, checks the password,
        # then queues for her row behind the change.
        cursor.execute("SELECT 1 FROM accounts_user WHERE id = %s FOR UPDATE", [alice.id])
        change = in_thread(_patch(admin["access_token"], alice.id, body))
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the change never waited")
        login = in_thread(_login)
        poll(lambda: lock_waiters(cursor) == 2, "the login never waited")  # behind the change
    for thread, _ in (change, login):
        thread.join(timeout=30)
    assert change[1][0].status_code == 200, change[1][0].content
    answer = login[1][0]
    if "status" in body:
        assert (answer.status_code, answer.json()["code"]) == (403, "account_inactive")
        alice.refresh_from_db()
        assert not alice.sessions.filter(revoked_at__isnull=True).exists()
    else:
        assert _accepted_roles(answer.json()["access_token"]) == NEW_ROLES


def test_status_changes_at_once_are_ordered_by_the_row_lock(alice, tokens):
    """Three admins' changes of one status at once: each waits for the user's row and decides
    on what the one before it committed (a legal transition or 400), never a 5xx, and the
    user's tokens end whatever the order."""
    alice_pair, admin = tokens
    calls = {
        status: _patch(admin["access_token"], alice.id, {"status": status})
        for status in ("suspended", "inactive", "deleted")
    }
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM accounts_user WHERE id = %s FOR UPDATE", [alice.id])
        racers = {status: in_thread(call) for status, call in calls.items()}
        poll(
            lambda: len(blocked_by_me(cursor)) >= 1 and lock_waiters(cursor) == 3,
            "the three changes wait for alice's row",
        )
    answers = {}
    for status, (thread, answer) in racers.items():
        thread.join()
        answers[status] = answer[0]
    done = {s for s, a in answers.items() if a.status_code == 200}
    refused = {s: a.json()["code"] for s, a in answers.items() if a.status_code != 200}
    assert set(refused.values()) <= {"illegal_status_transition"}, refused
    # From active only one of them is legal first; after it only `deleted` still is.
    assert "deleted" in done, answers
    assert len(done - {"deleted"}) <= 1, answers
    alice.refresh_from_db()
    assert alice.status == "deleted"
    me = APIClient().get("/api/v1/auth/me", **bearer(alice_pair["access_token"]))
    assert me.status_code == 401
    assert _refresh(alice_pair["refresh_token"])().json()["code"] == "token_invalid"


def _administering() -> list[str]:
    """The emails of the users who still administer: active, verified, holding `admin`."""
    users = User.objects.filter(status="active", email_verified=True).order_by("email")
    return [user.email for user in users if "admin" in user.roles]


def _two_admins(round_: int):
    """Two admins, and each one's access token, logged in from an address of the round."""
    User.objects.all().delete()  # the admins of the previous round (their sessions cascade)
    admins = [AdminFactory(email=f"{name}{round_}@example.com") for name in ("ann", "ben")]
    address = {"REMOTE_ADDR": f"10.0.0.{round_ + 1}"}
    return [(admin, login(APIClient(), admin.email, **address)["access_token"]) for admin in admins]


def _at_once(barrier: threading.Barrier, call):
    def when_all_are_ready():
        barrier.wait(timeout=30)
        return call()

    return when_all_are_ready


@pytest.mark.parametrize("body", [{"roles": ["user"]}, {"status": "suspended"}])
def test_two_admins_ending_each_other_at_once_leave_one_admin(body):
    for round_ in range(5):
        (ann, ann_token), (ben, ben_token) = _two_admins(round_)
        barrier = threading.Barrier(2)
        racers = [
            in_thread(_at_once(barrier, _patch(ann_token, ben.id, body))),
            in_thread(_at_once(barrier, _patch(ben_token, ann.id, body))),
        ]
        for thread, _ in racers:
            thread.join(timeout=30)
        statuses = sorted(answers[0].status_code for _, answers in racers)
        # The loser is refused either way: by the last-admin rule when both got past their
        # token check (400), or at the token check itself when the winner's change, which
        # revokes the loser's tokens, committed first on a loaded machine (401).
        assert statuses in ([200, 400], [200, 401]), [a[0].content for _, a in racers]
        refused = next(answers[0] for _, answers in racers if answers[0].status_code != 200)
        if refused.status_code == 400:
            assert list(refused.json()["errors"]) == list(body)
        else:
            assert refused.json()["code"] == "token_revoked"
        assert len(_administering()) == 1


def test_two_admins_demoting_each_other_are_decided_one_after_the_other():
    (ann, ann_token), (ben, ben_token) = _two_admins(0)
    body = {"roles": ["user"]}
    with transaction.atomic(), connections["default"].cursor() as cursor:
        # Row locks go on, row writes wait: the first change holds both admins' rows at its
        # write; the second waits for those locks (unlocked, it would count the first's
        # target as an admin and reach its own write too).
        cursor.execute("LOCK TABLE accounts_user IN SHARE MODE")
        first = in_thread(_patch(ann_token, ben.id, body))
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the first change never reached its write")
        second = in_thread(_patch(ben_token, ann.id, body))
        poll(lambda: lock_waiters(cursor) >= 2, "the second change never waited")
    for thread, _ in (first, second):
        thread.join(timeout=30)
    assert first[1][0].status_code == 200, first[1][0].content
    assert second[1][0].status_code == 400, second[1][0].content
    assert second[1][0].json()["errors"].keys() == {"roles"}
    assert _administering() == [ann.email]
