"""Serializer building blocks shared by the contexts' APIs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field."


# Names the serializer does not declare are a field error (`{"timout_ms": ["Unknown field."]}`,
# 400 `validation_error`), reported with the other fields' errors, as Kong's admin API answers
# them. DRF drops them: a mistyped field in a PATCH answered 200 and changed nothing. For
# configuration objects (routes, composites) and an admin's change of a user; not for bodies
# where fields must be ignored (a role sent to `register` or `PATCH /me`). A comment, not a
# docstring: drf-spectacular describes a serializer by the first docstring in its classes, so
# every subclass without one of its own showed this text in the schema.
class RejectsUnknownFields(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        unknown = (
            {name: [UNKNOWN_FIELD] for name in data if name not in self.fields}
            if isinstance(data, Mapping)
            else {}
        )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, Mapping):
                raise serializers.ValidationError({**error.detail, **unknown}) from error
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class JSONInteger(serializers.IntegerField):
    """An integer as JSON writes one. DRF's takes text (`"3000"`, and `"٣٠٠٠"`, since `int()`
    reads any script's digits) and whole floats (`3000.0`) too."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]


class JSONBoolean(serializers.BooleanField):
    """`true` or `false`. DRF's takes `"yes"`, `"off"`, `1`, `"0"` and more."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class JSONString(serializers.CharField):
    """A string as JSON writes one. DRF's takes numbers too (`{"full_name": 0}` is `"0"`), and
    a number where a password or an email belongs was a failed login rather than a 400."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]
