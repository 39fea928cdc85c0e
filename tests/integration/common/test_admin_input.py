"""Every Django admin of the platform refuses malformed request data with a form error or
Django's own "invalid filter" redirect, never a 500: query strings its list filters do not
offer, selected ids that are no ids of its model, JSON nested too deeply in a JSON field.

The walk covers every model registered with the admin site, so an admin added later is held
to the same rules.
"""

from __future__ import annotations

import pytest
from django.contrib import admin

from apps.common.admin import CheckedInputAdmin

pytestmark = pytest.mark.django_db(databases=["default", "gateway", "aggregation"])


def changelist(model):
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


MODELS = sorted(admin.site._registry, key=changelist)


@pytest.mark.parametrize("model", MODELS, ids=changelist)
@pytest.mark.parametrize(
    "query",
    [
        "id__regex=[",  # an unbalanced regular expression: PostgreSQL refuses it
        "id__iregex=(",
        "id__range=a",  # Django cannot even build the query
        "id__contained_by=x",  # a range lookup on a number: a malformed range literal
    ],
)
def test_a_list_refuses_a_lookup_none_of_its_filters_offers(admin_client, model, query):
    path = changelist(model)
    response = admin_client.get(f"{path}?{query}")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == f"{path}?e=1"


DATED = [model for model in MODELS if admin.site._registry[model].date_hierarchy]


@pytest.mark.parametrize("model", DATED, ids=changelist)
@pytest.mark.parametrize(
    "dates",
    [
        {"year": "9999"},  # the year after it is past what datetime holds: ValueError
        {"year": "9999", "month": "12"},  # OverflowError
        {"year": "9999", "month": "12", "day": "31"},
        {"year": "99999999999999999999"},  # past a C int: OverflowError
        {"year": "2026", "month": "13"},  # a ValueError Django itself catches
    ],
    ids=lambda dates: "-".join(dates.values()),
)
def test_a_list_refuses_a_date_hierarchy_out_of_the_calendar(admin_client, model, dates):
    path = changelist(model)
    field = admin.site._registry[model].date_hierarchy
    query = "&".join(f"{field}__{part}={value}" for part, value in dates.items())
    response = admin_client.get(f"{path}?{query}")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == f"{path}?e=1"


def test_a_list_still_filters_by_its_own_filters_and_date_hierarchy(admin_client):
    page = admin_client.get(
        "/admin/aggregation/runrow/?status__exact=failed&started_at__year=2026&started_at__month=2"
    )
    assert page.status_code == 200
    routes = admin_client.get("/admin/gateway/routerow/?enabled__exact=1&auth__exact=none")
    assert routes.status_code == 200


# No id of any model: not a number, nor a UUID, nor a number a 64-bit key holds (SQLite, the
# embedded databases, cannot even bind one: OverflowError, a 500).
OUT_OF_ANY_KEY = ["abc", "1.5", "", str(2**63), str(-(2**63) - 1)]


@pytest.mark.parametrize("model", MODELS, ids=changelist)
def test_an_action_ignores_selected_ids_that_are_no_ids_of_the_model(admin_client, model):
    response = admin_client.post(
        changelist(model),
        {"action": "delete_selected", "_selected_action": OUT_OF_ANY_KEY, "index": "0"},
        follow=True,
    )
    assert response.status_code == 200
    ignored = len(OUT_OF_ANY_KEY)
    assert f"{ignored} selected id(s) ignored: not {model._meta.verbose_name} ids.".encode() in (
        response.content
    )


DEEP = "[" * 5000 + "]" * 5000  # past Python's recursion limit
NESTED = "[" * 900 + "]" * 900  # parses on its own, not inside the admin's deep stack


@pytest.mark.parametrize("document", [DEEP, NESTED], ids=["deep", "nested"])
@pytest.mark.parametrize("field", ["methods", "required_roles"])
def test_the_route_form_refuses_json_nested_too_deeply(admin_client, field, document):
    from apps.gateway.models import RouteRow
    from tests.integration.gateway.test_route_admin_site import ADD, route_form

    response = admin_client.post(ADD, route_form(**{field: document}))
    assert response.status_code == 200
    assert b"Enter JSON nested at most" in response.content
    assert not RouteRow.objects.using("gateway").exists()


@pytest.mark.parametrize("document", [DEEP, NESTED, '{"a": ' + NESTED + "}"])
@pytest.mark.parametrize("field", ["fields", "rename"])
def test_the_composite_form_refuses_json_nested_too_deeply(admin_client, field, document):
    from apps.aggregation.models import CompositeRow
    from tests.integration.aggregation.test_admin import ADD, inline_form

    response = admin_client.post(ADD, inline_form("dash") | {f"sources-0-{field}": document})
    assert response.status_code == 200
    assert b"Enter JSON nested at most" in response.content
    assert not CompositeRow.objects.using("aggregation").exists()


@pytest.mark.parametrize("document", [DEEP, NESTED], ids=["deep", "nested"])
def test_the_user_form_refuses_roles_nested_too_deeply(admin_client, admin_user, document):
    path = f"/admin/accounts/user/{admin_user.pk}/change/"
    form = {
        "email": admin_user.email,
        "full_name": "Root",
        "roles": document,
        "is_staff": "on",
        "is_superuser": "on",
    }
    response = admin_client.post(path, form)
    assert response.status_code == 200
    assert b"Enter JSON nested at most" in response.content
    admin_user.refresh_from_db()
    assert admin_user.full_name != "Root"


@pytest.mark.parametrize("model", MODELS, ids=changelist)
def test_every_admin_checks_its_input(model):
    model_admin = admin.site._registry[model]
    assert isinstance(model_admin, CheckedInputAdmin), f"{type(model_admin)} lacks the mixin"
