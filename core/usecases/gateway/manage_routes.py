"""Route administration: list, read, create (or ensure), change and remove routes.

Every change is validated by the domain's rules and announced to every worker. A route that is
created, removed or sent to another upstream starts with a closed circuit: the state of the
circuit it had (or an earlier route of its name had) was about another upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from core.domain.gateway.route import (
    AuthMode,
    BreakerPatch,
    RateLimitPatch,
    RateLimitPolicy,
    Route,
    normalise_prefix,
    route_problems,
)
from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.errors import RouteError
from core.usecases.gateway.ports import (
    CircuitBreaker,
    RouteChangeNotifier,
    RouteRepository,
    RouteWrite,
)
from core.usecases.shared.ports import UnitOfWork

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RemoveRateLimit:
    """A change's `rate_limit: null`: the route is left with no rate limit."""


@dataclass(frozen=True, slots=True)
class RouteChanges:
    """What a change (a PATCH) sets; None leaves a field as it is. Nested policies are patches
    merged into the current ones (RFC 7396). `name` may only repeat the route's own."""

    name: str | None = None
    path_prefix: str | None = None
    upstream_url: str | None = None
    strip_prefix: bool | None = None
    methods: frozenset[str] | None = None
    auth: AuthMode | None = None
    required_roles: frozenset[str] | None = None
    rate_limit: RateLimitPatch | RemoveRateLimit | None = None
    cache_ttl_seconds: int | None = None
    timeout_ms: int | None = None
    retries: int | None = None
    circuit_breaker: BreakerPatch | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class RouteRejected:
    """A refused change: the code and, for `validation_error`, the field errors."""

    error: RouteError
    errors: dict[str, list[str]] = field(default_factory=dict)


class ListRoutes:
    """Every route, enabled or not, by name."""

    def __init__(self, *, routes: RouteRepository) -> None:
        self._routes = routes

    def execute(self) -> list[Route]:
        return sorted(self._routes.all(), key=lambda route: route.name)


class GetRoute:
    """One route by name."""

    def __init__(self, *, routes: RouteRepository) -> None:
        self._routes = routes

    def execute(self, name: str) -> Result[Route, RouteRejected]:
        route = self._routes.get(name)
        return Ok(route) if route is not None else Err(RouteRejected(RouteError.NOT_FOUND))


def _checked(
    routes: RouteRepository, route: Route, *, replacing: str | None
) -> RouteRejected | None:
    problems = route_problems(route)
    if problems:
        return RouteRejected(RouteError.INVALID, problems)
    if replacing is None and routes.name_taken(route.name):
        return RouteRejected(RouteError.NAME_TAKEN, {"name": ["A route with this name exists."]})
    owner = routes.prefix_owner(route.path_prefix)
    if owner is not None and owner != replacing:
        return RouteRejected(
            RouteError.PREFIX_TAKEN, {"path_prefix": [f"Route {owner!r} already serves it."]}
        )
    return None


def _taken_meanwhile(error: RouteError, field: str) -> RouteRejected:
    # A write refused for a conflict that is gone again when the use case looks (the route that
    # took the name or prefix was removed at once): still a conflict, with no owner to name.
    return RouteRejected(error, {field: ["Another route took it meanwhile; try again."]})


_TAKEN = {
    RouteWrite.NAME_TAKEN: (RouteError.NAME_TAKEN, "name"),
    RouteWrite.PREFIX_TAKEN: (RouteError.PREFIX_TAKEN, "path_prefix"),
}


def _lost_race(
    routes: RouteRepository, route: Route, written: RouteWrite, *, replacing: str | None
) -> RouteRejected:
    """A write the store refused after the checks passed (a concurrent write came first): the
    same answer as if this one had come second, whether or not the winner is still there."""
    if written is RouteWrite.NOT_FOUND:  # removed meanwhile: never brought back
        return RouteRejected(RouteError.NOT_FOUND)
    error, field = _TAKEN[written]
    return _checked(routes, route, replacing=replacing) or _taken_meanwhile(error, field)


class CreateRoute:
    """Adds a route; every worker serves it within a second."""

    def __init__(
        self, *, routes: RouteRepository, notifier: RouteChangeNotifier, breaker: CircuitBreaker
    ) -> None:
        self._routes = routes
        self._notifier = notifier
        self._breaker = breaker

    def execute(self, route: Route) -> Result[Route, RouteRejected]:
        route = replace(route, path_prefix=normalise_prefix(route.path_prefix))
        rejected = _checked(self._routes, route, replacing=None)
        if rejected is not None:
            return Err(rejected)
        written = self._routes.add(route)  # a concurrent create may take the name or prefix
        if written is not RouteWrite.DONE:
            return Err(_lost_race(self._routes, route, written, replacing=None))
        self._breaker.forget(route.name)  # left by a removed route of this name, if any
        self._notifier.routes_changed()
        return Ok(route)


@dataclass(frozen=True, slots=True)
class Ensured:
    """The route of that name as it now stands, and whether this call created it."""

    route: Route
    created: bool


