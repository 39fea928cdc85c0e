"""The Django admin's route form refuses what the domain and the REST API refuse."""

import json
import time

import pytest

from apps.gateway.models import RouteRow

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])

ADD = "/admin/gateway/routerow/add/"


def route_form(**changes):
    form = {
        "name": "orders",
        "path_prefix": "/orders",
        "upstream_url": "http://127.0.0.1:9/base",
        "strip_prefix": "on",
        "enabled": "on",
        "methods": '["GET"]',
        "auth": "required",
        "required_roles": '["ops"]',
        "rate_limit_requests": "",
        "rate_limit_window_seconds": "",
        "rate_limit_key": "",
        "cache_ttl_seconds": "0",
        "timeout_ms": "1000",
        "retries": "0",
        "failure_threshold": "5",
        "recovery_seconds": "30",
    }
    form.update(changes)
    return form


@pytest.mark.parametrize(
    "roles",
    [
        [1, None],
        [True],
        [{"a": 1}],
        ["x" * 65],
        ["a" * 51],
        ["a\nb"],
        ["Admin"],
        "admin",
    ],
)
def test_the_admin_refuses_required_roles_that_are_not_role_names(admin_client, roles):
    response = admin_client.post(ADD, route_form(required_roles=json.dumps(roles)))
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert not RouteRow.objects.using("gateway").exists()


def test_the_admin_trims_required_roles(admin_client):
    response = admin_client.post(ADD, route_form(required_roles='[" admin ", "billing:read"]'))
    assert response.status_code == 302, response.content.decode()[:3000]
    row = RouteRow.objects.using("gateway").get(name="orders")
    assert sorted(row.required_roles) == ["admin", "billing:read"]


@pytest.mark.parametrize(("given", "kept"), [("/orders/", "/orders"), (" /orders/ ", "/orders")])
@pytest.mark.parametrize("page", ["add", "change"])
def test_the_admin_drops_a_trailing_slash_of_the_prefix_as_the_api_does(
    admin_client, api_client, page, given, kept
):
    """One rule for both doors: what the REST API stores for a prefix, the admin stores too."""
    from tests.factories.tokens import access_token

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    over_the_api = api_client.post(
        "/api/v1/gateway/routes",
        {"name": "api", "path_prefix": given, "upstream_url": "http://127.0.0.1:9/base"},
        format="json",
    )
    assert over_the_api.status_code == 201, over_the_api.json()
    assert over_the_api.json()["path_prefix"] == kept
    assert api_client.delete("/api/v1/gateway/routes/api").status_code == 204
    if page == "change":
        url = f"{CHANGELIST}{_stored_route(path_prefix='/before').pk}/change/"
    else:
        url = ADD
    response = admin_client.post(url, route_form(path_prefix=given))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert RouteRow.objects.using("gateway").get(name="orders").path_prefix == kept


