"""Routes API under concurrent writes (real PostgreSQL): a lost race answers like the sequential
conflict (409, 404), never 500, and a route removed meanwhile is not brought back.

The interleaving is made by PostgreSQL itself, not by patching: the test holds a lock in its
own transaction so that the API requests pass their checks and then wait at their write; it
lets them go once it sees them waiting (`pg_blocking_pids`), and the writes collide for real.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import connections, transaction
from rest_framework.test import APIClient

from apps.gateway.repositories import DB, DjangoRouteRepository
from core.usecases.gateway.ports import RouteWrite
from tests.factories.gateway import route
from tests.factories.tokens import access_token
from tests.integration.races import (
    blocked_by_me,
    in_thread,
    lock_waiters,
    lose_to_a_vanishing_winner,
    poll,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "gateway"])

ROUTES = "/api/v1/gateway/routes"


def _wait_until_blocked_by_me(cursor, sessions: int) -> None:
    """Until `sessions` requests wait for this transaction's locks (at their write)."""
    poll(
        lambda: len(blocked_by_me(cursor)) >= sessions,
        f"{sessions} requests never reached their write",
    )


def _admin() -> APIClient:
    client = APIClient(raise_request_exception=False)  # a 500 is an answer to assert on
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(roles=('admin',))}")
    return client


def _problem(response) -> tuple[int, str, dict]:
    body = response.json()
    return response.status_code, body["code"], body.get("errors", {})


def _body(name: str, prefix: str) -> dict:
    return {"name": name, "path_prefix": prefix, "upstream_url": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        (_body("orders", "/orders"), _body("orders", "/orders-2"), "route_name_taken"),
        (_body("orders", "/orders"), _body("orders-2", "/orders"), "route_prefix_taken"),
    ],
    ids=["same-name", "same-prefix"],
)
def test_two_concurrent_creates_give_201_and_the_sequential_409(first, second, code):
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        # Reads go on, inserts wait: both requests pass their uniqueness checks, then queue.
        cursor.execute("LOCK TABLE gateway_route IN SHARE MODE")
        racers = [
            in_thread(lambda body=body: _admin().post(ROUTES, body, format="json"))
            for body in (first, second)
        ]
        _wait_until_blocked_by_me(cursor, 2)
    for thread, _ in racers:
        thread.join(timeout=30)
    answers = sorted((a for _, answers in racers for a in answers), key=lambda a: a.status_code)
    assert [a.status_code for a in answers] == [201, 409], [a.content for a in answers]

    loser = second if answers[0].json()["name"] == first["name"] else first
    sequential = _admin().post(ROUTES, loser, format="json")
    assert _problem(sequential)[1] == code
    assert _problem(answers[1]) == _problem(sequential)
    assert [r.name for r in DjangoRouteRepository().all()] == [answers[0].json()["name"]]


def test_two_concurrent_changes_to_one_prefix_give_200_and_the_sequential_409():
    repository = DjangoRouteRepository()
    assert repository.add(route(name="a", path_prefix="/a")) is RouteWrite.DONE
    assert repository.add(route(name="b", path_prefix="/b")) is RouteWrite.DONE
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        cursor.execute("LOCK TABLE gateway_route IN SHARE MODE")
        racers = [
            in_thread(
                lambda name=name: _admin().patch(
                    f"{ROUTES}/{name}", {"path_prefix": "/x"}, format="json"
                )
            )
            for name in ("a", "b")
        ]
        _wait_until_blocked_by_me(cursor, 2)
    for thread, _ in racers:
        thread.join(timeout=30)
    answers = sorted((a for _, answers in racers for a in answers), key=lambda a: a.status_code)
    assert [a.status_code for a in answers] == [200, 409], [a.content for a in answers]

    loser = "b" if answers[0].json()["name"] == "a" else "a"
    sequential = _admin().patch(f"{ROUTES}/{loser}", {"path_prefix": "/x"}, format="json")
    assert _problem(sequential)[1] == "route_prefix_taken"
    assert _problem(answers[1]) == _problem(sequential)


def test_a_change_racing_a_removal_answers_404_and_does_not_bring_the_route_back():
    repository = DjangoRouteRepository()
    assert repository.add(route(name="orders", path_prefix="/orders")) is RouteWrite.DONE
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        # The removal is not committed yet: the change still reads the route, then waits for
        # the row lock and finds the row gone once the removal commits.
        assert repository.delete("orders")
        thread, answers = in_thread(
            lambda: _admin().patch(f"{ROUTES}/orders", {"timeout_ms": 900}, format="json")
        )
        _wait_until_blocked_by_me(cursor, 1)
    thread.join(timeout=30)
    [changed] = answers
    unknown = _admin().patch(f"{ROUTES}/never-was", {"timeout_ms": 900}, format="json")
    assert _problem(unknown) == (404, "route_not_found", {})
    assert _problem(changed) == _problem(unknown), changed.content
    assert repository.get("orders") is None
    assert _admin().get(f"{ROUTES}/orders").status_code == 404


