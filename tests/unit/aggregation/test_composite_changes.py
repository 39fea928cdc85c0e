"""How a change set (a PATCH) merges into a composite, and a source's default timeout."""

from core.domain.aggregation.composite import (
    AuthMode,
    Composite,
    CompositeChanges,
    Source,
    SourceSpec,
)

DASH = Composite(
    name="dash",
    description="Dashboard",
    auth=AuthMode.NONE,
    cache_ttl_seconds=10,
    timeout_ms=800,
    sources=(
        Source(key="user", url="http://h/users/{id}", timeout_ms=800),
        Source(key="orders", url="http://h/orders", timeout_ms=300, required=False),
    ),
)


def test_a_source_without_a_timeout_takes_its_composites():
    spec = SourceSpec(
        key="a",
        url="http://h/a",
        required=False,
        forward_auth=True,
        fields=("x",),
        rename={"x": "y"},
    )
    assert spec.resolved(composite_timeout_ms=700) == Source(
        key="a",
        url="http://h/a",
        method="GET",
        timeout_ms=700,
        required=False,
        forward_auth=True,
        fields=("x",),
        rename={"x": "y"},
    )


def test_a_source_with_a_timeout_keeps_it():
    assert SourceSpec(key="a", url="http://h/a", timeout_ms=300).resolved(700).timeout_ms == 300


def test_an_empty_change_set_leaves_the_composite_as_it_is():
    assert CompositeChanges().applied_to(DASH) == DASH


def test_given_fields_change_and_the_others_stay():
    changed = CompositeChanges(
        name="board", description="", auth=AuthMode.REQUIRED, cache_ttl_seconds=0
    ).applied_to(DASH)
    assert changed == Composite(
        name="board",
        description="",
        auth=AuthMode.REQUIRED,
        cache_ttl_seconds=0,
        timeout_ms=800,
        sources=DASH.sources,
    )


def test_a_new_timeout_leaves_the_stored_sources_timeouts_alone():
    changed = CompositeChanges(timeout_ms=1500).applied_to(DASH)
    assert changed.timeout_ms == 1500
    assert changed.sources == DASH.sources


def test_new_sources_replace_the_list_and_default_to_the_current_timeout():
    changed = CompositeChanges(sources=(SourceSpec(key="only", url="http://h/"),)).applied_to(DASH)
    assert changed.sources == (Source(key="only", url="http://h/", timeout_ms=800),)


def test_new_sources_default_to_the_timeout_the_same_change_sets():
    changed = CompositeChanges(
        timeout_ms=1500,
        sources=(
            SourceSpec(key="a", url="http://h/a"),
            SourceSpec(key="b", url="http://h/b", timeout_ms=200),
        ),
    ).applied_to(DASH)
    assert [(s.key, s.timeout_ms) for s in changed.sources] == [("a", 1500), ("b", 200)]
