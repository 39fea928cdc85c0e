"""The rules a composite definition must follow."""

import pytest

from core.domain.aggregation.composite import (
    Composite,
    Source,
    cache_ttl_problems,
    composite_problems,
    fields_problems,
    format_chain,
    parse_chain,
    rename_problems,
    source_problems,
    sources_problems,
)


def valid(**changes):
    values = {
        "name": "dash",
        "sources": (Source(key="a", url="http://h/a"), Source(key="b", url="http://h/{id}")),
    }
    values.update(changes)
    return Composite(**values)


def test_a_valid_composite_has_no_problems():
    assert composite_problems(valid()) == {}


def test_problems_are_keyed_by_field_and_source_position():
    composite = valid(
        name="Bad Name",
        description="x" * 501,
        cache_ttl_seconds=-1,
        timeout_ms=0,
        sources=(
            Source(key="ok", url="http://h/"),
            Source(
                key="1bad",
                url="http://{host}/",
                method="POST",
                timeout_ms=40_000,
                fields=("a", "a"),
                rename={"a": "x", "b": "x"},
            ),
        ),
    )
    problems = composite_problems(composite)
    assert set(problems) == {
        "name",
        "description",
        "cache_ttl_seconds",
        "timeout_ms",
        "sources[1].key",
        "sources[1].url",
        "sources[1].method",
        "sources[1].timeout_ms",
        "sources[1].fields",
        "sources[1].rename",
    }


@pytest.mark.parametrize(
    "sources", [(), tuple(Source(key=f"k{i}", url="http://h/") for i in range(21))]
)
def test_a_composite_has_between_1_and_20_sources(sources):
    assert sources_problems(sources) == ["Give between 1 and 20 sources."]


def test_source_keys_are_unique():
    sources = (Source(key="a", url="http://h/"), Source(key="a", url="http://h/x"))
    assert sources_problems(sources) == ["Each source needs its own key."]


def test_cache_ttl_is_bounded():
    assert cache_ttl_problems(0) == []
    assert cache_ttl_problems(86_401) != []


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        (None, True),
        ((), True),
        (("a", "b"), True),
        (tuple(f"f{i}" for i in range(101)), False),
        (("",), False),
        (("a\x01",), False),
        (("\ud800",), False),  # a lone surrogate: no text, and PostgreSQL refuses it in JSON
        (("a", "a"), False),
    ],
)
def test_fields_rules(fields, ok):
    assert (fields_problems(fields) == []) is ok


@pytest.mark.parametrize(
    ("rename", "ok"),
    [
        ({}, True),
        ({"a": "b", "c": "d"}, True),
        ({f"f{i}": f"g{i}" for i in range(101)}, False),
        ({"a": ""}, False),
        ({"\udfff": "x"}, False),
        ({"x": "\ud800"}, False),
        ({"a": "x", "b": "x"}, False),
    ],
)
def test_rename_rules(rename, ok):
    assert (rename_problems(rename) == []) is ok


@pytest.mark.parametrize(
    ("fields", "rename", "ok"),
    [
        (("a", "b"), {"a": "b"}, False),  # b kept, and a renamed onto it: one value lost
        (("a", "b", "c"), {"a": "b", "c": "d"}, False),
        (("a", "b"), {"a": "b", "b": "c"}, True),  # b moves away first
        (("a", "b"), {"a": "a"}, True),
        (("a",), {"a": "b"}, True),
        (None, {"a": "b"}, True),  # which fields come is known only at run time
    ],
)
def test_a_rename_may_not_land_on_a_field_kept_under_its_own_name(fields, rename, ok):
    problems = source_problems(Source(key="s", url="http://h/", fields=fields, rename=rename))
    assert (problems == {}) is ok
    if not ok:
        assert list(problems) == ["rename"]


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        ("", ()),
        ("dash", ("dash",)),
        ("outer, dash ,inner", ("outer", "dash", "inner")),
        ("dash,,Not A Name,x,ok", ("dash", "x", "ok")),
    ],
)
def test_a_chain_is_the_composite_names_it_lists(text, chain):
    assert parse_chain(text) == chain


def test_a_chain_is_written_as_it_is_read():
    assert parse_chain(format_chain(("outer", "dash"))) == ("outer", "dash")
