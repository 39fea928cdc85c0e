"""POST /api/v1/auth/register."""

import threading

import pytest
from django.core import mail
from django.db import connections

from apps.accounts import wiring
from apps.accounts.models import User
from core.domain.accounts.user import UserStatus
from core.usecases.accounts.admin import UserChanges
from tests.factories.accounts import UserFactory
from tests.integration.accounts.conftest import last_mailed_token, login
from tests.integration.races import in_thread

URL = "/api/v1/auth/register"


def register(client, **fields):
    body = {"email": "new@example.com", "password": "quiet-meadow-river-7", "full_name": "New"}
    body.update(fields)
    return client.post(URL, body, format="json")


@pytest.mark.django_db(databases=["default"])
def test_register_creates_an_active_unverified_user_and_mails_a_token(api_client):
    response = register(api_client, email="  New.Person@Example.COM ")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["status"] == "active"
    assert body["email_verified"] is False
    assert body["roles"] == ["user"]
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "status",
        "email_verified",
        "roles",
        "created_at",
        "last_login_at",
    }
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@example.com"]
    assert "Token: " in mail.outbox[0].body


@pytest.mark.django_db(databases=["default"])
def test_privileged_fields_sent_by_the_client_never_take_effect(api_client):
    response = register(
        api_client,
        roles=["admin"],
        status="suspended",
        email_verified=True,
        is_staff=True,
    )
    body = response.json()
    assert (body["roles"], body["status"], body["email_verified"]) == (["user"], "active", False)
    assert User.objects.get(email="new@example.com").is_staff is False


@pytest.mark.django_db(databases=["default"])
def test_the_same_email_in_another_case_is_409_email_taken(api_client):
    UserFactory(email="taken@example.com")
    response = register(api_client, email="TAKEN@example.com")
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("n1@bücher.example", "n1@xn--bcher-kva.example"),
        ("n1@XN--BCHER-KVA.example", "N1@Bücher.Example"),
    ],
)
def test_both_spellings_of_an_internationalised_host_are_one_account(api_client, first, second):
    created = register(api_client, email=first)
    assert created.status_code == 201, created.content
    assert created.json()["email"] == "n1@xn--bcher-kva.example"  # the A-labels DNS uses
    verified = api_client.post("/api/v1/auth/verify-email", {"token": last_mailed_token()})
    assert verified.status_code == 200, verified.content
    again = register(api_client, email=second)
    assert (again.status_code, again.json()["code"]) == (409, "email_taken")
    assert User.objects.count() == 1
    signed_in = login(api_client, second, "quiet-meadow-river-7")
    assert signed_in["user"]["id"] == created.json()["id"]


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize(
    ("password", "field"),
    [
        ("short1", "password"),
        ("password123", "password"),
        ("12345678901", "password"),
        ("someone@example.org", "password"),
        ("new@example.com", "password"),
        (" " * 20, "password"),
    ],
)
def test_weak_passwords_are_field_errors(api_client, password, field):
    response = register(api_client, password=password)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][field]
    assert not User.objects.exists()


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize("char", ["\u3164", "\u2800", "\u115f", "\u1160", "\uffa0"])
def test_a_password_of_invisible_characters_alone_is_refused(api_client, char):
    response = register(api_client, password=char * 12)
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("validation_error", ["password"])
    assert "The password must contain something other than spaces." in body["errors"]["password"]
    assert not User.objects.exists()


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize(
    "email", ["not-an-email", "", "a@b", "x" * 250 + "@example.com", "a\n@x.io", "a@x\n.io"]
)
def test_bad_emails_are_field_errors(api_client, email):
    response = register(api_client, email=email)
    assert response.status_code == 400
    assert "email" in response.json()["errors"]


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize("email", ["xİ@example.com", "josé@example.com", "a\u200b@example.com"])
def test_an_email_that_is_not_ascii_once_normalised_is_a_field_error(api_client, email):
    response = register(api_client, email=email)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"]["email"] == ["Enter a valid email address."]
    assert not User.objects.exists()


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize(
    "email",
    [
        "ß@example.com",  # case folding made it ss@example.com, another mailbox
        "\ufb00@example.com",  # the ligature ﬀ: ff@example.com
        "\u212a@example.com",  # the Kelvin sign: k@example.com
        "\uff2e\uff25\uff37@example.com",  # fullwidth NEW: new@example.com
    ],
)
def test_a_local_part_outside_ascii_is_refused_before_it_is_folded(api_client, email):
    UserFactory(email="ss@example.com")
    response = register(api_client, email=email)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"]["email"] == ["Enter a valid email address."]
    assert list(User.objects.values_list("email", flat=True)) == ["ss@example.com"]


@pytest.mark.django_db(databases=["default"])
def test_an_email_is_normalised_before_it_is_validated(api_client):
    response = register(api_client, email="New@\uff25xample.com")  # a fullwidth E in the host
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "new@example.com"
    assert User.objects.get().email == "new@example.com"


@pytest.mark.django_db(databases=["default"])
def test_long_passwords_are_kept_whole(api_client):
    password = "long-passphrase-" * 6 + "A"  # 97 characters, past bcrypt's 72 bytes
    register(api_client, password=password)
    User.objects.filter(email="new@example.com").update(email_verified=True)
    assert login(api_client, "new@example.com", password)
    almost = api_client.post(
        "/api/v1/auth/login",
        {"email": "new@example.com", "password": password[:-1] + "B"},
        format="json",
    )
    assert almost.status_code == 401


@pytest.mark.django_db(databases=["default"])
def test_register_is_rate_limited(api_client, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "register": "1/m"}
    assert register(api_client).status_code == 201
    response = register(api_client, email="other@example.com")
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not User.objects.filter(email="other@example.com").exists()


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_two_simultaneous_registrations_of_one_email_make_one_row(settings):
    from rest_framework.test import APIClient

    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "register": "100/m"}
    barrier = threading.Barrier(4)
    statuses = []

    def attempt():
        try:
            barrier.wait()
            statuses.append(register(APIClient(), email="race@example.com").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert User.objects.filter(email="race@example.com").count() == 1


@pytest.mark.django_db(databases=["default"])
def test_each_reason_a_password_is_refused_is_said_once(api_client):
    messages = register(api_client, password=" " * 20).json()["errors"]["password"]
    assert len(messages) == len(set(messages))
    assert "The password must contain something other than spaces." in messages


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_the_holder_deleted_right_after_the_insert_is_409_not_500(api_client):
    """The insert found the address taken; the holder's soft delete commits (on another
    connection) before register could look at the table again: the answer is the insert's,
    409 `email_taken`, not a read-back that finds neither account (a 500)."""
    holder = UserFactory(email="held@example.com")
    deleted = []

    def delete_the_holder_after_the_insert(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('INSERT INTO "accounts_user"') and not deleted:
            soft_delete = wiring.update_user().execute
            thread, answers = in_thread(
                lambda: soft_delete(str(holder.pk), UserChanges(status=UserStatus.DELETED))
            )
            thread.join(timeout=30)
            deleted.extend(answers)
        return result

    with connections["default"].execute_wrapper(delete_the_holder_after_the_insert):
        response = register(api_client, email="held@example.com")
    assert [answer.is_ok() for answer in deleted] == [True]
    assert (response.status_code, response.json()["code"]) == (409, "email_taken")
    holder.refresh_from_db()
    assert (holder.status, holder.deleted_email) == ("deleted", "held@example.com")
    # The address is free now: the next register of it is a new account.
    assert register(api_client, email="held@example.com").status_code == 201
