"""The platform's response renderers: DRF's JSON renderer, for every answer including text
that is no Unicode."""

from __future__ import annotations

from typing import Any

from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    """DRF's `JSONRenderer`, UTF-8 as it is. A string holding a lone surrogate (a JSON escape
    such as `"\\ud800"` parses into one, and a field error may quote the value it refuses)
    cannot be written as UTF-8, and DRF's renderer raised `UnicodeEncodeError` (a 500): such a
    document is written with every non-ASCII character escaped, as JSON allows."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        try:
            rendered: bytes = super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _ASCII.render(data, accepted_media_type, renderer_context)
        return rendered


class _EscapedJSONRenderer(renderers.JSONRenderer):
    ensure_ascii = True


_ASCII = _EscapedJSONRenderer()
