"""The gateway's seeder: with `--demo`, a demo route to the platform's own /health."""

from __future__ import annotations

from django.conf import settings

from apps.common.seeding import SeedFailure, SeedOptions
from apps.gateway import wiring
from core.domain.gateway.route import AuthMode, RateLimitPolicy, Route
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.errors import RouteError
from core.usecases.gateway.manage_routes import RouteRejected

DEMO_ROUTE = "demo"


def demo_route() -> Route:
    """`/demo` → this platform's `/health`, works offline; limited and briefly cached."""
    return Route(
        name=DEMO_ROUTE,
        path_prefix="/demo",
        upstream_url=settings.PUBLIC_BASE_URL.rstrip("/") + "/health",
        methods=frozenset({"GET", "HEAD"}),
        auth=AuthMode.OPTIONAL,
        rate_limit=RateLimitPolicy(requests=60, window_seconds=60),
        cache_ttl_seconds=5,
        timeout_ms=2000,
        retries=1,
    )


def seed_gateway(options: SeedOptions) -> list[str]:
    """With `--demo`, the demo route. The route named `demo` is the demo route, as an operator
    may have changed it: kept as it is (seeding twice succeeds). A demo route that cannot be
    added (`/demo` served by another route) is a failure, so `seed` exits non-zero."""
    if not options.demo:
        return []
    route = demo_route()
    match wiring.ensure_route().execute(route):
        case Ok(ensured) if ensured.created:
            return [f"demo route {route.name!r}: {route.path_prefix} -> {route.upstream_url}"]
        case Ok(ensured):
            there = ensured.route
            return [
                f"demo route {route.name!r} already present: "
                f"{there.path_prefix} -> {there.upstream_url}"
            ]
        case Err(rejected):
            return [SeedFailure(f"demo route not added {_reasons(rejected)}")]
    raise AssertionError("unreachable")  # pragma: no cover


def _reasons(rejected: RouteRejected) -> str:
    """`(code): field: message ...`, and what the operator can do about a taken prefix."""
    messages = " ".join(
        f"{field}: {message}" for field, found in rejected.errors.items() for message in found
    )
    said = f"({rejected.error.value}): {messages}".rstrip(": ")
    if rejected.error is RouteError.PREFIX_TAKEN:
        said += " Move or remove that route, or seed without --demo."
    return said
