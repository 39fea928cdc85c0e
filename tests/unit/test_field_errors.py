"""Validation errors come out flat, as API.md shows them: `{"field": ["message", ...]}`."""

from rest_framework.exceptions import ErrorDetail

from apps.common.exceptions import field_errors


def test_flat_fields_stay_as_they_are():
    assert field_errors({"name": [ErrorDetail("Too long.")]}) == {"name": ["Too long."]}


def test_nested_objects_and_list_items_get_dotted_names():
    detail = {
        "methods": {0: [ErrorDetail("Not a method.")]},
        "rate_limit": {
            "requests": ["Must be at least 1."],
            "non_field_errors": ["Invalid data."],
        },
        "sources": [{}, {"url": ["Bad URL."], "rename": {"a": ["Clash."]}}],
    }
    assert field_errors(detail) == {
        "methods.0": ["Not a method."],
        "rate_limit.requests": ["Must be at least 1."],
        "rate_limit": ["Invalid data."],
        "sources.1.url": ["Bad URL."],
        "sources.1.rename.a": ["Clash."],
    }


def test_errors_about_the_whole_body_are_non_field_errors():
    assert field_errors(["Expected an object."]) == {"non_field_errors": ["Expected an object."]}
    assert field_errors({"non_field_errors": ["Clash."]}) == {"non_field_errors": ["Clash."]}
    assert field_errors("Broken.") == {"non_field_errors": ["Broken."]}
