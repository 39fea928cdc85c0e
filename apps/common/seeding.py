"""A registry of seeders, so `manage.py seed` can seed every context without importing them.

Each context registers a function in its `AppConfig.ready()`; the function calls that context's
use cases (through its `wiring.py`) and returns human-readable lines about what it did. A line
about something asked for that could not be seeded is a `SeedFailure`, so `manage.py seed` can
exit non-zero while still printing every line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedOptions:
    """What the operator asked for: `demo` adds demo users, a demo route and composite."""

    demo: bool


class SeedFailure(str):
    """A seeder's line saying something the operator asked for was not created."""

    __slots__ = ()


def failures(lines: list[str]) -> list[str]:
    """The lines that report a failure."""
    return [line for line in lines if isinstance(line, SeedFailure)]


Seeder = Callable[[SeedOptions], list[str]]
_seeders: dict[str, Seeder] = {}


def register(name: str, seeder: Seeder) -> None:
    """Register (or replace) the seeder for one context."""
    _seeders[name] = seeder


def seeders() -> list[tuple[str, Seeder]]:
    """The registered seeders, in registration order."""
    return list(_seeders.items())
