"""Django admin for composites (with their sources inline) and the read-only run history."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from apps.aggregation.models import CompositeRow, RunRow, SourceRow


class SourceInline(admin.TabularInline):
    model = SourceRow
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


@admin.register(CompositeRow)
class CompositeAdmin(admin.ModelAdmin):
    list_display = ["name", "auth", "timeout_ms", "cache_ttl_seconds", "source_count", "updated_at"]
    list_filter = ["auth"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [SourceInline]

    @admin.display(description="sources")
    def source_count(self, row: CompositeRow) -> int:
        return row.sources.count()


@admin.register(RunRow)
class RunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "composite", "status", "took_ms", "user_id"]
    list_filter = ["status", "composite"]
    search_fields = ["composite", "user_id"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in RunRow._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
