"""ORM rows of the aggregation database: composites, their sources, and the run history.

Only `repositories.py` (which maps them to domain entities, for the admin too) and `admin.py`
use them; the router keeps them in the `aggregation` database.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from core.domain.aggregation.composite import (
    AuthMode,
    cache_ttl_problems,
    name_problems,
    source_problems,
    timeout_problems,
)
from core.domain.aggregation.runs import RunStatus


def _raise_if(problems: dict[str, list[str]]) -> None:
    found = {name: messages for name, messages in problems.items() if messages}
    if found:
        raise ValidationError(found)


class CompositeRow(models.Model):
    """A composite endpoint (`/api/v1/aggregation/composites/{name}/run`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    auth = models.CharField(
        max_length=16,
        choices=[(mode.value, mode.value) for mode in AuthMode],
        default=AuthMode.REQUIRED.value,
    )
    cache_ttl_seconds = models.PositiveIntegerField(default=0)
    timeout_ms = models.PositiveIntegerField(default=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "aggregation_composite"
        ordering = ["name"]
        verbose_name = "composite"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The composite's own fields; its source list is checked by the admin's formset."""
        _raise_if(
            {
                "name": name_problems(self.name),
                "cache_ttl_seconds": cache_ttl_problems(self.cache_ttl_seconds or 0),
                "timeout_ms": timeout_problems(self.timeout_ms or 0),
            }
        )


class SourceRow(models.Model):
    """One source of a composite; `position` keeps the composite's order."""

    composite = models.ForeignKey(CompositeRow, on_delete=models.CASCADE, related_name="sources")
    position = models.PositiveIntegerField(default=0)
    key = models.CharField(max_length=64)
    url = models.CharField(max_length=2048)
    method = models.CharField(max_length=8, choices=[("GET", "GET")], default="GET")
    timeout_ms = models.PositiveIntegerField(default=5000)
    required = models.BooleanField(default=True)
    forward_auth = models.BooleanField(default=False)
    fields = models.JSONField(null=True, blank=True, help_text="Top-level fields to keep.")
    rename = models.JSONField(default=dict, blank=True, help_text='{"old": "new"}')

    class Meta:
        db_table = "aggregation_source"
        ordering = ["composite", "position"]
        constraints = [
            models.UniqueConstraint(fields=["composite", "key"], name="aggregation_source_key")
        ]
        verbose_name = "source"

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        """The domain's rules for one source (`source_problems`), after JSON shape checks."""
        from apps.aggregation.repositories import source_to_domain  # it imports this module

        if self.rename is None:
            # An empty rename box means "no renaming"; the column is NOT NULL, so store {}.
            self.rename = {}
        shape: dict[str, list[str]] = {
            "fields": (
                []
                if self.fields is None
                or (isinstance(self.fields, list) and all(isinstance(f, str) for f in self.fields))
                else ["Give a list of field names, or null."]
            ),
            "rename": (
                []
                if isinstance(self.rename, dict)
                and all(isinstance(v, str) for v in self.rename.values())
                else ['Give an object {"old": "new"}.']
            ),
        }
        _raise_if(shape)
        _raise_if(source_problems(source_to_domain(self)))


class RunRow(models.Model):
    """One run of a composite (kept by name: the composite may be gone since)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    composite = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=[(status.value, status.value) for status in RunStatus]
    )
    took_ms = models.FloatField()
    user_id = models.CharField(max_length=64, blank=True, default="", help_text="Empty: anonymous")
    started_at = models.DateTimeField()
    sources = models.JSONField(default=list)

    class Meta:
        db_table = "aggregation_run"
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["composite", "-started_at"], name="aggregation_run_composite"),
            models.Index(fields=["status", "-started_at"], name="aggregation_run_status"),
            models.Index(fields=["started_at"], name="aggregation_run_started"),
        ]
        verbose_name = "run"

    def __str__(self) -> str:
        return f"{self.composite} {self.status} {self.started_at:%Y-%m-%d %H:%M:%S}"
