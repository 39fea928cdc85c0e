"""Longest-prefix matching of request paths against the enabled routes."""

from __future__ import annotations

from collections.abc import Iterable

from core.domain.gateway.route import Route


class RouteTable:
    """An immutable snapshot of the enabled routes, indexed by prefix."""

    def __init__(self, routes: Iterable[Route], version: str = "") -> None:
        self.version = version
        self._by_prefix = {route.path_prefix: route for route in routes if route.enabled}

    def __len__(self) -> int:
        return len(self._by_prefix)

    def match(self, path: str) -> Route | None:
        """The route with the longest prefix that `path` equals or continues with `/…`; None
        for anything but an absolute path (`*`, `host:port`), which no prefix can start."""
        if not path.startswith("/"):
            return None  # and the search below, which shortens at each `/`, would never end
        candidate = path.rstrip("/") or "/"
        while True:
            route = self._by_prefix.get(candidate)
            if route is not None:
                return route
            if candidate == "/":
                return None
            candidate = candidate.rsplit("/", 1)[0] or "/"
