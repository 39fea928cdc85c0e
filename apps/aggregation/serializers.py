"""Serializers of the aggregation API: where external JSON becomes domain entities and back.

Field rules are the domain's (`core.domain.aggregation.composite`), asked here so the API answers
400 `validation_error` with per-field messages before a use case runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.openapi import pattern_schema
from apps.common.serializers import JSONBoolean, JSONInteger, JSONString, RejectsUnknownFields
from core.domain.aggregation.composite import (
    KEY_PATTERN,
    MAX_CACHE_TTL_SECONDS,
    MAX_DESCRIPTION_LENGTH,
    MAX_SOURCES,
    MAX_TIMEOUT_MS,
    NAME_PATTERN,
    AuthMode,
    Composite,
    CompositeChanges,
    Source,
    SourceSpec,
    fields_problems,
    key_problems,
    name_problems,
    rename_problems,
    shaping_problems,
    sources_problems,
)
from core.domain.aggregation.runs import RunAnswer, RunStatus, SourceFailure
from core.domain.aggregation.templates import template_problems


@extend_schema_field(pattern_schema(NAME_PATTERN.pattern, max_length=64))
class CompositeNameField(JSONString):
    """A composite's name; the domain judges it (`name_problems`), the schema states its rule."""


@extend_schema_field(pattern_schema(KEY_PATTERN.pattern, max_length=64))
class SourceKeyField(JSONString):
    """A source's key; the domain judges it (`key_problems`), the schema states its rule."""


def _check(problems: list[str]) -> None:
    if problems:
        raise serializers.ValidationError(problems)


class SourceInputSerializer(RejectsUnknownFields):
    key = SourceKeyField(max_length=64)
    url = JSONString(
        max_length=2048,
        trim_whitespace=False,
        help_text="An absolute http(s) URL; {placeholders} in its path or query are filled "
        "from the run's query string.",
    )
    method = serializers.ChoiceField(choices=["GET"], default="GET")
    timeout_ms = JSONInteger(
        min_value=1, max_value=MAX_TIMEOUT_MS, required=False, help_text="Default: the composite's."
    )
    required = JSONBoolean(default=True)
    forward_auth = JSONBoolean(default=False)
    fields = serializers.ListField(
        child=JSONString(max_length=128, trim_whitespace=False),
        allow_null=True,
        default=None,
        help_text="Top-level fields to keep (null: all).",
    )
    rename = serializers.DictField(
        child=JSONString(max_length=128, trim_whitespace=False),
        default=dict,
        help_text='Field renamings, {"old": "new"}.',
    )

    def validate_key(self, value: str) -> str:
        _check(key_problems(value))
        return value

    def validate_url(self, value: str) -> str:
        _check(template_problems(value))
        return value

    def validate_fields(self, value: list[str] | None) -> list[str] | None:
        _check(fields_problems(None if value is None else tuple(value)))
        return value

    def validate_rename(self, value: dict[str, str]) -> dict[str, str]:
        _check(rename_problems(value))
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fields = attrs.get("fields")
        problems = shaping_problems(None if fields is None else tuple(fields), attrs["rename"])
        if problems:
            raise serializers.ValidationError({"rename": problems})
        return attrs


# A list longer than the domain allows is refused before any of its items is validated (with
# the domain's own message): a 1 MB body holds some 30 000 sources.
_TOO_MANY_SOURCES = {
    "max_length": f"Give between 1 and {MAX_SOURCES} sources.",
    "min_length": f"Give between 1 and {MAX_SOURCES} sources.",
}


