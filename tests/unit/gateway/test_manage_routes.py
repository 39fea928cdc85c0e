"""Route administration use cases: validation, uniqueness, change notifications."""

from dataclasses import replace

import pytest

from core.domain.gateway.breaker import Admission, Circuit, CircuitState
from core.domain.gateway.route import (
    BreakerPatch,
    BreakerPolicy,
    LimitKey,
    RateLimitPatch,
    RateLimitPolicy,
    Route,
)
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.errors import RouteError
from core.usecases.gateway.manage_routes import (
    AnnounceSavedRoutes,
    CreateRoute,
    DeleteRoute,
    Ensured,
    EnsureRoute,
    GetRoute,
    ListRoutes,
    RemoveRateLimit,
    RouteChanges,
    RouteRejected,
    SavedRoute,
    UpdateRoute,
)
from core.usecases.gateway.ports import RouteWrite
from core.usecases.gateway.route_status import CircuitStatus, GetCircuitStatus, GetRouteStatus
from tests.fakes.clock import FakeClock
from tests.fakes.gateway import (
    FakeCircuitBreaker,
    FakeNotifier,
    FakeTrafficStats,
    InMemoryRouteRepository,
)
from tests.fakes.transactions import FakeUnitOfWork

ORDERS = Route("orders", "/orders", "http://svc")


def _update(repo, **collaborators):
    """An `UpdateRoute` on `repo`, with fakes for the collaborators not given."""
    collaborators.setdefault("notifier", FakeNotifier())
    collaborators.setdefault("breaker", FakeCircuitBreaker())
    collaborators.setdefault("uow", FakeUnitOfWork())
    return UpdateRoute(routes=repo, **collaborators)


def test_create_normalises_the_prefix_saves_and_notifies():
    repo, notifier = InMemoryRouteRepository(), FakeNotifier()
    result = CreateRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker()).execute(
        replace(ORDERS, path_prefix="/orders/")
    )
    assert result == Ok(ORDERS)
    assert repo.get("orders") == ORDERS
    assert notifier.changes == 1


def test_create_refuses_invalid_duplicate_names_and_taken_prefixes():
    repo, notifier = InMemoryRouteRepository(ORDERS), FakeNotifier()
    create = CreateRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker())
    invalid = create.execute(replace(ORDERS, name="x y", upstream_url="ftp://x"))
    assert invalid.error.error is RouteError.INVALID
    assert set(invalid.error.errors) == {"name", "upstream_url"}
    assert create.execute(ORDERS).error.error is RouteError.NAME_TAKEN
    assert create.execute(replace(ORDERS, name="other")).error.error is RouteError.PREFIX_TAKEN
    assert notifier.changes == 0


def test_update_changes_fields_keeps_the_name_and_checks_the_result():
    repo, notifier = InMemoryRouteRepository(ORDERS, Route("b", "/b", "http://b")), FakeNotifier()
    update = _update(repo, notifier=notifier)
    changed = update.execute("orders", RouteChanges(timeout_ms=900, path_prefix="/o2/"))
    assert isinstance(changed, Ok)
    assert changed.value.path_prefix == "/o2"
    assert repo.get("orders").timeout_ms == 900
    assert notifier.changes == 1
    assert (
        update.execute("orders", RouteChanges(path_prefix="/b")).error.error
        is RouteError.PREFIX_TAKEN
    )
    assert update.execute("orders", RouteChanges(timeout_ms=0)).error.error is RouteError.INVALID
    assert update.execute("orders", RouteChanges(name="x")).error.errors == {
        "name": ["A route's name cannot change; create a new route instead."]
    }
    assert isinstance(update.execute("orders", RouteChanges(name="orders", retries=1)), Ok)
    assert update.execute("nope", RouteChanges()).error.error is RouteError.NOT_FOUND


@pytest.mark.parametrize(
    "changes",
    [RouteChanges(), RouteChanges(name="orders", path_prefix="/orders/", timeout_ms=5000)],
    ids=["nothing", "the same values"],
)
def test_an_update_that_changes_nothing_writes_nothing(changes):
    repo, notifier, breaker = InMemoryRouteRepository(ORDERS), FakeNotifier(), FakeCircuitBreaker()
    breaker.circuits["orders"] = Circuit(CircuitState.OPEN, failures=5, opened_at=1.0)
    update = _update(repo, notifier=notifier, breaker=breaker)
    assert update.execute("orders", changes) == Ok(ORDERS)
    assert (repo.writes, notifier.changes) == (0, 0)
    assert breaker.circuits["orders"].state is CircuitState.OPEN