def test_concurrent_changes_of_different_fields_all_hold():
    # One after the other, each would change its own field and keep the others': each must
    # merge into the route as the others left it, not as they all found it.
    repository = DjangoRouteRepository()
    assert repository.add(route(name="orders", path_prefix="/orders")) is RouteWrite.DONE
    changes = ({"timeout_ms": 1234}, {"retries": 2}, {"cache_ttl_seconds": 7})
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        cursor.execute("SELECT 1 FROM gateway_route WHERE name = 'orders' FOR UPDATE")
        racers = [
            in_thread(
                lambda change=change: _admin().patch(f"{ROUTES}/orders", change, format="json")
            )
            for change in changes
        ]
        poll(lambda: lock_waiters(cursor) >= len(changes), "the changes never queued")
    for thread, _ in racers:
        thread.join(timeout=30)
    answers = [answer for _, answered in racers for answer in answered]
    assert [a.status_code for a in answers] == [200] * len(changes), [a.content for a in answers]
    stored = repository.get("orders")
    assert (stored.timeout_ms, stored.retries, stored.cache_ttl_seconds) == (1234, 2, 7)
    assert stored == replace(route(name="orders"), timeout_ms=1234, retries=2, cache_ttl_seconds=7)


def test_a_change_waiting_while_the_route_is_removed_and_created_again_changes_the_new_one():
    repository = DjangoRouteRepository()
    assert repository.add(route(name="orders", path_prefix="/orders")) is RouteWrite.DONE
    again = route(name="orders", path_prefix="/orders", upstream_url="http://127.0.0.1:8/")
    with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
        # Reads go on, locking reads and writes wait: the change reads what it likes, then
        # queues until the route is removed and created again.
        cursor.execute("LOCK TABLE gateway_route IN EXCLUSIVE MODE")
        thread, answers = in_thread(
            lambda: _admin().patch(f"{ROUTES}/orders", {"retries": 2}, format="json")
        )
        _wait_until_blocked_by_me(cursor, 1)
        assert repository.delete("orders")
        assert repository.add(replace(again, timeout_ms=7000)) is RouteWrite.DONE
    thread.join(timeout=30)
    [changed] = answers
    assert changed.status_code == 200, changed.content
    assert repository.all() == [replace(again, timeout_ms=7000, retries=2)]
    assert changed.json()["upstream_url"] == "http://127.0.0.1:8/"


@pytest.mark.parametrize(
    ("winner", "code", "field"),
    [
        (route(name="orders", path_prefix="/winner"), "route_name_taken", "name"),
        (route(name="winner", path_prefix="/orders"), "route_prefix_taken", "path_prefix"),
    ],
    ids=["name", "prefix"],
)
def test_a_create_that_lost_to_a_route_removed_at_once_is_still_the_409(winner, code, field):
    # The unique index refused the create for the winner, which was then removed before the
    # create could look: it still lost the race (it used to re-raise: a 500).
    repository = DjangoRouteRepository()
    answers = lose_to_a_vanishing_winner(
        DB,
        "gateway_route",
        win=lambda: repository.add(winner),
        race=lambda: _admin().post(ROUTES, _body("orders", "/orders"), format="json"),
        vanish=lambda: repository.delete(winner.name),
    )
    [created] = answers
    assert _problem(created) == (
        409,
        code,
        {field: ["Another route took it meanwhile; try again."]},
    ), created.content
    assert repository.all() == []


def test_a_prefix_change_that_lost_to_a_route_removed_at_once_is_the_409():
    repository = DjangoRouteRepository()
    assert repository.add(route(name="orders", path_prefix="/orders")) is RouteWrite.DONE
    answers = lose_to_a_vanishing_winner(
        DB,
        "gateway_route",
        win=lambda: repository.add(route(name="winner", path_prefix="/x")),
        race=lambda: _admin().patch(f"{ROUTES}/orders", {"path_prefix": "/x"}, format="json"),
        vanish=lambda: repository.delete("winner"),
    )
    [changed] = answers
    assert _problem(changed)[:2] == (409, "route_prefix_taken"), changed.content
    assert [(r.name, r.path_prefix) for r in repository.all()] == [("orders", "/orders")]