def test_the_admin_refuses_a_prefix_taken_but_for_its_trailing_slash(admin_client):
    _stored_route(name="taken", path_prefix="/orders")
    response = admin_client.post(ADD, route_form(path_prefix="/orders/"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["path_prefix"] == ["Route with this Path prefix already exists."], errors
    assert not RouteRow.objects.using("gateway").filter(name="orders").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:18141?", "http://h/base/#"])
def test_the_admin_refuses_an_upstream_url_with_an_empty_query_or_fragment(admin_client, url):
    response = admin_client.post(ADD, route_form(upstream_url=url))
    assert response.status_code == 200
    assert b"Leave out query, fragment and credentials." in response.content
    assert not RouteRow.objects.using("gateway").exists()


def test_a_route_added_or_sent_elsewhere_in_the_admin_starts_with_a_closed_circuit(admin_client):
    from apps.gateway import wiring
    from core.domain.gateway.breaker import CircuitState
    from core.domain.gateway.route import BreakerPolicy

    breaker, policy = wiring.state().breaker, BreakerPolicy(1, 3600)

    def open_circuit():
        breaker.record("orders", policy, 1.0, success=False, probe=False)
        assert breaker.snapshot("orders").state is CircuitState.OPEN

    open_circuit()  # left by an earlier route of that name
    assert admin_client.post(ADD, route_form()).status_code == 302
    assert breaker.snapshot("orders").state is CircuitState.CLOSED
    pk = RouteRow.objects.using("gateway").get(name="orders").pk
    change = f"/admin/gateway/routerow/{pk}/change/"
    open_circuit()
    assert admin_client.post(change, route_form(timeout_ms="900")).status_code == 302
    assert breaker.snapshot("orders").state is CircuitState.OPEN  # the same upstream
    moved = route_form(upstream_url="http://127.0.0.1:9/replica")
    assert admin_client.post(change, moved).status_code == 302
    assert breaker.snapshot("orders").state is CircuitState.CLOSED
    open_circuit()
    assert (
        admin_client.post(f"/admin/gateway/routerow/{pk}/delete/", {"post": "yes"}).status_code
        == 302
    )
    assert breaker.snapshot("orders").state is CircuitState.CLOSED


@pytest.mark.django_db(databases=["default", "gateway"], transaction=True)
@pytest.mark.parametrize("change", ["add", "change"])
def test_other_workers_reload_an_admin_change_once_it_is_committed(admin_client, change):
    """Django admin saves inside a transaction on the gateway database and writes its history
    row (`django_admin_log`, default database) before that transaction commits. A worker that
    checks the version key in between must not find it changed: it would reload the old rows
    under the new version and serve them until the next change. The test holds the history
    table locked, so the admin's request waits there, between its save and its commit."""
    from django.db import connections, transaction

    from apps.gateway.repositories import DjangoRouteRepository
    from apps.gateway.route_table import VersionedRouteSource
    from tests.integration.races import blocked_by_me, in_thread, poll

    if change == "change":
        assert admin_client.post(ADD, route_form(path_prefix="/shop")).status_code == 302
        pk = RouteRow.objects.using("gateway").get(name="orders").pk
        url = f"/admin/gateway/routerow/{pk}/change/"
    else:
        url = ADD
    clock = [0.0]
    other_worker = VersionedRouteSource(
        DjangoRouteRepository().enabled, refresh_seconds=0.5, monotonic=lambda: clock[0]
    )
    assert other_worker.current().match("/orders") is None
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute("LOCK TABLE django_admin_log IN SHARE MODE")
        thread, answers = in_thread(lambda: admin_client.post(url, route_form()))
        poll(lambda: len(blocked_by_me(cursor)) >= 1, "the admin never wrote its history")
        clock[0] += 1  # the other worker's next check falls in the admin's transaction
        other_worker.current()
    thread.join(timeout=30)
    assert [answer.status_code for answer in answers] == [302]
    clock[0] += 1
    served = other_worker.current().match("/orders")
    assert served is not None, "the other worker kept the table from before the change"
    assert served.name == "orders"


CHANGELIST = "/admin/gateway/routerow/"


def _staff(client, *permissions, staff=True):
    """A signed-in account with `is_staff` as given and these `gateway` model permissions."""
    from django.contrib.auth.models import Permission

    from tests.factories.accounts import UserFactory

    user = UserFactory(is_staff=staff)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="gateway", codename__in=permissions)
    )
    client.force_login(user)
    return client


def _stored_route(**fields):
    from apps.gateway import wiring
    from tests.factories.gateway import route

    wiring.create_route().execute(route(**fields)).unwrap()
    return RouteRow.objects.using("gateway").get(name=fields.get("name", "orders"))


@pytest.mark.parametrize("staff", [False, True], ids=["not-staff", "staff-no-permission"])
def test_the_route_admin_is_closed_to_accounts_without_staff_and_permissions(client, staff):
    row = _stored_route()
    signed_in = _staff(client, staff=staff)
    change = f"{CHANGELIST}{row.pk}/change/"
    pages = [CHANGELIST, ADD, change, f"{CHANGELIST}{row.pk}/delete/"]
    for page in pages:
        answer = signed_in.get(page)
        if staff:
            assert answer.status_code == 403, page
        else:  # the admin's sign-in page, as for anybody without is_staff
            assert answer.status_code == 302, page
            assert answer["Location"].startswith("/admin/login/"), page
    added = signed_in.post(ADD, route_form(name="other", path_prefix="/other"))
    assert added.status_code == (403 if staff else 302)
    signed_in.post(change, route_form(upstream_url="http://127.0.0.1:9/elsewhere"))
    signed_in.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"})
    assert [r.upstream_url for r in RouteRow.objects.using("gateway").all()] == [row.upstream_url]