def test_update_merges_nested_policies_and_tells_a_kept_limit_from_a_removed_one():
    limited = replace(ORDERS, rate_limit=RateLimitPolicy(10, 60, LimitKey.IP))
    update = _update(InMemoryRouteRepository(limited), notifier=FakeNotifier())
    kept = update.execute("orders", RouteChanges(circuit_breaker=BreakerPatch(recovery_seconds=7)))
    assert kept.unwrap().rate_limit == RateLimitPolicy(10, 60, LimitKey.IP)
    assert kept.unwrap().circuit_breaker == BreakerPolicy(5, 7)
    merged = update.execute("orders", RouteChanges(rate_limit=RateLimitPatch(requests=9)))
    assert merged.unwrap().rate_limit == RateLimitPolicy(9, 60, LimitKey.IP)
    removed = update.execute("orders", RouteChanges(rate_limit=RemoveRateLimit()))
    assert removed.unwrap().rate_limit is None
    incomplete = update.execute("orders", RouteChanges(rate_limit=RateLimitPatch(requests=5)))
    assert incomplete.error.errors == {
        "rate_limit.window_seconds": ["Required for a route with no limit yet."]
    }


def test_read_list_and_delete():
    repo, notifier = InMemoryRouteRepository(Route("z", "/z", "http://z"), ORDERS), FakeNotifier()
    assert [r.name for r in ListRoutes(routes=repo).execute()] == ["orders", "z"]
    assert GetRoute(routes=repo).execute("orders") == Ok(ORDERS)
    assert GetRoute(routes=repo).execute("nope").error.error is RouteError.NOT_FOUND
    delete = DeleteRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker())
    assert delete.execute("orders") == Ok(None)
    assert notifier.changes == 1
    assert isinstance(delete.execute("orders"), Err)


OPEN = Circuit(CircuitState.OPEN, 5, opened_at=1.0)


def test_a_new_removed_or_re_pointed_route_starts_with_a_closed_circuit():
    repo, notifier, breaker = InMemoryRouteRepository(), FakeNotifier(), FakeCircuitBreaker()
    breaker.circuits["orders"] = OPEN  # left by an earlier route of that name
    assert CreateRoute(routes=repo, notifier=notifier, breaker=breaker).execute(ORDERS).is_ok()
    assert "orders" not in breaker.circuits
    update = _update(repo, notifier=notifier, breaker=breaker)
    breaker.circuits["orders"] = OPEN
    assert update.execute("orders", RouteChanges(timeout_ms=900, strip_prefix=False)).is_ok()
    assert breaker.circuits["orders"] == OPEN  # the same upstream: its failures still count
    assert update.execute("orders", RouteChanges(upstream_url="http://replica")).is_ok()
    assert "orders" not in breaker.circuits
    breaker.circuits["orders"] = OPEN
    assert DeleteRoute(routes=repo, notifier=notifier, breaker=breaker).execute("orders").is_ok()
    assert "orders" not in breaker.circuits


def test_refused_changes_leave_the_circuit_alone():
    repo, notifier, breaker = InMemoryRouteRepository(ORDERS), FakeNotifier(), FakeCircuitBreaker()
    breaker.circuits["orders"] = OPEN
    create = CreateRoute(routes=repo, notifier=notifier, breaker=breaker)
    assert create.execute(replace(ORDERS, path_prefix="/o2")).is_err()  # the name is taken
    update = _update(repo, notifier=notifier, breaker=breaker)
    assert update.execute("orders", RouteChanges(upstream_url="ftp://x")).is_err()
    assert DeleteRoute(routes=repo, notifier=notifier, breaker=breaker).execute("x").is_err()
    assert breaker.circuits["orders"] == OPEN


def test_status_reports_the_circuit_and_traffic():
    repo, breaker, clock = InMemoryRouteRepository(ORDERS), FakeCircuitBreaker(), FakeClock()
    status = GetRouteStatus(routes=repo, breaker=breaker, stats=FakeTrafficStats(), clock=clock)
    closed = status.execute("orders").unwrap()
    assert closed.circuit == CircuitStatus(CircuitState.CLOSED, 0, 0.0, None)
    assert closed.traffic.requests_by_status == {"200": 3}
    now = clock.now().timestamp()
    breaker.circuits["orders"] = Circuit(CircuitState.OPEN, 5, opened_at=now - 10)
    opened = status.execute("orders").unwrap()
    assert opened.circuit == CircuitStatus(CircuitState.OPEN, 5, now - 10, 20)
    assert status.execute("nope").error.error is RouteError.NOT_FOUND