class EnsureRoute:
    """Creates a route unless one of that name exists (idempotent seeding): the route of that
    name is left as it is, however it differs from the one given."""

    def __init__(
        self, *, routes: RouteRepository, notifier: RouteChangeNotifier, breaker: CircuitBreaker
    ) -> None:
        self._routes = routes
        self._create = CreateRoute(routes=routes, notifier=notifier, breaker=breaker)

    def execute(self, route: Route) -> Result[Ensured, RouteRejected]:
        """Ok(created) when added, Ok(the route there, not created) when the name was taken."""
        match self._create.execute(route):
            case Ok(created):
                return Ok(Ensured(created, created=True))
            case Err(RouteRejected(error=RouteError.NAME_TAKEN)):
                there = self._routes.get(route.name)
                if there is None:  # removed again meanwhile
                    return Err(_taken_meanwhile(RouteError.NAME_TAKEN, "name"))
                return Ok(Ensured(there, created=False))
            case Err(rejected):
                return Err(rejected)
        raise AssertionError("unreachable")  # pragma: no cover


class UpdateRoute:
    """Changes some fields of a route. Its name is its identity: giving the current one is
    allowed, giving another is refused (a rename is a new route and the removal of this one).

    The changes are merged into the route as stored, locked until they are written: changes
    made at once end as if one had come after the other, none undoing another, and a route
    removed and created again meanwhile is changed as it now is. Workers are told (and the
    circuit dropped) once it is committed.
    """

    def __init__(
        self,
        *,
        routes: RouteRepository,
        notifier: RouteChangeNotifier,
        breaker: CircuitBreaker,
        uow: UnitOfWork,
    ) -> None:
        self._routes = routes
        self._notifier = notifier
        self._breaker = breaker
        self._uow = uow

    def execute(self, name: str, changes: RouteChanges) -> Result[Route, RouteRejected]:
        with self._uow:
            current = self._routes.get_for_update(name)
            if current is None:
                return Err(RouteRejected(RouteError.NOT_FOUND))
            if changes.name not in (None, name):
                return Err(
                    RouteRejected(
                        RouteError.INVALID,
                        {"name": ["A route's name cannot change; create a new route instead."]},
                    )
                )
            updated = _changed(current, changes)
            if isinstance(updated, RouteRejected):
                return Err(updated)
            if updated == current:
                return Ok(current)  # nothing to write, and no worker needs to reload its table
            rejected = _checked(self._routes, updated, replacing=name)
            if rejected is not None:
                return Err(rejected)
            written = self._routes.update(updated)  # a concurrent write may take the new prefix
            if written is not RouteWrite.DONE:
                return Err(_lost_race(self._routes, updated, written, replacing=name))
            self._uow.commit()
        if updated.upstream_url != current.upstream_url:
            self._breaker.forget(name)  # the old upstream's failures say nothing of the new one
        self._notifier.routes_changed()
        return Ok(updated)


def _changed(current: Route, changes: RouteChanges) -> Route | RouteRejected:
    """`current` with the changes; a rate limit added to a route with none needs its fields."""
    rate_limit: RateLimitPolicy | None
    match changes.rate_limit:
        case None:
            rate_limit = current.rate_limit
        case RemoveRateLimit():
            rate_limit = None
        case RateLimitPatch() as patch:
            applied = patch.applied_to(current.rate_limit)
            if isinstance(applied, list):
                return RouteRejected(
                    RouteError.INVALID,
                    {
                        f"rate_limit.{name}": ["Required for a route with no limit yet."]
                        for name in applied
                    },
                )
            rate_limit = applied
    return replace(
        current,
        path_prefix=normalise_prefix(_given(changes.path_prefix, current.path_prefix)),
        upstream_url=_given(changes.upstream_url, current.upstream_url),
        strip_prefix=_given(changes.strip_prefix, current.strip_prefix),
        methods=_given(changes.methods, current.methods),
        auth=_given(changes.auth, current.auth),
        required_roles=_given(changes.required_roles, current.required_roles),
        rate_limit=rate_limit,
        cache_ttl_seconds=_given(changes.cache_ttl_seconds, current.cache_ttl_seconds),
        timeout_ms=_given(changes.timeout_ms, current.timeout_ms),
        retries=_given(changes.retries, current.retries),
        circuit_breaker=(
            current.circuit_breaker
            if changes.circuit_breaker is None
            else changes.circuit_breaker.applied_to(current.circuit_breaker)
        ),
        enabled=_given(changes.enabled, current.enabled),
    )


def _given(change: T | None, current: T) -> T:
    return current if change is None else change


class DeleteRoute:
    """Removes a route; its prefix answers `route_not_found` within a second."""

    def __init__(
        self, *, routes: RouteRepository, notifier: RouteChangeNotifier, breaker: CircuitBreaker
    ) -> None:
        self._routes = routes
        self._notifier = notifier
        self._breaker = breaker

    def execute(self, name: str) -> Result[None, RouteRejected]:
        if not self._routes.delete(name):
            return Err(RouteRejected(RouteError.NOT_FOUND))
        self._breaker.forget(name)
        self._notifier.routes_changed()
        return Ok(None)


@dataclass(frozen=True, slots=True)
class SavedRoute:
    """A route saved past the use cases above: its upstream before and after the save (None:
    the route did not exist yet, or no longer exists)."""

    name: str
    upstream_before: str | None
    upstream_after: str | None


class AnnounceSavedRoutes:
    """What follows a change saved past the use cases above (the Django admin saves through
    the ORM), as they do it: a route created, removed or sent to another upstream starts with
    a closed circuit, and every worker is told."""

    def __init__(self, *, notifier: RouteChangeNotifier, breaker: CircuitBreaker) -> None:
        self._notifier = notifier
        self._breaker = breaker

    def execute(self, saved: Iterable[SavedRoute]) -> Result[None, None]:
        for route in saved:
            if route.upstream_before != route.upstream_after:
                self._breaker.forget(route.name)
        self._notifier.routes_changed()
        return Ok(None)
