"""One-time tokens (reset and verification links) racing the changes of their user (real
PostgreSQL): every path takes the user's row lock before it writes the user's tokens, so none
deadlocks with another, and issuers of one user run one after the other, so one link of each
purpose lives at a time.

As in `test_users_detail_races.py`, PostgreSQL orders the racers: the test holds a lock in its
own transaction, starts the requests on threads of their own, waits until it sees each one
wait (`pg_blocking_pids`), and lets go. Each of these interleavings deadlocked every time while
the paths took the user's row and their tokens in opposite orders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts import wiring
from apps.accounts.models import OneTimeToken, User
from core.usecases.accounts.ports import TokenPurpose
from tests.factories.accounts import PASSWORD, UserFactory
from tests.integration.accounts.conftest import bearer, last_mailed_token, login
from tests.integration.races import blocked_by_me, in_thread, lock_waiters, poll

pytestmark = pytest.mark.django_db(transaction=True, databases=["default"])

NEW = "fresh-orchard-lantern-4"
ANOTHER = "quiet-harbour-compass-5"


def _post(path: str, body: dict, **extra: Any) -> Callable[[], Any]:
    def call():
        client = APIClient(raise_request_exception=False)  # a 5xx is an answer to assert on
        return client.post(path, body, format="json", **extra)

    return call


def _settled(call: Callable[[], Any]) -> Callable[[], Any]:
    """`call`, answering the exception it raised instead of raising it (a use case run
    outside a request: a deadlock is an `OperationalError` to assert on)."""

    def run():
        try:
            return call()
        except Exception as error:  # the answer under test
            return error

    return run


def _change(pair: dict) -> Callable[[], Any]:
    return _post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": NEW},
        **bearer(pair["access_token"]),
    )


def _request_reset(email: str = "alice@example.com") -> Callable[[], Any]:
    return _post("/api/v1/auth/password/reset", {"email": email})


def _confirm(token: str, password: str = ANOTHER) -> Callable[[], Any]:
    return _post("/api/v1/auth/password/reset/confirm", {"token": token, "new_password": password})


def _live_tokens(user: User, purpose: TokenPurpose) -> int:
    return OneTimeToken.objects.filter(
        user_id=user.id, purpose=purpose.value, used_at__isnull=True
    ).count()


def _hold_user_then_run(user: User, first: Callable[[], Any], second: Callable[[], Any]):
    """Hold `user`'s row, start `first` and see it wait for the row, then `second` and see it
    wait too (for the row, or for a token `first` holds); let go, and answer both answers."""
    lock = "SELECT 1 FROM accounts_user WHERE id = %s FOR UPDATE"
    return _hold_then_run(lock, user.id, first, second)


def _hold_then_run(lock: str, key: Any, first: Callable[[], Any], second: Callable[[], Any]):
    """Hold the rows `lock` (a SELECT ... FOR UPDATE of `key`) locks, start `first` and see it
    wait for them, then `second` and see it wait too; let go, and answer both answers."""
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute(lock, [key])
        one = in_thread(first)
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the first never waited for the rows held")
        two = in_thread(second)
        poll(lambda: lock_waiters(cursor) == 2, "the second never waited")
    answers = []
    for thread, answer in (one, two):
        thread.join(timeout=30)
        assert not thread.is_alive(), "a racer never finished"
        answers.append(answer[0])
    return answers


def test_a_password_change_and_a_reset_of_one_user_both_finish(alice):
    """The probe's deadlock: the change locked the user and then voided her reset links; the
    reset locked its link and then the user. Now both take the user first: the change commits
    first, and the link it voided is refused (400), not a 503 after a deadlock."""
    pair = login(APIClient(), "alice@example.com")
    _request_reset()()
    token = last_mailed_token()
    changed, reset = _hold_user_then_run(alice, _change(pair), _confirm(token))
    assert changed.status_code == 204, changed.content
    assert (reset.status_code, reset.json()["code"]) == (400, "invalid_token"), reset.content
    assert login(APIClient(), "alice@example.com", NEW)


def test_a_password_change_and_an_admins_password_set_both_finish(alice):
    """`SealPasswordSet` (Django admin, `manage.py changepassword`) voided the reset links
    before it locked the user, the change the other way round."""
    pair = login(APIClient(), "alice@example.com")
    _request_reset()()
    token = last_mailed_token()
    seal = _settled(lambda: wiring.seal_password_set().execute(str(alice.id)).unwrap())
    changed, sealed = _hold_user_then_run(alice, _change(pair), seal)
    assert changed.status_code == 204, changed.content
    assert sealed is None, sealed
    # The set came second: it ended every session, the changing caller's too.
    me = APIClient().get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert me.status_code == 401
    reset = _confirm(token)()
    assert (reset.status_code, reset.json()["code"]) == (400, "invalid_token")


def test_a_reset_requested_during_a_password_change_both_finish(alice):
    """Issuing a link voided the last one (its row lock) and then inserted the new one, whose
    foreign key waits for the user's row the change holds while it waits for that link."""
    pair = login(APIClient(), "alice@example.com")
    _request_reset()()
    before = last_mailed_token()
    changed, requested = _hold_user_then_run(alice, _change(pair), _request_reset())
    assert changed.status_code == 204, changed.content
    assert requested.status_code == 202, requested.content
    # The change voided the link mailed before it; the one mailed after it works.
    assert _live_tokens(alice, TokenPurpose.RESET) == 1
    after = last_mailed_token()
    refused = _confirm(before)()
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_token")
    assert _confirm(after)().status_code == 204