def test_status_reads_half_open_once_the_recovery_time_is_over():
    """The breaker lets the next call through as the probe from then on: the status says so
    at the time of the read, though the stored circuit stays open until that call comes."""
    repo, breaker, clock = InMemoryRouteRepository(ORDERS), FakeCircuitBreaker(), FakeClock()
    status = GetRouteStatus(routes=repo, breaker=breaker, stats=FakeTrafficStats(), clock=clock)
    opened_at = clock.now().timestamp()
    breaker.circuits["orders"] = Circuit(CircuitState.OPEN, 5, opened_at=opened_at)
    clock.advance(seconds=29)
    assert status.execute("orders").unwrap().circuit.state is CircuitState.OPEN
    clock.advance(seconds=1)  # ORDERS' recovery_seconds (30) are over
    due = status.execute("orders").unwrap().circuit
    assert due == CircuitStatus(CircuitState.HALF_OPEN, 5, opened_at, 0)
    assert breaker.circuits["orders"].state is CircuitState.OPEN  # reading changed nothing
    now = clock.now().timestamp()
    assert breaker.admit("orders", ORDERS.circuit_breaker, now)[0] is Admission.PROBE
    probing = status.execute("orders").unwrap().circuit
    assert (probing.state, probing.retry_after_seconds) == (CircuitState.HALF_OPEN, 30)


def test_circuit_status_is_the_state_a_call_would_find_now():
    breaker, clock = FakeCircuitBreaker(), FakeClock()
    read = GetCircuitStatus(breaker=breaker, clock=clock)
    policy = ORDERS.circuit_breaker
    assert read.execute("orders", policy).unwrap() == CircuitStatus(
        CircuitState.CLOSED, 0, 0.0, None
    )
    now = clock.now().timestamp()
    breaker.circuits["orders"] = Circuit(CircuitState.OPEN, 2, opened_at=now - 31)
    assert read.execute("orders", policy).unwrap() == CircuitStatus(
        CircuitState.HALF_OPEN, 2, now - 31, 0
    )


@pytest.mark.parametrize(
    ("rival", "sequential"),
    [
        (
            ORDERS,
            RouteRejected(RouteError.NAME_TAKEN, {"name": ["A route with this name exists."]}),
        ),
        (
            replace(ORDERS, name="rival"),
            RouteRejected(
                RouteError.PREFIX_TAKEN, {"path_prefix": ["Route 'rival' already serves it."]}
            ),
        ),
    ],
    ids=["name", "prefix"],
)
def test_a_create_that_loses_a_race_gets_the_answer_of_the_sequential_duplicate(rival, sequential):
    repo, notifier = InMemoryRouteRepository(), FakeNotifier()
    repo.concurrently = lambda routes: routes.routes.update({rival.name: rival})  # won the race
    assert CreateRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker()).execute(
        ORDERS
    ) == Err(sequential)
    assert repo.all() == [rival]
    assert notifier.changes == 0


def test_an_update_racing_a_removal_is_not_found_and_does_not_bring_the_route_back():
    repo, notifier = InMemoryRouteRepository(ORDERS), FakeNotifier()
    repo.concurrently = lambda routes: routes.delete("orders")
    result = _update(repo, notifier=notifier).execute("orders", RouteChanges(timeout_ms=900))
    assert result == Err(RouteRejected(RouteError.NOT_FOUND))
    assert repo.all() == []
    assert notifier.changes == 0


def test_an_update_racing_for_a_prefix_gets_the_answer_of_the_sequential_conflict():
    repo, notifier = InMemoryRouteRepository(ORDERS, Route("b", "/b", "http://b")), FakeNotifier()
    repo.concurrently = lambda routes: routes.routes.update(b=Route("b", "/x", "http://b"))
    result = _update(repo, notifier=notifier).execute("orders", RouteChanges(path_prefix="/x"))
    assert result == Err(
        RouteRejected(RouteError.PREFIX_TAKEN, {"path_prefix": ["Route 'b' already serves it."]})
    )
    assert repo.get("orders") == ORDERS
    assert notifier.changes == 0


