"""Form fields shared by the contexts' Django admins."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput

# Deeper than any value these columns hold (a list of names, an object of names), and shallow
# enough for every later step (the model's checks, the page redisplaying it) to recurse through.
MAX_JSON_DEPTH = 32
TOO_DEEP = f"Enter JSON nested at most {MAX_JSON_DEPTH} levels deep."
_ASCII_INTEGER = re.compile(r"-?[0-9]+")


class JSONTextField(forms.JSONField):
    """Django's JSON form field, with two refusals Django's lacks.

    A value nested more than `MAX_JSON_DEPTH` levels is refused: Django parses the text
    again wherever it needs the value (cleaning, `has_changed`, the redisplay), each time
    deeper in the stack, and `[[[...]]]` a few hundred levels deep ran out of it there
    (`RecursionError`, a 500). A value that holds a lone surrogate (typed as a JSON escape,
    `["\\ud800"]`, which every domain rule refuses) is redisplayed escaped as typed: written
    out as it is, the refused form could not be encoded as the page's UTF-8 (a 500)."""

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(TOO_DEEP, code="invalid") from None
        if _depth(converted) > MAX_JSON_DEPTH:
            raise ValidationError(TOO_DEEP, code="invalid")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)  # redisplayed as typed, as other invalid JSON
        return InvalidJSONInput(data) if _depth(value) > MAX_JSON_DEPTH else value

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        try:
            text.encode()
        except UnicodeEncodeError:
            return json.dumps(value, cls=self.encoder)  # ASCII, surrogates as \u escapes
        return text


class AsciiIntegerField(forms.IntegerField):
    """Django's integer form field, taking a whole number in ASCII digits only (an optional
    minus sign, blanks around it), as the REST API's `JSONInteger` does. Django's reads the text
    with `int()`, which also takes other scripts' digits (full-width ones, Arabic-Indic `١٢`),
    underscores (`1_000`) and a trailing `.0`: each saved a number the REST API refuses."""

    def to_python(self, value: Any) -> int | None:
        if value not in self.empty_values and not _ASCII_INTEGER.fullmatch(str(value).strip()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        result: int | None = super().to_python(value)
        return result


# `ModelAdmin.formfield_overrides` giving every integer column of a model (positive ones
# included: Django looks the column's classes up in turn) that field.
ASCII_INTEGER_FIELDS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.IntegerField: {"form_class": AsciiIntegerField}
}


# `ModelAdmin.formfield_overrides` giving every JSON column of a model that field.
JSON_TEXT_FIELDS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.JSONField: {"form_class": JSONTextField}
}


def _depth(value: Any) -> int:
    """How many lists and objects deep `value` nests (walked without recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest
