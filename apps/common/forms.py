"""Form fields shared by the contexts' Django admins."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db import models


class JSONTextField(forms.JSONField):
    """Django's JSON form field, redisplaying a value that holds a lone surrogate (typed as a
    JSON escape, `["\\ud800"]`, which every domain rule refuses) escaped as typed: written out
    as it is, the refused form could not be encoded as the page's UTF-8 (a 500)."""

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        try:
            text.encode()
        except UnicodeEncodeError:
            return json.dumps(value, cls=self.encoder)  # ASCII, surrogates as \u escapes
        return text


# `ModelAdmin.formfield_overrides` giving every JSON column of a model that field.
JSON_TEXT_FIELDS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.JSONField: {"form_class": JSONTextField}
}
