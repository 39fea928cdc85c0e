import pytest

from core.domain.gateway.paths import (
    has_parameters,
    has_trimmable_segments,
    normalise_path,
    parameters_move_the_path,
    trimmed,
    without_parameters,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("/", "/"),
        ("/orders/42", "/orders/42"),
        ("/orders/42/", "/orders/42/"),
        ("/svc//admin/users", "/svc/admin/users"),
        ("//svc/admin", "/svc/admin"),
        ("/svc/./admin", "/svc/admin"),
        ("/svc/x/../admin", "/svc/admin"),
        ("/svc/%61dmin", "/svc/admin"),
        ("/svc/%2e%2e/admin", "/admin"),
        ("/svc/%2E/admin", "/svc/admin"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/c/..", "/a/b/"),
        ("/..", "/"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/..", "/"),
        ("/a.b/c..d/.e", "/a.b/c..d/.e"),
        ("/q/%20x%3f", "/q/%20x%3F"),
        ("/q/%c3%a9", "/q/%C3%A9"),
    ],
)
def test_paths_are_normalised_before_matching(raw, normal):
    assert normalise_path(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "/svc/admin%2Fusers",
        "/svc/admin%2fusers",
        "/a%5cb",
        "/a\\b",
        "/svc/admin%00",  # `/svc/admin` where the upstream ends the path at a NUL
        "/svc/admin%00.png",
    ],
)
def test_encoded_slashes_backslashes_and_nuls_are_refused(raw):
    assert normalise_path(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "/svc/x/%%32%65%%32%65/admin",  # decoded once: `%2e%2e`, which an upstream reads as `..`
        "/a/%%32%46b",  # decoded once: `%2F`
        "/a/%zz",
        "/a/%",
        "/a/%2",
        "/a/%u002e",
    ],
)
def test_a_percent_sign_that_starts_no_escape_is_refused(raw):
    # RFC 3986 §2.1: `%` is always the start of an escape. A stray one before escapes of
    # unreserved characters made the normal form produce new escapes (`%%32%65` → `%2e`), so
    # the path the route was matched on was not the one the upstream read.
    assert normalise_path(raw) is None


@pytest.mark.parametrize("raw", ["/svc/%61dmin", "/svc/x/../a%20b/.", "/q/%c3%a9//x", "/%7e"])
def test_the_normal_form_is_normal(raw):
    normal = normalise_path(raw)
    assert normal is not None
    assert normalise_path(normal) == normal


@pytest.mark.parametrize("raw", ["*", "127.0.0.1:8080", "svc/x", ""])
def test_a_target_that_is_not_an_absolute_path_is_refused(raw):
    assert normalise_path(raw) is None


def test_a_normal_path_is_returned_as_it_came():
    raw = "/orders/42/items"
    assert normalise_path(raw) is raw


@pytest.mark.parametrize(
    ("path", "bare"),
    [
        ("/svc/items;jsessionid=abc", "/svc/items"),
        ("/svc/admin;x", "/svc/admin"),
        ("/svc/..;/admin", "/admin"),
        ("/svc/%3Bx/admin", "/svc/admin"),
        ("/a;p=1/b;q=2/c", "/a/b/c"),
    ],
)
def test_without_parameters_is_the_path_a_stripping_upstream_sees(path, bare):
    assert has_parameters(path)
    assert without_parameters(normalise_path(path)) == bare


def test_a_path_without_parameters_says_so():
    assert not has_parameters("/svc/items")


@pytest.mark.parametrize(
    ("path", "moves"),
    [
        ("/svc/items;jsessionid=abc", False),
        ("/svc/admin;x/users", False),
        ("/svc/..;/svc/internal", True),
        ("/..;/internal", True),
        ("/svc/.;x/y", True),
        ("/svc/%2e%2e;/x", True),  # the escapes are decoded first
    ],
)
def test_parameters_that_hide_a_dot_segment_move_the_path(path, moves):
    assert parameters_move_the_path(normalise_path(path)) is moves


@pytest.mark.parametrize(
    ("path", "bare"),
    [
        ("/svc/admin./users", "/svc/admin/users"),
        ("/svc/admin%20/users", "/svc/admin/users"),
        ("/svc/admin%09/users", "/svc/admin/users"),
        ("/svc/admin.%20../users", "/svc/admin/users"),
        ("/svc/%20admin/users", "/svc/admin/users"),  # Spring trimmed both ends
        ("/svc/%2E%2E%2E/x", None),  # nothing but dots: `.`, `..` or nothing, by upstream
        ("/svc/..%20/x", None),
        ("/svc/x/%09", None),
        ("/svc/v1.2/x.json", "/svc/v1.2/x.json"),
    ],
)
def test_trimmed_is_the_path_an_upstream_that_trims_segments_sees(path, bare):
    normal = normalise_path(path)
    assert has_trimmable_segments(normal) is (bare != normal)
    assert trimmed(normal) == bare


@pytest.mark.parametrize("path", ["/svc/items", "/svc/a.b/c", "/svc/x%20y", "/svc/x/"])
def test_a_path_with_nothing_to_trim_says_so(path):
    assert not has_trimmable_segments(path)
