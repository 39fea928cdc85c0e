"""Django admin for composites (with their sources inline) and the read-only run history.

Every rule comes from the domain: each row's `clean` asks for its own fields, and the sources'
formset asks `composite_problems` about the composite as a whole (how many sources, unique keys),
so the admin refuses what the REST API refuses. Saves go through the ORM (Django admin's way);
each save and delete retires the cached definitions it changes, as the REST API's writes do.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from apps.aggregation.models import CompositeRow, RunRow, SourceRow
from apps.aggregation.repositories import forget_definitions_once_committed, source_to_domain
from apps.common.admin import CheckedInputAdmin
from apps.common.forms import ASCII_INTEGER_FIELDS, JSON_TEXT_FIELDS
from core.domain.aggregation.composite import (
    MAX_SOURCES,
    AuthMode,
    Composite,
    composite_problems,
    sources_problems,
)


class SourceFormSet(BaseInlineFormSet):
    """The inline sources, checked together with their composite before anything is saved."""

    # More forms than a composite may have sources are refused with the domain's words (the
    # formset builds no more than that: `SourceInline.get_formset`).
    default_error_messages = {"too_many_forms": sources_problems(())[0]}

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return  # each source's own errors are shown on its row first
        sources = tuple(
            source_to_domain(form.instance)
            for form in sorted(self._kept_forms(), key=lambda form: form.instance.position)
        )
        parent: CompositeRow = self.instance
        composite = Composite(
            name=parent.name or "",
            description=parent.description or "",
            auth=AuthMode.NONE,  # not a source rule; the composite's form checks its fields
            cache_ttl_seconds=parent.cache_ttl_seconds or 0,
            timeout_ms=parent.timeout_ms or 0,
            sources=sources,
        )
        messages = [
            message
            for field, found in composite_problems(composite).items()
            if field.startswith("sources")
            for message in found
        ]
        if messages:
            raise ValidationError(messages)

    def _kept_forms(self) -> list[Any]:
        """Forms of the sources that will exist after the save (not deleted, not left blank)."""
        return [
            form
            for form in self.forms
            if form.cleaned_data and not (self.can_delete and self._should_delete_form(form))
        ]


class SourceInline(admin.TabularInline):
    model = SourceRow
    formset = SourceFormSet
    formfield_overrides = JSON_TEXT_FIELDS | ASCII_INTEGER_FIELDS
    extra = 0
    fields = [
        "position",
        "key",
        "url",
        "method",
        "timeout_ms",
        "required",
        "forward_auth",
        "fields",
        "rename",
    ]
    ordering = ["position"]
    max_num = MAX_SOURCES

    def get_formset(self, request: Any, obj: Any = None, **kwargs: Any) -> Any:
        # Django builds as many forms as the posted TOTAL_FORMS asks, up to max_num + 1 000
        # unless told otherwise: a forged count held a worker for 40 s building 2 000 forms.
        return super().get_formset(request, obj, absolute_max=MAX_SOURCES, **kwargs)


@admin.register(CompositeRow)
class CompositeAdmin(CheckedInputAdmin, admin.ModelAdmin):
    list_display = ["name", "auth", "timeout_ms", "cache_ttl_seconds", "source_count", "updated_at"]
    list_filter = ["auth"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [SourceInline]
    formfield_overrides = ASCII_INTEGER_FIELDS

    @admin.display(description="sources")
    def source_count(self, row: CompositeRow) -> int:
        return row.sources.count()

    # Django saves the inline sources after `save_model`, in the same transaction: the cached
    # definitions are retired once it commits, under the stored name and a new one.
    def save_model(self, request: HttpRequest, obj: CompositeRow, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        names = {obj.name, form.initial["name"]} if change else {obj.name}
        forget_definitions_once_committed(*names)

    def delete_model(self, request: HttpRequest, obj: CompositeRow) -> None:
        super().delete_model(request, obj)
        forget_definitions_once_committed(obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CompositeRow]) -> None:
        names = list(queryset.values_list("name", flat=True))
        super().delete_queryset(request, queryset)
        forget_definitions_once_committed(*names)


@admin.register(RunRow)
class RunAdmin(CheckedInputAdmin, admin.ModelAdmin):
    list_display = ["started_at", "composite", "status", "took_ms", "user_id"]
    list_filter = ["status", "composite"]
    search_fields = ["composite", "user_id"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in RunRow._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