def test_an_update_merges_into_the_route_as_stored_under_its_lock_and_commits():
    # Another PATCH committed after this one's lock-free reads, before this one held the row:
    # each keeps the other's change instead of writing back what it read before.
    repo, uow = InMemoryRouteRepository(ORDERS), FakeUnitOfWork()
    repo.concurrently = lambda routes: routes.routes.update(orders=replace(ORDERS, retries=2))
    result = _update(repo, uow=uow).execute("orders", RouteChanges(timeout_ms=1234))
    assert result == Ok(replace(ORDERS, retries=2, timeout_ms=1234))
    assert repo.get("orders") == replace(ORDERS, retries=2, timeout_ms=1234)
    assert (uow.commits, uow.rollbacks) == (1, 0)


def test_an_update_of_a_route_removed_and_created_again_meanwhile_changes_the_new_one():
    again = Route("orders", "/orders", "http://new", timeout_ms=7000, enabled=False)
    repo = InMemoryRouteRepository(ORDERS)
    repo.concurrently = lambda routes: routes.routes.update(orders=again)  # DELETE, then POST
    assert _update(repo).execute("orders", RouteChanges(retries=2)) == Ok(replace(again, retries=2))
    assert repo.all() == [replace(again, retries=2)]  # nothing of the removed route came back


def test_whether_an_update_changes_anything_or_keeps_the_circuit_is_read_under_the_lock():
    # Another PATCH moved the route to the replica (dropping the circuit), whose calls failed
    # since; this PATCH asks for the replica too: nothing to write, and that circuit stays.
    repo, breaker, notifier, uow = (
        InMemoryRouteRepository(ORDERS),
        FakeCircuitBreaker(),
        FakeNotifier(),
        FakeUnitOfWork(),
    )
    moved = replace(ORDERS, upstream_url="http://replica")

    def moved_meanwhile(routes):
        routes.routes["orders"] = moved
        breaker.circuits["orders"] = OPEN

    repo.concurrently = moved_meanwhile
    update = _update(repo, breaker=breaker, notifier=notifier, uow=uow)
    assert update.execute("orders", RouteChanges(upstream_url="http://replica")) == Ok(moved)
    assert breaker.circuits["orders"] == OPEN
    assert (repo.writes, notifier.changes, uow.commits) == (0, 0, 0)


class _Watching:
    """A notifier and a breaker that note whether the unit of work was open when called."""

    def __init__(self, uow):
        self.uow = uow
        self.calls = []

    def routes_changed(self):
        self.calls.append(("routes_changed", self.uow.open, self.uow.commits))

    def forget(self, route):
        self.calls.append(("forget", self.uow.open, self.uow.commits))


def test_an_update_drops_the_circuit_and_tells_the_workers_once_committed():
    uow = FakeUnitOfWork()
    watching = _Watching(uow)
    update = _update(InMemoryRouteRepository(ORDERS), notifier=watching, breaker=watching, uow=uow)
    assert update.execute("orders", RouteChanges(upstream_url="http://replica")).is_ok()
    assert watching.calls == [("forget", False, 1), ("routes_changed", False, 1)]


def test_a_refused_update_commits_nothing():
    repo = InMemoryRouteRepository(ORDERS, Route("b", "/b", "http://b"))
    uow, notifier = FakeUnitOfWork(), FakeNotifier()
    update = _update(repo, uow=uow, notifier=notifier)
    assert update.execute("nope", RouteChanges(retries=1)).error.error is RouteError.NOT_FOUND
    assert update.execute("orders", RouteChanges(timeout_ms=0)).error.error is RouteError.INVALID
    assert update.execute("orders", RouteChanges(name="x")).error.error is RouteError.INVALID
    taken = update.execute("orders", RouteChanges(path_prefix="/b"))
    assert taken.error.error is RouteError.PREFIX_TAKEN
    assert (uow.commits, uow.rollbacks, notifier.changes, repo.writes) == (0, 4, 0, 0)
    assert repo.get("orders") == ORDERS


class _RefusingRouteRepository(InMemoryRouteRepository):
    """A store whose unique index refused the write (`refusal`) for a rival that was removed
    again before the use case could look."""

    refusal = RouteWrite.NAME_TAKEN

    def add(self, route):
        return self.refusal

    def update(self, route):
        return self.refusal