def test_staff_with_the_view_permission_see_routes_and_circuits_but_change_nothing(client):
    from apps.gateway import wiring
    from core.domain.gateway.route import BreakerPolicy

    row = _stored_route()
    opened_at = time.time()  # within the recovery time: open
    wiring.state().breaker.record(
        "orders", BreakerPolicy(1, 60), opened_at, success=False, probe=False
    )
    viewer = _staff(client, "view_routerow")
    listing = viewer.get(CHANGELIST)
    assert listing.status_code == 200
    assert b"/orders" in listing.content
    assert b'<td class="field-circuit_state">open</td>' in listing.content
    page = viewer.get(f"{CHANGELIST}{row.pk}/change/")
    assert page.status_code == 200
    assert b"open" in page.content
    assert b'name="upstream_url"' not in page.content  # read-only
    changed = viewer.post(
        f"{CHANGELIST}{row.pk}/change/", route_form(upstream_url="http://127.0.0.1:9/elsewhere")
    )
    assert changed.status_code == 403
    assert viewer.get(ADD).status_code == 403
    assert viewer.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RouteRow.objects.using("gateway").get(pk=row.pk).upstream_url == row.upstream_url


def test_the_admin_shows_a_circuit_past_its_recovery_time_as_half_open(admin_client):
    """As the status endpoint does: the next call would go upstream as the probe."""
    from apps.gateway import wiring
    from core.domain.gateway.route import BreakerPolicy

    row = _stored_route()  # recovery_seconds 30
    breaker = wiring.state().breaker
    breaker.record("orders", BreakerPolicy(1, 30), time.time() - 31, success=False, probe=False)
    listing = admin_client.get(CHANGELIST)
    assert b'<td class="field-circuit_state">half_open</td>' in listing.content
    page = admin_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert b"half_open" in page.content


