"""The aggregation seeder: with `--demo`, a demo composite over the platform's own endpoints.

It works offline on a fresh machine: its sources are this server's public health endpoints
(`AGGREGATION_DEMO_BASE_URL`), so `make run SEED_ARGS=--demo` shows a composite at once.
"""

from __future__ import annotations

from django.conf import settings

from apps.aggregation import wiring
from apps.common.seeding import SeedFailure, SeedOptions
from core.domain.aggregation.composite import AuthMode, Composite, Source
from core.domain.shared.result import Err, Ok

DEMO_NAME = "demo"


def demo_composite(base_url: str) -> Composite:
    return Composite(
        name=DEMO_NAME,
        description="Demo: the platform's liveness and readiness in one answer.",
        auth=AuthMode.NONE,
        cache_ttl_seconds=5,
        timeout_ms=2000,
        sources=(
            Source(key="health", url=f"{base_url}/health", timeout_ms=1000),
            Source(
                key="readiness",
                url=f"{base_url}/health/ready",
                timeout_ms=1500,
                required=False,
                fields=("status",),
                rename={"status": "state"},
            ),
            Source(
                key="api",
                url=f"{base_url}/api/schema/?format=json",
                timeout_ms=2000,
                required=False,
                fields=("info", "openapi"),
                rename={"openapi": "openapi_version"},
            ),
        ),
    )


def seed(options: SeedOptions) -> list[str]:
    if not options.demo:
        return []
    base_url = settings.AGGREGATION_DEMO_BASE_URL
    match wiring.ensure_composite().execute(demo_composite(base_url)):
        case Ok(True):
            return [f"Created the demo composite '{DEMO_NAME}'."]
        case Ok(False):
            return [f"The demo composite '{DEMO_NAME}' already exists."]
        case Err(error):  # a demo base URL the composite rules refuse (it is configurable)
            return [
                SeedFailure(
                    f"Could not create the demo composite ({error.value}): its sources are "
                    f"under AGGREGATION_DEMO_BASE_URL, {base_url!r}."
                )
            ]
    raise AssertionError("unreachable")  # pragma: no cover
