"""URL templates: where placeholders may stand and how values are filled."""

import pytest

from core.domain.aggregation.templates import fill, template_problems
from core.domain.shared.result import Err, Ok


@pytest.mark.parametrize(
    "url",
    [
        "http://h/x",
        "https://h:8443/users/{id}?q={term}&page={page}",
        "http://127.0.0.1/{a}{b}",
        "http://h",
        "http://h/x?",
        "http://[::1]:8080/x",
        "http://xn--exmple-cua.com/{x}",  # an IDN host, written as DNS has it
        "http://h.example./x",
    ],
)
def test_valid_templates_have_no_problems(url):
    assert template_problems(url) == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://{host}/x", "only in the path or the query"),
        ("http://h:{port}/x", "only in the path or the query"),
        ("http://user:{pw}@h/x", "only in the path or the query"),
        ("{scheme}://h/x", "only in the path or the query"),
        ("http:/{x}", "only in the path or the query"),
        ("ftp://h/x", "absolute http"),
        ("/relative/{x}", "absolute http"),
        ("http:///nohost", "absolute http"),
        ("http://h:99999/x", "valid port"),
        ("http://h:port/x", "valid port"),
        ("http://h:0/x", "valid port"),  # as a gateway route's upstream URL
        ("http://exämple.com/x", "not a valid name or address"),
        ("http://h\u3002com/x", "not a valid name or address"),  # an ideographic full stop
        ("http://-h.example/x", "not a valid name or address"),
        ("http://h_" + "a" * 70 + ".example/x", "not a valid name or address"),
        ("http://[::1/x", "well-formed"),
        # The gateway's words for it (`IPV4_RULE`), not the generic ones.
        ("http://2130706433:22000/health", "four decimal numbers"),
        ("http://0x7f.1/x", "four decimal numbers"),
        ("http://0177.0.0.1/x", "four decimal numbers"),
        ("http://h/x#frag", "#fragment"),
        ("http://user:pw@h/x", "credentials"),
        ("http://token@h/x", "credentials"),
        ("http://h/x#", "#fragment"),
        ("http://h#", "#fragment"),
        ("http://h/x?#", "#fragment"),
        ("http://h/x?q={q}#", "#fragment"),
        ("http://h/{1bad}", "Write placeholders as {name}"),
        ("http://h/{unclosed", "Write placeholders as {name}"),
        ("http://h/closed}", "Write placeholders as {name}"),
        # A value after a bare % completes an escape of the caller's choosing: with {x} = 2e,
        # /a/%{x}%{x} is /a/%2e%2e, a `..` to every server that decodes before it resolves.
        ("http://h/a/%{x}", "%XX escape"),
        ("http://h/a/%2{x}", "%XX escape"),
        ("http://h/a?q=100%", "%XX escape"),
        ("http://h/a b", "whitespace"),
        ("http://h/\x00", "whitespace"),
        # An encoded NUL, where an upstream written in C ends the path (as for a route).
        ("http://h/h%00", "'%00'"),
        ("http://h/a%00b/{x}", "'%00'"),
        ("http://h/" + "x" * 2100, "at most 2048"),
    ],
)
def test_invalid_templates_say_why(url, fragment):
    assert any(fragment in problem for problem in template_problems(url)), template_problems(url)


def test_percent_escapes_are_fine_in_a_template():
    assert template_problems("http://h/a%20b/{x}?q=%2F{y}") == []


def test_values_are_percent_encoded_with_no_safe_characters():
    result = fill("http://h/u/{id}?q={q}", {"id": "a?c#d;e", "q": "x&y=z @:/"})
    assert result == Ok("http://h/u/a%3Fc%23d%3Be?q=x%26y%3Dz%20%40%3A%2F")


@pytest.mark.parametrize("value", ["../internal", "a/b", "..\\x", "\\", "/"])
def test_a_path_value_may_not_hold_a_slash_or_a_backslash(value):
    # Encoded, `../internal` is `..%2Finternal`, which nginx, Python's http.server and many
    # file servers decode before they resolve dot segments: one level up from the template.
    assert fill("http://h/public/{name}.json", {"name": value}) == Err(
        {"name": ["A value in the path may not contain / or \\."]}
    )


def test_a_path_value_may_not_hold_a_nul_character():
    # Encoded it is `%00`, which a source URL's path may not hold: a C upstream ends it there.
    assert fill("http://h/public/{name}.json", {"name": "a\x00"}) == Err(
        {"name": ["A value in the path may not contain a NUL character."]}
    )


def test_slashes_are_fine_in_the_query():
    assert fill("http://h/a?x={x}", {"x": "../b"}) == Ok("http://h/a?x=..%2Fb")


@pytest.mark.parametrize("value", ["evil.com", "@evil.com", "//evil.com", "evil.com:81/x"])
def test_a_value_can_never_change_the_origin(value):
    for template in ("http://good:8080/{p}", "http://good:8080/?q={p}"):
        filled = fill(template, {"p": value})
        if filled.is_ok():
            assert filled.unwrap().startswith("http://good:8080/")
            assert "/" not in filled.unwrap().removeprefix("http://good:8080/")


def test_missing_and_empty_values_are_reported_by_name():
    assert fill("http://h/{a}/{b}?c={c}", {"b": "", "x": "1"}) == Err(
        {
            "a": ["This query parameter is required."],
            "b": ["This query parameter is required."],
            "c": ["This query parameter is required."],
        }
    )


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_are_refused_in_the_path(value):
    assert fill("http://h/a/{x}/b", {"x": value}) == Err(
        {"x": ["This value may not be a relative path segment."]}
    )


def test_dot_segments_are_fine_in_the_query():
    assert fill("http://h/a?x={x}", {"x": ".."}) == Ok("http://h/a?x=..")


def test_a_value_given_more_than_once_is_refused_by_name():
    errors = fill("http://h/{a}?b={b}", {"a": "1", "b": "2"}, repeated={"a", "unused"})
    assert errors == Err({"a": ["Give this query parameter once."]})


def test_overlong_values_are_refused():
    errors = fill("http://h/{x}", {"x": "v" * 1025}).unwrap_err()
    assert errors == {"x": ["Ensure this value has at most 1024 characters."]}


def test_a_template_without_placeholders_is_returned_as_is():
    assert fill("http://h/x?y=1", {}) == Ok("http://h/x?y=1")


@pytest.mark.parametrize(
    "template", ["http://{host}/x", "http://h{host}:80/x", "http://h:{port}/x", "{scheme}://h/x"]
)
def test_a_placeholder_in_the_origin_is_never_filled(template):
    # The rules refuse such a template when it is saved; one written straight into the database
    # keeps its origin as written (a host no source has), and asks the caller for nothing.
    assert fill(template, {"host": "evil.com", "port": "81", "scheme": "file"}) == Ok(template)
    assert fill(template, {}) == Ok(template)


def test_placeholders_after_an_unfilled_origin_are_still_filled():
    assert fill("http://{host}/u/{id}", {"host": "evil.com", "id": "7"}) == Ok("http://{host}/u/7")