@pytest.mark.parametrize(
    ("refusal", "error", "field"),
    [
        (RouteWrite.NAME_TAKEN, RouteError.NAME_TAKEN, "name"),
        (RouteWrite.PREFIX_TAKEN, RouteError.PREFIX_TAKEN, "path_prefix"),
    ],
    ids=["name", "prefix"],
)
def test_a_create_refused_for_a_rival_gone_again_is_still_that_conflict(refusal, error, field):
    repo, notifier = _RefusingRouteRepository(), FakeNotifier()
    repo.refusal = refusal
    created = CreateRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker()).execute(
        Route("n", "/n", "http://n")
    )
    assert created == Err(
        RouteRejected(error, {field: ["Another route took it meanwhile; try again."]})
    )
    assert notifier.changes == 0


def test_a_change_refused_for_a_rival_gone_again_is_still_a_conflict():
    repo, notifier = _RefusingRouteRepository(ORDERS), FakeNotifier()
    repo.refusal = RouteWrite.PREFIX_TAKEN
    changed = _update(repo, notifier=notifier).execute("orders", RouteChanges(path_prefix="/y"))
    meanwhile = ["Another route took it meanwhile; try again."]
    assert changed == Err(RouteRejected(RouteError.PREFIX_TAKEN, {"path_prefix": meanwhile}))
    assert notifier.changes == 0


def test_a_change_the_store_finds_no_route_for_is_not_found_and_commits_nothing():
    repo, uow = _RefusingRouteRepository(ORDERS), FakeUnitOfWork()
    repo.refusal = RouteWrite.NOT_FOUND
    changed = _update(repo, uow=uow).execute("orders", RouteChanges(retries=1))
    assert changed == Err(RouteRejected(RouteError.NOT_FOUND))
    assert (uow.commits, uow.rollbacks) == (0, 1)


def test_ensure_creates_a_missing_route_once_and_refuses_a_taken_prefix():
    repo, notifier = InMemoryRouteRepository(), FakeNotifier()
    ensure = EnsureRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker())
    assert ensure.execute(replace(ORDERS, path_prefix="/orders/")) == Ok(Ensured(ORDERS, True))
    assert repo.get("orders") == ORDERS
    again = ensure.execute(replace(ORDERS, upstream_url="http://elsewhere"))
    assert again == Ok(Ensured(ORDERS, created=False))  # the route there, as it is
    assert repo.get("orders") == ORDERS  # an existing route is left as it is
    assert notifier.changes == 1
    taken = ensure.execute(replace(ORDERS, name="other"))
    assert taken.error.error is RouteError.PREFIX_TAKEN
    assert ensure.execute(replace(ORDERS, name="x y")).error.error is RouteError.INVALID


def test_ensure_racing_another_seeder_finds_the_route_there():
    repo, notifier = InMemoryRouteRepository(), FakeNotifier()
    repo.concurrently = lambda routes: routes.routes.update(orders=ORDERS)  # the other seeder
    assert EnsureRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker()).execute(
        ORDERS
    ) == Ok(Ensured(ORDERS, created=False))
    assert notifier.changes == 0


def test_ensure_finding_the_name_taken_then_freed_again_reports_the_conflict():
    """The route that held the name was removed between the create and the read: nothing to
    show as present, nothing created; the caller may try again."""

    class Vanishing(InMemoryRouteRepository):
        def get(self, name):
            self.routes.pop(name, None)  # removed by someone else just now
            return super().get(name)

    repo, notifier = Vanishing(ORDERS), FakeNotifier()
    ensured = EnsureRoute(routes=repo, notifier=notifier, breaker=FakeCircuitBreaker()).execute(
        ORDERS
    )
    assert ensured.error.error is RouteError.NAME_TAKEN
    assert notifier.changes == 0


def test_routes_saved_past_the_use_cases_start_fresh_circuits_when_their_upstream_changes():
    breaker, notifier = FakeCircuitBreaker(), FakeNotifier()
    policy = ORDERS.circuit_breaker
    names = ("created", "unchanged", "moved", "removed")
    for name in names:
        breaker.record(name, policy, 1.0, success=False, probe=False)
    saved = [
        SavedRoute("created", None, "http://svc"),
        SavedRoute("unchanged", "http://svc", "http://svc"),
        SavedRoute("moved", "http://svc", "http://replica"),
        SavedRoute("removed", "http://svc", None),
    ]
    assert AnnounceSavedRoutes(notifier=notifier, breaker=breaker).execute(saved) == Ok(None)
    assert [breaker.snapshot(name).failures for name in names] == [0, 1, 0, 0]
    assert notifier.changes == 1  # one announcement for the whole save
