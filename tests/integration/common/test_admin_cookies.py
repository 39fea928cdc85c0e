"""The Django admin's cookies stay with the admin: every other path of the platform's origin
is the gateway's, whose upstreams must never receive a signed-in admin's session."""

import pytest
from django.test import Client

from tests.factories.accounts import PASSWORD, AdminFactory

pytestmark = pytest.mark.django_db(databases=["default"])


def test_the_session_and_csrf_cookies_are_scoped_to_the_admin():
    admin = AdminFactory(is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    form = client.get("/admin/login/")
    csrf = form.cookies["csrftoken"]
    assert csrf["path"] == "/admin/"
    signed_in = client.post(
        "/admin/login/?next=/admin/",
        {"username": admin.email, "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
    )
    assert signed_in.status_code == 302, signed_in.content
    assert signed_in.cookies["sessionid"]["path"] == "/admin/"
    assert client.get("/admin/accounts/user/").status_code == 200
