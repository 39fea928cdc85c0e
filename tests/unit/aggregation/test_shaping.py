"""Shaping a source's answer with `fields` and `rename`."""

import pytest

from core.domain.aggregation.shaping import shape


def test_fields_keep_only_the_listed_top_level_fields():
    assert shape({"a": 1, "b": {"c": 2}, "d": 3}, ("a", "b", "zz"), {}) == {"a": 1, "b": {"c": 2}}


def test_none_keeps_every_field():
    assert shape({"a": 1, "b": 2}, None, {}) == {"a": 1, "b": 2}


def test_rename_maps_old_names_to_new_ones():
    assert shape({"a": 1, "b": 2}, None, {"a": "alpha"}) == {"b": 2, "alpha": 1}


def test_renaming_applies_after_filtering():
    assert shape({"a": 1, "b": 2}, ("b",), {"a": "alpha", "b": "beta"}) == {"beta": 2}


def test_a_renamed_field_wins_over_an_existing_field_of_that_name():
    assert shape({"a": 1, "b": 2}, None, {"a": "b"}) == {"b": 1}


def test_swapping_two_names_works():
    assert shape({"a": 1, "b": 2}, None, {"a": "b", "b": "a"}) == {"b": 1, "a": 2}


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None, True])
def test_non_objects_pass_through(body):
    assert shape(body, ("a",), {"a": "b"}) == body
