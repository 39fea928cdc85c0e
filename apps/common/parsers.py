"""The platform's request parsers: DRF's JSON parser, refusing too deeply nested documents."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's `JSONParser`; a document nested deeper than Python's recursion limit (about 1 000
    levels, ~2 KB of brackets) is a 400 `malformed_request`, not a `RecursionError` (500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError("JSON parse error - the document is nested too deeply.") from error
