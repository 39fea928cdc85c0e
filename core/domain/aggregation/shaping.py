"""Shaping a source's JSON answer: keep only some top-level fields, then rename some."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def shape(body: Any, fields: Sequence[str] | None, rename: Mapping[str, str]) -> Any:
    """`body` with only `fields` kept (None keeps all) and keys renamed per `rename`.

    Only JSON objects are shaped; arrays and scalars pass through untouched. A renamed field
    wins over an untouched field that already has the new name.
    """
    if not isinstance(body, dict):
        return body
    wanted = None if fields is None else set(fields)
    kept = {key: value for key, value in body.items() if wanted is None or key in wanted}
    shaped = {key: value for key, value in kept.items() if key not in rename}
    shaped.update({rename[key]: value for key, value in kept.items() if key in rename})
    return shaped
