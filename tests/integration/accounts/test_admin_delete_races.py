"""Django admin's delete of users racing another (real PostgreSQL): two admins deleting each
other at once are decided one after the other, and one of them stays an admin.

As in `test_users_detail_races.py`, PostgreSQL orders the racers: the test holds a lock in its
own transaction so that the first delete stops at its write, lets the second run into the first's
locks, and releases it once it sees where each one waits.
"""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test import Client

from apps.accounts.models import User
from tests.factories.accounts import AdminFactory
from tests.integration.races import blocked_by_me, in_thread, lock_waiters, poll

pytestmark = pytest.mark.django_db(transaction=True, databases=["default"])


def _signed_in(admin: User) -> Client:
    client = Client(raise_request_exception=False)  # a 5xx is an answer to assert on
    client.force_login(admin)
    return client


def _delete(client: Client, user: User):
    return lambda: client.post(f"/admin/accounts/user/{user.id}/delete/", {"post": "yes"})


def test_two_admins_deleting_each_other_are_decided_one_after_the_other():
    ann, ben = (AdminFactory(email=f"{name}@example.com", is_superuser=True) for name in "ab")
    ann_admin, ben_admin = _signed_in(ann), _signed_in(ben)
    with transaction.atomic(), connections["default"].cursor() as cursor:
        # Row locks go on, row writes wait: the first delete holds both admins' rows at its
        # write; the second waits for those locks (unlocked, it would count the first's
        # target as an admin and delete the last one).
        cursor.execute("LOCK TABLE accounts_user IN SHARE MODE")
        first = in_thread(_delete(ann_admin, ben))
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the first delete never reached its write")
        second = in_thread(_delete(ben_admin, ann))
        poll(lambda: lock_waiters(cursor) >= 2, "the second delete never waited")
    for thread, _ in (first, second):
        thread.join(timeout=30)
    deleted, refused = first[1][0], second[1][0]
    assert (deleted.status_code, deleted["Location"]) == (302, "/admin/accounts/user/")
    assert (refused.status_code, refused["Location"]) == (
        302,
        f"/admin/accounts/user/{ann.id}/change/",
    )
    assert list(User.objects.values_list("email", flat=True)) == [ann.email]
