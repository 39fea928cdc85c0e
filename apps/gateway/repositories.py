"""The route repository on the gateway database, and the domain → ORM mapping (`to_row`).

Only this module and admin.py touch the ORM; the rest of the context speaks `Route`: rows are
read by `route_to_domain` (which the admin's validation reads a row by too) and written by
`to_row`.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.common.integrity import unique_field
from apps.gateway.models import RouteRow
from core.domain.gateway.route import (
    AuthMode,
    BreakerPolicy,
    LimitKey,
    RateLimitPolicy,
    Route,
)
from core.usecases.gateway.ports import RouteWrite

DB = "gateway"


def route_to_domain(row: RouteRow) -> Route:
    """A row as the domain's `Route` (a limit needs both its numbers; no key is `ip`). The
    admin's validation (`RouteRow.clean`) reads a row by it too."""
    rate_limit = None
    if row.rate_limit_requests is not None and row.rate_limit_window_seconds is not None:
        rate_limit = RateLimitPolicy(
            requests=row.rate_limit_requests,
            window_seconds=row.rate_limit_window_seconds,
            key=LimitKey(row.rate_limit_key or LimitKey.IP.value),
        )
    return Route(
        name=row.name,
        path_prefix=row.path_prefix,
        upstream_url=row.upstream_url,
        strip_prefix=row.strip_prefix,
        methods=frozenset(str(m).upper() for m in row.methods),
        auth=AuthMode(row.auth),
        required_roles=frozenset(str(r) for r in row.required_roles),
        rate_limit=rate_limit,
        cache_ttl_seconds=row.cache_ttl_seconds,
        timeout_ms=row.timeout_ms,
        retries=row.retries,
        circuit_breaker=BreakerPolicy(row.failure_threshold, row.recovery_seconds),
        enabled=row.enabled,
    )


def to_row(route: Route, row: RouteRow | None = None) -> RouteRow:
    row = row or RouteRow()
    row.name = route.name
    row.path_prefix = route.path_prefix
    row.upstream_url = route.upstream_url
    row.strip_prefix = route.strip_prefix
    row.methods = sorted(route.methods)
    row.auth = route.auth.value
    row.required_roles = sorted(route.required_roles)
    limit = route.rate_limit
    row.rate_limit_requests = limit.requests if limit else None
    row.rate_limit_window_seconds = limit.window_seconds if limit else None
    row.rate_limit_key = limit.key.value if limit else ""
    row.cache_ttl_seconds = route.cache_ttl_seconds
    row.timeout_ms = route.timeout_ms
    row.retries = route.retries
    row.failure_threshold = route.circuit_breaker.failure_threshold
    row.recovery_seconds = route.circuit_breaker.recovery_seconds
    row.enabled = route.enabled
    return row


# The fields whose unique constraint refuses a write that lost a race for its value, however
# the database spells the constraint (`unique_field` reads them from the model).
_FIELD_TAKEN = {"name": RouteWrite.NAME_TAKEN, "path_prefix": RouteWrite.PREFIX_TAKEN}


def _refused_for(error: IntegrityError) -> RouteWrite | None:
    """What a refused write lost the race for; None for a violation that is no lost race."""
    return _FIELD_TAKEN.get(unique_field(error, RouteRow) or "")


class DjangoRouteRepository:
    """`RouteRepository` on the `gateway` database."""

    def _rows(self):  # type: ignore[no-untyped-def]
        return RouteRow.objects.using(DB)

    def all(self) -> list[Route]:
        return [route_to_domain(row) for row in self._rows().all()]

    def enabled(self) -> list[Route]:
        return [route_to_domain(row) for row in self._rows().filter(enabled=True)]

    def get(self, name: str) -> Route | None:
        row = self._rows().filter(name=name).first()
        return route_to_domain(row) if row is not None else None

    def get_for_update(self, name: str) -> Route | None:
        """Locks the route's row until the `DjangoUnitOfWork` it is read in ends (`UpdateRoute`
        reads it so, then writes it with `update`)."""
        row = self._rows().select_for_update().filter(name=name).first()
        return route_to_domain(row) if row is not None else None

    def name_taken(self, name: str) -> bool:
        return self._rows().filter(name=name).exists()

    def prefix_owner(self, prefix: str) -> str | None:
        return self._rows().filter(path_prefix=prefix).values_list("name", flat=True).first()

    def add(self, route: Route) -> RouteWrite:
        try:
            with transaction.atomic(using=DB):  # a savepoint: the outer transaction survives
                to_row(route).save(using=DB, force_insert=True)
        except IntegrityError as error:
            lost = _refused_for(error)
            if lost is None:
                raise  # a broken invariant (a CHECK constraint, ...), not a lost race
            return lost
        return RouteWrite.DONE

    def update(self, route: Route) -> RouteWrite:
        """One UPDATE of the route's row, which the caller has locked (`get_for_update` in its
        unit of work); NOT_FOUND if there is no row of that name (never brought back)."""
        row = to_row(route)
        columns = {
            field.attname: field.pre_save(row, add=False)  # `updated_at` is now
            for field in RouteRow._meta.concrete_fields
            if not field.primary_key and not getattr(field, "auto_now_add", False)
        }
        try:
            # A savepoint: a refused write leaves the caller's transaction usable, and the use
            # case reads again in it to say who took the name or prefix.
            with transaction.atomic(using=DB):
                updated = self._rows().filter(name=route.name).update(**columns)
        except IntegrityError as error:
            lost = _refused_for(error)
            if lost is None:
                raise  # a broken invariant (a CHECK constraint, ...), not a lost race
            return lost
        return RouteWrite.DONE if updated else RouteWrite.NOT_FOUND

    def delete(self, name: str) -> bool:
        deleted, _ = self._rows().filter(name=name).delete()
        return deleted > 0
