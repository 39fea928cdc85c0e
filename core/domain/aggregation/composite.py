"""Composites: named endpoints that call several sources and merge their answers.

A composite is valid when `composite_problems` finds nothing; the REST API, the admin and the
use cases all ask this one function, so the rules cannot drift between them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from core.domain.aggregation.templates import template_problems

MAX_SOURCES = 20
MAX_TIMEOUT_MS = 30_000
MAX_CACHE_TTL_SECONDS = 86_400
MAX_SHAPING_ENTRIES = 100
MAX_DESCRIPTION_LENGTH = 500
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")
# No control characters, and no lone surrogate (a JSON escape such as "\ud800" parses into one):
# it is no text, and PostgreSQL refuses it in the JSON columns that keep `fields` and `rename`.
FIELD_PATTERN = re.compile(r"^[^\x00-\x1f\ud800-\udfff]{1,128}\Z")
FIELD_NAME_RULE = "Field names are 1-128 characters without control characters or lone surrogates."
METHODS = frozenset({"GET"})
# How many composites a run may be nested in (a composite's source running another composite,
# and so on): deeper is refused as a loop would be, so a chain's header stays small.
MAX_CHAIN = 16

Problems = dict[str, list[str]]


class AuthMode(StrEnum):
    """Who may run a composite."""

    REQUIRED = "required"  # a valid access token is needed
    NONE = "none"  # anyone; a token, when valid, is still forwarded where allowed


@dataclass(frozen=True, slots=True)
class Source:
    """One call a composite makes; its answer lands under `key`."""

    key: str
    url: str
    method: str = "GET"
    timeout_ms: int = 5_000
    required: bool = True
    forward_auth: bool = False
    fields: tuple[str, ...] | None = None
    rename: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Composite:
    """A named endpoint that calls `sources` concurrently within `timeout_ms`."""

    name: str
    sources: tuple[Source, ...]
    description: str = ""
    auth: AuthMode = AuthMode.REQUIRED
    cache_ttl_seconds: int = 0
    timeout_ms: int = 5_000


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A source as a client gives it: without `timeout_ms` it takes its composite's."""

    key: str
    url: str
    method: str = "GET"
    timeout_ms: int | None = None
    required: bool = True
    forward_auth: bool = False
    fields: tuple[str, ...] | None = None
    rename: Mapping[str, str] = field(default_factory=dict)

    def resolved(self, composite_timeout_ms: int) -> Source:
        """The source, its timeout defaulting to its composite's `timeout_ms`."""
        return Source(
            key=self.key,
            url=self.url,
            method=self.method,
            timeout_ms=composite_timeout_ms if self.timeout_ms is None else self.timeout_ms,
            required=self.required,
            forward_auth=self.forward_auth,
            fields=self.fields,
            rename=dict(self.rename),
        )


@dataclass(frozen=True, slots=True)
class CompositeChanges:
    """What a change (a PATCH) sets; None leaves a field as it is. `sources`, when given,
    replaces the whole list, and its sources without a timeout take the composite's (the new
    one when this change sets it); a new composite timeout leaves stored sources alone."""

    name: str | None = None
    description: str | None = None
    auth: AuthMode | None = None
    cache_ttl_seconds: int | None = None
    timeout_ms: int | None = None
    sources: tuple[SourceSpec, ...] | None = None

    def applied_to(self, current: Composite) -> Composite:
        """`current` with these changes (validity is `composite_problems`' business)."""
        timeout_ms = current.timeout_ms if self.timeout_ms is None else self.timeout_ms
        return Composite(
            name=current.name if self.name is None else self.name,
            description=current.description if self.description is None else self.description,
            auth=current.auth if self.auth is None else self.auth,
            cache_ttl_seconds=(
                current.cache_ttl_seconds
                if self.cache_ttl_seconds is None
                else self.cache_ttl_seconds
            ),
            timeout_ms=timeout_ms,
            sources=(
                current.sources
                if self.sources is None
                else tuple(spec.resolved(timeout_ms) for spec in self.sources)
            ),
        )


def parse_chain(text: str) -> tuple[str, ...]:
    """The composites a run was called through, outermost first, from their comma-separated
    names (what is not a composite name is left out)."""
    names = (name.strip() for name in text.split(","))
    return tuple(name for name in names if NAME_PATTERN.match(name))


