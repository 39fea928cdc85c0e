"""Longest-prefix matching of request paths against the enabled routes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from core.domain.gateway.route import Route

_T = TypeVar("_T")


def _longest(index: Mapping[str, _T], path: str) -> _T | None:
    """The entry of the longest prefix in `index` that `path` equals or continues with `/…`."""
    candidate = path.rstrip("/") or "/"
    while True:
        found = index.get(candidate)
        if found is not None:
            return found
        if candidate == "/":
            return None
        candidate = candidate.rsplit("/", 1)[0] or "/"


class RouteTable:
    """An immutable snapshot of the enabled routes, indexed by prefix."""

    def __init__(self, routes: Iterable[Route], version: str = "") -> None:
        self.version = version
        self._by_prefix = {route.path_prefix: route for route in routes if route.enabled}
        # The prefixes as an upstream that ignores case reads them (IIS and ASP.NET by default,
        # Spring or Django set up so): `/ADMIN/x` is `/admin/x` there.
        self._by_folded: dict[str, tuple[Route, ...]] = {}
        for prefix, route in self._by_prefix.items():
            folded = prefix.lower()
            self._by_folded[folded] = (*self._by_folded.get(folded, ()), route)
        self._mixed_case = any(prefix != prefix.lower() for prefix in self._by_prefix)

    def __len__(self) -> int:
        return len(self._by_prefix)

    def __iter__(self) -> Iterator[Route]:
        """The enabled routes, in no particular order."""
        return iter(self._by_prefix.values())

    def match(self, path: str) -> Route | None:
        """The route with the longest prefix that `path` equals or continues with `/…`; None
        for anything but an absolute path (`*`, `host:port`), which no prefix can start."""
        if not path.startswith("/"):
            return None  # and the search below, which shortens at each `/`, would never end
        return _longest(self._by_prefix, path)

    def case_moves_the_route(self, path: str, route: Route) -> bool:
        """Whether `path`, which matched `route`, belongs to another route when letter case is
        ignored (`/ADMIN/users` matched `/`, but is `/admin`'s where the upstream ignores
        case)."""
        if not self._mixed_case and path == path.lower():
            return False  # the common case: nothing to fold
        folded = _longest(self._by_folded, path.lower()) or ()
        return not any(candidate is route for candidate in folded)