def _validate_source_list(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _check(sources_problems(tuple(Source(key=item["key"], url=item["url"]) for item in value)))
    return value


class CompositeInputSerializer(RejectsUnknownFields):
    name = CompositeNameField(max_length=64)
    description = JSONString(max_length=MAX_DESCRIPTION_LENGTH, allow_blank=True, default="")
    auth = serializers.ChoiceField(choices=[mode.value for mode in AuthMode], default="required")
    cache_ttl_seconds = JSONInteger(min_value=0, max_value=MAX_CACHE_TTL_SECONDS, default=0)
    timeout_ms = JSONInteger(min_value=1, max_value=MAX_TIMEOUT_MS, default=5000)
    sources = SourceInputSerializer(
        many=True, min_length=1, max_length=MAX_SOURCES, error_messages=_TOO_MANY_SOURCES
    )

    def validate_name(self, value: str) -> str:
        _check(name_problems(value))
        return value

    def validate_sources(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _validate_source_list(value)


@extend_schema_field(SourceInputSerializer)
class WholeSource(serializers.JSONField):
    """One source of a PATCH's `sources`, read as sent and validated whole by the list (a
    partial PATCH would make its fields optional); the schema shows the source's own shape."""


class CompositePatchSerializer(CompositeInputSerializer):
    """The fields of a composite to change (PATCH): those not given are kept; `sources`, when
    given, replaces the whole list, each source given whole, as on create."""

    sources = serializers.ListField(
        child=WholeSource(),
        required=False,
        min_length=1,
        max_length=MAX_SOURCES,
        error_messages=_TOO_MANY_SOURCES,
    )

    def validate_sources(self, value: list[Any]) -> list[dict[str, Any]]:
        full = SourceInputSerializer(data=value, many=True)
        if not full.is_valid():
            raise serializers.ValidationError(full.errors)
        return _validate_source_list(full.validated_data)


def _source_spec(data: Mapping[str, Any]) -> SourceSpec:
    fields = data.get("fields")
    return SourceSpec(
        key=data["key"],
        url=data["url"],
        method=data.get("method", "GET"),
        timeout_ms=data.get("timeout_ms"),
        required=data.get("required", True),
        forward_auth=data.get("forward_auth", False),
        fields=None if fields is None else tuple(fields),
        rename=dict(data.get("rename") or {}),
    )


def composite_from(data: Mapping[str, Any]) -> Composite:
    """A new composite from validated create input."""
    return Composite(
        name=data["name"],
        description=data["description"],
        auth=AuthMode(data["auth"]),
        cache_ttl_seconds=data["cache_ttl_seconds"],
        timeout_ms=data["timeout_ms"],
        sources=tuple(_source_spec(item).resolved(data["timeout_ms"]) for item in data["sources"]),
    )


def changes_from(data: Mapping[str, Any]) -> CompositeChanges:
    """Validated PATCH input as a change set: what is absent stays None (unchanged)."""
    auth, sources = data.get("auth"), data.get("sources")
    return CompositeChanges(
        name=data.get("name"),
        description=data.get("description"),
        auth=None if auth is None else AuthMode(auth),
        cache_ttl_seconds=data.get("cache_ttl_seconds"),
        timeout_ms=data.get("timeout_ms"),
        sources=None if sources is None else tuple(_source_spec(item) for item in sources),
    )


class SourceOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    url = serializers.CharField()
    method = serializers.CharField()
    timeout_ms = serializers.IntegerField()
    required = serializers.BooleanField()
    forward_auth = serializers.BooleanField()
    fields = serializers.ListField(child=serializers.CharField(), allow_null=True)
    rename = serializers.DictField(child=serializers.CharField())


class CompositeOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    auth = serializers.ChoiceField(choices=[mode.value for mode in AuthMode])
    cache_ttl_seconds = serializers.IntegerField()
    timeout_ms = serializers.IntegerField()
    sources = SourceOutputSerializer(many=True)


class RunSourceOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.SerializerMethodField()
    took_ms = serializers.FloatField()
    cached = serializers.BooleanField()
    code = serializers.CharField(allow_null=True)

    def get_status(self, source: Any) -> str:
        return "ok" if source.ok else "failed"


class RunOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    composite = serializers.CharField()
    status = serializers.ChoiceField(choices=[status.value for status in RunStatus])
    took_ms = serializers.FloatField()
    user_id = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField()
    sources = RunSourceOutputSerializer(many=True)


class RunsQuerySerializer(serializers.Serializer):
    composite = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=[status.value for status in RunStatus], required=False)


class RunSourceErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField(
        allow_null=True, help_text="The source's HTTP status; null when it gave none."
    )
    code = serializers.ChoiceField(choices=[failure.value for failure in SourceFailure])
    detail = serializers.CharField()


class RunSourceMetaSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "failed"])
    took_ms = serializers.FloatField()
    cached = serializers.BooleanField()


class RunMetaSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[status.value for status in RunStatus])
    partial = serializers.BooleanField(help_text="Whether a source failed.")
    took_ms = serializers.FloatField()
    sources = serializers.DictField(child=RunSourceMetaSerializer(), help_text="By source key.")


class RunAnswerSerializer(serializers.Serializer):
    """A run's answer: each source's shaped data, the failed sources, and the run's meta."""

    data = serializers.DictField(help_text="Each source's shaped JSON answer, by key.")
    errors = serializers.DictField(
        child=RunSourceErrorSerializer(), help_text="Each failed source, by key."
    )
    meta = RunMetaSerializer()


class SourceFailedProblemSerializer(RunAnswerSerializer):
    """The 502 `source_failed` problem: a problem document that also carries the
    run's answer (`errors` here are the sources' failures, not field errors)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="`source_failed`.")


def answer_document(answer: RunAnswer) -> dict[str, Any]:
    """The run answer as the API publishes it: `{data, errors, meta}`."""
    return {
        "data": {outcome.key: outcome.body for outcome in answer.outcomes if outcome.ok},
        "errors": {
            outcome.key: {
                "status": outcome.http_status,
                "code": str(outcome.failure.value),
                "detail": outcome.detail,
            }
            for outcome in answer.outcomes
            if outcome.failure is not None
        },
        "meta": {
            "status": answer.status.value,
            "partial": answer.partial,
            "took_ms": answer.took_ms,
            "sources": {
                outcome.key: {
                    "status": "ok" if outcome.ok else "failed",
                    "took_ms": outcome.took_ms,
                    "cached": outcome.cached,
                }
                for outcome in answer.outcomes
            },
        },
    }