def format_chain(names: tuple[str, ...]) -> str:
    return ",".join(names)


def name_problems(name: str) -> list[str]:
    if NAME_PATTERN.match(name):
        return []
    return ["Use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit."]


def key_problems(key: str) -> list[str]:
    if KEY_PATTERN.match(key):
        return []
    return ["Use 1-64 letters, digits, '-' or '_', starting with a letter or '_'."]


def timeout_problems(timeout_ms: int) -> list[str]:
    if 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        return []
    return [f"Ensure this value is between 1 and {MAX_TIMEOUT_MS} milliseconds."]


def cache_ttl_problems(seconds: int) -> list[str]:
    if 0 <= seconds <= MAX_CACHE_TTL_SECONDS:
        return []
    return [f"Ensure this value is between 0 and {MAX_CACHE_TTL_SECONDS} seconds."]


def fields_problems(fields: tuple[str, ...] | None) -> list[str]:
    if fields is None:
        return []
    if len(fields) > MAX_SHAPING_ENTRIES:
        return [f"Ensure there are at most {MAX_SHAPING_ENTRIES} fields."]
    if not all(FIELD_PATTERN.match(name) for name in fields):
        return [FIELD_NAME_RULE]
    if len(set(fields)) != len(fields):
        return ["List each field once."]
    return []


def rename_problems(rename: Mapping[str, str]) -> list[str]:
    if len(rename) > MAX_SHAPING_ENTRIES:
        return [f"Ensure there are at most {MAX_SHAPING_ENTRIES} renamings."]
    names = [*rename.keys(), *rename.values()]
    if not all(FIELD_PATTERN.match(name) for name in names):
        return [FIELD_NAME_RULE]
    if len(set(rename.values())) != len(rename):
        return ["Two fields may not be renamed to the same name."]
    return []


def shaping_problems(fields: tuple[str, ...] | None, rename: Mapping[str, str]) -> list[str]:
    """Why `rename` would overwrite a field that `fields` keeps under its own name (one of
    the two values would vanish from every answer). Without `fields`, which fields come is
    known only at run time, where the renamed one wins."""
    if fields is None:
        return []
    kept = set(fields)
    return [
        f"'{old}' would be renamed to '{new}', which `fields` keeps as it is: rename that one "
        "too, or leave it out of `fields`."
        for old, new in rename.items()
        if old in kept and new in kept and new not in rename
    ]


def source_problems(source: Source) -> Problems:
    """Field-by-field problems of one source (empty: it is valid)."""
    found: Problems = {
        "key": key_problems(source.key),
        "url": template_problems(source.url),
        "method": [] if source.method in METHODS else ['Only "GET" is supported.'],
        "timeout_ms": timeout_problems(source.timeout_ms),
        "fields": fields_problems(source.fields),
        "rename": rename_problems(source.rename) or shaping_problems(source.fields, source.rename),
    }
    return {name: messages for name, messages in found.items() if messages}


def sources_problems(sources: tuple[Source, ...]) -> list[str]:
    """Problems of the source list as a whole (count, unique keys)."""
    if not 1 <= len(sources) <= MAX_SOURCES:
        return [f"Give between 1 and {MAX_SOURCES} sources."]
    keys = [source.key for source in sources]
    if len(set(keys)) != len(keys):
        return ["Each source needs its own key."]
    return []


def composite_problems(composite: Composite) -> Problems:
    """Every problem of `composite`, keyed by field (`sources[2].url` for a source's field)."""
    found: Problems = {
        "name": name_problems(composite.name),
        "description": (
            []
            if len(composite.description) <= MAX_DESCRIPTION_LENGTH
            else [f"Ensure this field has at most {MAX_DESCRIPTION_LENGTH} characters."]
        ),
        "cache_ttl_seconds": cache_ttl_problems(composite.cache_ttl_seconds),
        "timeout_ms": timeout_problems(composite.timeout_ms),
        "sources": sources_problems(composite.sources),
    }
    for index, source in enumerate(composite.sources):
        for name, messages in source_problems(source).items():
            found[f"sources[{index}].{name}"] = messages
    return {name: messages for name, messages in found.items() if messages}