@pytest.fixture
def carol(db):
    return UserFactory(email="carol@example.com", email_verified=False)


def test_a_resend_and_a_verification_of_one_user_both_finish(carol):
    """A resend locks the user and voids her verification links; verifying takes the user's
    row before it uses its link too, so the two never wait for each other's locks."""
    _post("/api/v1/auth/verify-email/resend", {"email": "carol@example.com"})()
    first = last_mailed_token()
    resent, verified = _hold_user_then_run(
        carol,
        _post("/api/v1/auth/verify-email/resend", {"email": "carol@example.com"}),
        _post("/api/v1/auth/verify-email", {"token": first}),
    )
    assert resent.status_code == 202, resent.content
    # The resend came first and voided the link: the new one verifies.
    assert (verified.status_code, verified.json()["code"]) == (400, "invalid_token")
    again = _post("/api/v1/auth/verify-email", {"token": last_mailed_token()})()
    assert again.status_code == 200, again.content


@pytest.mark.parametrize(
    ("path", "purpose"),
    [
        ("/api/v1/auth/password/reset", TokenPurpose.RESET),
        ("/api/v1/auth/verify-email/resend", TokenPurpose.VERIFY_EMAIL),
    ],
)
def test_links_issued_at_once_leave_one_live(carol, path, purpose):
    """Two issuers at once each voided the links they could see and inserted their own:
    neither saw the other's, and two links lived. Now the second waits for the first."""
    request = _post(path, {"email": "carol@example.com"})
    first, second = _hold_user_then_run(carol, request, request)
    assert (first.status_code, second.status_code) == (202, 202)
    assert _live_tokens(carol, purpose) == 1


def test_a_used_reset_link_voids_the_others(alice):
    _request_reset()()
    first = last_mailed_token()
    _request_reset()()
    second = last_mailed_token()
    # Both live, as two requests at once used to leave them.
    OneTimeToken.objects.filter(user_id=alice.id).update(used_at=None)
    assert _confirm(second, NEW)().status_code == 204
    refused = _confirm(first)()
    assert refused.status_code == 400, "the other link still reset the password"
    assert refused.json()["code"] == "invalid_token"
    assert login(APIClient(), "alice@example.com", NEW)


def test_deleting_a_user_in_the_admin_while_her_reset_is_confirmed_both_finish(alice, admin_user):
    """The admin's delete action removed her links (Django deletes the rows that refer to a
    user before the user's row), then her row; a reset holding her row waited for a link."""
    admin_user.is_superuser = True
    admin_user.save()
    _request_reset()()
    token = last_mailed_token()

    def delete():
        client = Client(raise_request_exception=False)
        client.force_login(admin_user)
        body = {"action": "delete_selected", "_selected_action": [alice.id], "post": "yes"}
        return client.post("/admin/accounts/user/", body)

    # Her links held: the delete waits there, and the reset for her row the delete holds.
    lock = "SELECT 1 FROM accounts_one_time_token WHERE user_id = %s FOR UPDATE"
    deleted, reset = _hold_then_run(lock, alice.id, delete, _confirm(token))
    assert deleted.status_code == 302, deleted.content
    assert not User.objects.filter(pk=alice.id).exists()
    assert (reset.status_code, reset.json()["code"]) == (400, "invalid_token"), reset.content
