"""A registry of seeders, so `manage.py seed` can seed every context without importing them.

Each context registers a function in its `AppConfig.ready()`; the function calls that context's
use cases (through its `wiring.py`) and returns human-readable lines about what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedOptions:
    """What the operator asked for: `demo` adds demo users, a demo route and composite."""

    demo: bool


Seeder = Callable[[SeedOptions], list[str]]
_seeders: dict[str, Seeder] = {}


def register(name: str, seeder: Seeder) -> None:
    """Register (or replace) the seeder for one context."""
    _seeders[name] = seeder


def seeders() -> list[tuple[str, Seeder]]:
    """The registered seeders, in registration order."""
    return list(_seeders.items())