def test_staff_with_the_change_permission_edit_routes_as_the_api_would(
    client, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from apps.gateway.route_table import VERSION_KEY

    row = _stored_route()
    editor = _staff(client, "view_routerow", "change_routerow")
    before = cache.get(VERSION_KEY)
    with django_capture_on_commit_callbacks(using="gateway", execute=True):
        changed = editor.post(f"{CHANGELIST}{row.pk}/change/", route_form(timeout_ms="900"))
    assert changed.status_code == 302, changed.content.decode()[:3000]
    assert cache.get(VERSION_KEY) != before  # every worker is told, as after a REST change
    assert RouteRow.objects.using("gateway").get(pk=row.pk).timeout_ms == 900
    assert editor.get(ADD).status_code == 403  # adding is its own permission
    assert editor.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403


INVALID_FORMS = [
    ({"name": "Orders"}, "name"),
    ({"path_prefix": "/api/orders"}, "path_prefix"),
    ({"path_prefix": "orders"}, "path_prefix"),
    ({"path_prefix": "/taken"}, "path_prefix"),
    ({"name": "taken"}, "name"),
    ({"upstream_url": "ftp://h/x"}, "upstream_url"),
    ({"methods": '["GET", "BREW"]'}, "methods"),
    ({"methods": "[]"}, "methods"),
    ({"methods": '"GET"'}, "methods"),
    ({"methods": "[GET"}, "methods"),
    ({"methods": '["\\ud800"]'}, "methods"),  # a lone surrogate: redisplayed escaped
    ({"auth": "maybe"}, "auth"),
    ({"auth": "none"}, "required_roles"),
    ({"required_roles": '["\\ud800"]'}, "required_roles"),
    ({"rate_limit_requests": "5"}, "rate_limit_requests"),
    (
        {
            "auth": "none",
            "required_roles": "[]",
            "rate_limit_requests": "5",
            "rate_limit_window_seconds": "60",
            "rate_limit_key": "user",
        },
        "rate_limit_requests",
    ),
    ({"rate_limit_key": "everyone"}, "rate_limit_key"),
    ({"timeout_ms": "0"}, "timeout_ms"),
    ({"timeout_ms": "99999999999"}, "timeout_ms"),
    ({"retries": "-1"}, "retries"),
    ({"retries": "40000"}, "retries"),
    ({"cache_ttl_seconds": "86401"}, "cache_ttl_seconds"),
    ({"failure_threshold": "0"}, "failure_threshold"),
    ({"recovery_seconds": "abc"}, "recovery_seconds"),
    ({"path_prefix": "//"}, "path_prefix"),  # once normalised to `/`, a catch-all
    ({"path_prefix": "/orders//"}, "path_prefix"),
    ({"upstream_url": "http://127.0.0.1:9/h%00"}, "upstream_url"),
    ({"upstream_url": "http://0x7f.1/"}, "upstream_url"),
    # Digits the REST API refuses (`JSONInteger`), which Django's `int()` read as 1000, 1, 12...
    ({"timeout_ms": "\uff11\uff10\uff10\uff10"}, "timeout_ms"),  # full-width
    ({"timeout_ms": "1_000"}, "timeout_ms"),
    ({"timeout_ms": "1000.0"}, "timeout_ms"),
    ({"retries": "\u0661"}, "retries"),  # Arabic-Indic
    ({"cache_ttl_seconds": "\uff11\uff12"}, "cache_ttl_seconds"),
    ({"failure_threshold": "\u0661\u0662"}, "failure_threshold"),
    ({"recovery_seconds": "\uff13\uff10"}, "recovery_seconds"),
    *(
        (
            {
                "rate_limit_requests": "5",
                "rate_limit_window_seconds": "60",
                "rate_limit_key": "ip",
                field: "\uff11\uff12",
            },
            field,
        )
        for field in ("rate_limit_requests", "rate_limit_window_seconds")
    ),
]


@pytest.mark.parametrize(
    ("page", "changes", "field"),
    [
        (page, changes, field)
        for page in ("add", "change")
        for changes, field in INVALID_FORMS
        if page == "add" or field != "name"  # a stored route's name is read-only (below)
    ],
)
def test_an_invalid_route_is_a_form_error_in_the_admin_and_nothing_is_written(
    admin_client, page, changes, field
):
    taken = _stored_route(name="taken", path_prefix="/taken")
    if page == "change":
        row = _stored_route(name="orders", path_prefix="/orders")
        url = f"{CHANGELIST}{row.pk}/change/"
    else:
        url = ADD
    stored = {r.name: (r.path_prefix, r.updated_at) for r in RouteRow.objects.using("gateway")}
    answer = admin_client.post(url, route_form(**changes))
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert field in errors, errors
    assert stored == {
        r.name: (r.path_prefix, r.updated_at) for r in RouteRow.objects.using("gateway")
    }
    assert taken.name in stored


def test_a_routes_name_cannot_change_in_the_admin_as_over_the_api(admin_client):
    """A route's name is its identity (its circuit, rate-limit windows, cache entries, metric
    series and status are kept under it): the REST API refuses a rename, and the admin's change
    form shows the name read-only. A new name is a new route."""
    row = _stored_route()
    change = f"{CHANGELIST}{row.pk}/change/"
    assert b'name="name"' not in admin_client.get(change).content
    assert b'name="name"' in admin_client.get(ADD).content
    answer = admin_client.post(change, route_form(name="renamed", timeout_ms="900"))
    assert answer.status_code == 302, answer.content.decode()[:3000]
    [stored] = RouteRow.objects.using("gateway").all()
    assert (stored.name, stored.timeout_ms) == ("orders", 900)


def test_the_delete_selected_action_removes_routes_as_the_api_would(
    admin_client, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from apps.gateway import wiring
    from apps.gateway.route_table import VERSION_KEY
    from core.domain.gateway.breaker import CircuitState
    from core.domain.gateway.route import BreakerPolicy

    rows = [_stored_route(name=name, path_prefix=f"/{name}") for name in ("one", "two", "kept")]
    breaker = wiring.state().breaker
    breaker.record("one", BreakerPolicy(1, 3600), 1.0, success=False, probe=False)
    assert wiring.state().routes.current().match("/one/x").name == "one"
    before = cache.get(VERSION_KEY)
    with django_capture_on_commit_callbacks(using="gateway", execute=True):
        answer = admin_client.post(
            CHANGELIST,
            {
                "action": "delete_selected",
                "_selected_action": [rows[0].pk, rows[1].pk],
                "post": "yes",
            },
        )
    assert answer.status_code == 302
    assert [r.name for r in RouteRow.objects.using("gateway").all()] == ["kept"]
    assert cache.get(VERSION_KEY) != before
    table = wiring.state().routes.current()
    assert (table.match("/one/x"), table.match("/two/x")) == (None, None)
    assert table.match("/kept/x").name == "kept"
    assert breaker.snapshot("one").state is CircuitState.CLOSED
