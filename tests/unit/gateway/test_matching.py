"""Longest-prefix matching on path-segment boundaries."""

import threading

import pytest

from core.domain.gateway.matching import RouteTable
from core.domain.gateway.route import Route


def route(name, prefix, enabled=True):
    return Route(name, prefix, "http://svc", enabled=enabled)


TABLE = RouteTable(
    [route("a", "/a"), route("ab", "/a/b"), route("off", "/off", enabled=False)], "v1"
)


def test_longest_prefix_wins():
    assert TABLE.match("/a/b/c").name == "ab"
    assert TABLE.match("/a/x").name == "a"
    assert TABLE.match("/a").name == "a"
    assert TABLE.match("/a/b/").name == "ab"


def test_prefixes_match_whole_segments_only():
    assert TABLE.match("/ab") is None
    assert TABLE.match("/nothing") is None


def test_disabled_routes_are_not_in_the_table():
    assert TABLE.match("/off") is None
    assert len(TABLE) == 2
    assert sorted(route.name for route in TABLE) == ["a", "ab"]
    assert TABLE.match("/a/b").name == "ab"
    assert TABLE.version == "v1"


def test_root_route_catches_everything_else():
    table = RouteTable([route("root", "/"), route("a", "/a")])
    assert table.match("/zzz/y").name == "root"
    assert table.match("/a/q").name == "a"


@pytest.mark.parametrize("target", ["*", "127.0.0.1:9", "a/b", ""])
def test_a_target_that_is_not_an_absolute_path_matches_nothing_and_returns(target):
    # `OPTIONS *` and `CONNECT host:port` send such targets; the search once never ended.
    table = RouteTable([route("root", "/"), route("a", "/a")])
    found = []
    search = threading.Thread(target=lambda: found.append(table.match(target)), daemon=True)
    search.start()
    search.join(timeout=5)
    assert not search.is_alive(), f"match({target!r}) does not return"
    assert found == [None]


def test_a_path_whose_case_hides_the_route_it_belongs_to_is_told_apart():
    root, admin = route("root", "/"), route("admin", "/admin")
    table = RouteTable([root, admin, route("docs", "/Docs")])
    assert not table.case_moves_the_route("/admin/users", admin)
    assert not table.case_moves_the_route("/Images/logo.png", root)  # no other route's
    assert table.case_moves_the_route("/ADMIN/users", table.match("/ADMIN/users"))
    assert table.case_moves_the_route("/Admin", root)
    assert table.case_moves_the_route("/docs/x", root)  # a prefix in capitals, too
    assert not table.case_moves_the_route("/Docs/x", table.match("/Docs/x"))


def test_prefixes_that_differ_only_in_case_each_keep_their_own_paths():
    lower, upper = route("lower", "/svc"), route("upper", "/SVC")
    table = RouteTable([lower, upper])
    assert not table.case_moves_the_route("/svc/x", lower)
    assert not table.case_moves_the_route("/SVC/x", upper)
