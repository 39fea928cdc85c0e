"""The gateway's seeder: with `--demo`, a demo route to the platform's own /health."""

from __future__ import annotations

from django.conf import settings

from apps.common.seeding import SeedOptions
from apps.gateway import wiring
from core.domain.gateway.route import AuthMode, RateLimitPolicy, Route
from core.domain.shared.result import Err, Ok

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
    if not options.demo:
        return []
    route = demo_route()
    match wiring.ensure_route().execute(route):
        case Ok(True):
            return [f"demo route {route.name!r}: {route.path_prefix} -> {route.upstream_url}"]
        case Ok(False):
            return [f"demo route {route.name!r} already present"]
        case Err(rejected):
            return [f"demo route not added: {rejected.error.value} {rejected.errors}"]
    raise AssertionError("unreachable")  # pragma: no cover
