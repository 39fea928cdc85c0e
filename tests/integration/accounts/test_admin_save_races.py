"""Django admin's change form against changes committed around it: the save writes only the
columns the form changed, on a row it locked before reading, so a logout-all or a soft delete
that lands while a page is loaded or saved is never undone; a deleted account's page is
view-only and a form loaded before the delete saves nothing."""

from __future__ import annotations

import uuid

import pytest
from django.db import connections, transaction
from django.db.models.signals import pre_save
from django.test import Client

from apps.accounts import wiring
from apps.accounts.models import User
from core.domain.accounts.user import UserStatus
from core.usecases.accounts.admin import UserChanges
from tests.factories.accounts import AdminFactory, UserFactory
from tests.integration.accounts.conftest import bearer, login
from tests.integration.races import blocked_by_me, in_thread, lock_waiters, poll

USERS_PAGE = "/admin/accounts/user/"


def _page(user: User) -> str:
    return f"{USERS_PAGE}{user.pk}/change/"


def _form_data(page, **changes):
    """What a loaded change page posts back, with `changes` applied."""
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(groups=[], **changes)
    return data


def _soft_delete(user: User) -> None:
    wiring.update_user().execute(str(user.pk), UserChanges(status=UserStatus.DELETED)).unwrap()


@pytest.fixture
def admin_site(db):
    client = Client()
    client.force_login(AdminFactory(email="root@example.com", is_superuser=True))
    return client


@pytest.mark.django_db(databases=["default"])
def test_a_form_loaded_before_a_logout_all_keeps_it(admin_site, alice):
    page = admin_site.get(_page(alice))
    wiring.logout_all().execute(str(alice.pk))
    ended = User.objects.get(pk=alice.pk)
    assert ended.sessions_ended_at is not None
    response = admin_site.post(_page(alice), _form_data(page, full_name="Alice P. Liddell"))
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.full_name == "Alice P. Liddell"
    assert (alice.sessions_ended_at, alice.tokens_valid_after) == (
        ended.sessions_ended_at,
        ended.tokens_valid_after,
    )


@pytest.mark.django_db(databases=["default"])
def test_the_save_writes_only_the_columns_the_form_changed(admin_site, alice):
    """A write of the user made while the admin's save is under way (on its own connection,
    so no lock holds it back) is not written over: only `full_name` is."""
    data = _form_data(admin_site.get(_page(alice)), full_name="Alice P. Liddell")
    ended = []

    def end_sessions_first(sender, instance, update_fields=None, **kwargs):
        if instance.pk == alice.pk and not ended:
            ended.append(wiring.logout_all().execute(str(alice.pk)))

    pre_save.connect(end_sessions_first, sender=User)
    try:
        assert admin_site.post(_page(alice), data).status_code == 302
    finally:
        pre_save.disconnect(end_sessions_first, sender=User)
    assert ended
    alice.refresh_from_db()
    assert alice.full_name == "Alice P. Liddell"
    assert alice.sessions_ended_at is not None
    assert alice.tokens_valid_after is not None


@pytest.mark.django_db(databases=["default"])
def test_a_form_loaded_before_a_soft_delete_saves_nothing(admin_site, alice):
    page = admin_site.get(_page(alice))
    _soft_delete(alice)
    response = admin_site.post(
        _page(alice), _form_data(page, full_name="Alice P. Liddell"), follow=True
    )
    assert response.redirect_chain == [(_page(alice), 302)]
    assert "Nothing was saved: this account is deleted" in response.content.decode()
    alice.refresh_from_db()
    assert (alice.status, alice.full_name) == ("deleted", "Alice Liddell")
    assert (alice.email, alice.deleted_email) == (
        f"{alice.pk}@deleted.invalid",
        "alice@example.com",
    )
    # The address stays released: it registers again.
    assert UserFactory(email="alice@example.com").email == "alice@example.com"


@pytest.mark.django_db(databases=["default"])
def test_a_deleted_accounts_page_is_view_only(admin_site, alice):
    _soft_delete(alice)
    page = admin_site.get(_page(alice))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert "alice@example.com" in page.content.decode()  # its `deleted_email`, to view
    assert b'name="_save"' not in page.content
    assert admin_site.get(f"{USERS_PAGE}{alice.pk}/password/").status_code == 403


@pytest.mark.django_db(databases=["default"])
def test_an_accounts_page_still_saves(admin_site, alice):
    """The other side of the lock: a change of a live account is saved, `updated_at` with it."""
    before = User.objects.get(pk=alice.pk).updated_at
    page = admin_site.get(_page(alice))
    response = admin_site.post(_page(alice), _form_data(page, full_name="Alice P. Liddell"))
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.full_name == "Alice P. Liddell"
    assert alice.updated_at > before


def _logout_all(user: User):
    from rest_framework.test import APIClient

    api = APIClient()
    token = login(api, user.email)["access_token"]
    return lambda: api.post("/api/v1/auth/logout-all", **bearer(token)).status_code


def _delete_over_the_api(user: User):
    from rest_framework.test import APIClient

    api = APIClient()
    token = login(api, "root@example.com")["access_token"]
    return lambda: (
        api.patch(
            f"/api/v1/users/{user.pk}", {"status": "deleted"}, format="json", **bearer(token)
        ).status_code
    )


@pytest.mark.django_db(transaction=True, databases=["default"])
@pytest.mark.parametrize(
    ("change", "landed"),
    [
        (_logout_all, lambda row: row.sessions_ended_at is not None),
        (
            _delete_over_the_api,
            lambda row: (
                (row.status, row.email, row.deleted_email)
                == ("deleted", f"{row.pk}@deleted.invalid", "alice@example.com")
            ),
        ),
    ],
    ids=["logout-all", "soft-delete"],
)
def test_a_change_landing_during_an_admin_save_is_not_undone(change, landed):
    # The admin's id first: a status change locks it before alice's, and the admin's save
    # must not hold alice's while it waits for the admin's (a deadlock, 503).
    root = AdminFactory(id=uuid.UUID(int=1), email="root@example.com", is_superuser=True)
    alice = UserFactory(id=uuid.UUID(int=2), email="alice@example.com", full_name="Alice Liddell")
    admin_site = Client(raise_request_exception=False)  # a 5xx is an answer to assert on
    admin_site.force_login(root)
    data = _form_data(admin_site.get(_page(alice)), full_name="Alice P. Liddell")
    concurrent = change(alice)
    with transaction.atomic(), connections["default"].cursor() as cursor:
        # Row locks go on, row writes wait: the admin's save stops at its write, having read
        # the row; the other change then runs into the row as the admin's save holds it.
        cursor.execute("LOCK TABLE accounts_user IN SHARE MODE")
        saving = in_thread(lambda: admin_site.post(_page(alice), data).status_code)
        poll(lambda: len(blocked_by_me(cursor)) == 1, "the admin's save never reached its write")
        other = in_thread(concurrent)
        poll(lambda: lock_waiters(cursor) >= 2, "the other change never waited")
    for thread, _ in (saving, other):
        thread.join(timeout=30)
    assert (saving[1], other[1]) == ([302], [204 if change is _logout_all else 200])
    row = User.objects.get(pk=alice.pk)
    assert landed(row), (row.status, row.email, row.deleted_email, row.sessions_ended_at)
    assert row.full_name == "Alice P. Liddell"
