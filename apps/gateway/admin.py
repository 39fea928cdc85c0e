"""Django admin for routes: edit with the domain's validation, see each circuit's state.

Saves go through the ORM (Django admin's way); what follows a change (fresh circuits, every
worker told) is the `AnnounceSavedRoutes` use case's.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.common.admin import CheckedInputAdmin
from apps.common.forms import ASCII_INTEGER_FIELDS, JSON_TEXT_FIELDS
from apps.gateway import wiring
from apps.gateway.models import RouteRow
from apps.gateway.repositories import DB
from core.domain.gateway.breaker import CircuitState
from core.domain.gateway.route import BreakerPolicy
from core.usecases.gateway.manage_routes import SavedRoute


@admin.register(RouteRow)
class RouteAdmin(CheckedInputAdmin, admin.ModelAdmin):
    list_display = (
        "name",
        "path_prefix",
        "upstream_url",
        "auth",
        "enabled",
        "circuit_state",
        "updated_at",
    )
    list_filter = ("enabled", "auth")
    search_fields = ("name", "path_prefix", "upstream_url")
    readonly_fields = ("circuit_state", "created_at", "updated_at")
    # A refused `["\\ud800"]` is redisplayed escaped; numbers in ASCII digits, as over REST.
    formfield_overrides = JSON_TEXT_FIELDS | ASCII_INTEGER_FIELDS
    fieldsets = (
        (None, {"fields": ("name", "path_prefix", "upstream_url", "strip_prefix", "enabled")}),
        ("Access", {"fields": ("methods", "auth", "required_roles")}),
        (
            "Rate limit (leave all three empty for none)",
            {"fields": ("rate_limit_requests", "rate_limit_window_seconds", "rate_limit_key")},
        ),
        (
            "Upstream calls",
            {
                "fields": (
                    "timeout_ms",
                    "retries",
                    "cache_ttl_seconds",
                    "failure_threshold",
                    "recovery_seconds",
                    "circuit_state",
                )
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: RouteRow | None = None) -> Any:
        # A route's name is its identity, as over the REST API: its circuit, rate-limit
        # windows, cache entries and metrics are kept under it. A new name is a new route.
        readonly = super().get_readonly_fields(request, obj)
        return (*readonly, "name") if obj is not None else readonly

    def get_queryset(self, request: HttpRequest) -> QuerySet[RouteRow]:
        return super().get_queryset(request).using(DB)

    @admin.display(description="circuit")
    def circuit_state(self, obj: RouteRow) -> str:
        if not obj.pk:
            return "-"
        # As a call arriving now finds it (half_open once the recovery time is over), as the
        # status endpoint reports it.
        policy = BreakerPolicy(obj.failure_threshold, obj.recovery_seconds)
        circuit = wiring.circuit_status().execute(obj.name, policy).unwrap()
        if circuit.failures and circuit.state is CircuitState.CLOSED:
            return f"closed ({circuit.failures} consecutive failures)"
        return circuit.state.value

    def save_model(self, request: HttpRequest, obj: RouteRow, form: Any, change: bool) -> None:
        obj.methods = sorted({str(m).upper() for m in obj.methods})
        obj.save(using=DB)
        before = form.initial.get("upstream_url") if change else None
        _announce([SavedRoute(obj.name, before, obj.upstream_url)])

    def delete_model(self, request: HttpRequest, obj: RouteRow) -> None:
        obj.delete(using=DB)
        _announce([SavedRoute(obj.name, obj.upstream_url, None)])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RouteRow]) -> None:
        gone = [
            SavedRoute(name, url, None)
            for name, url in queryset.values_list("name", "upstream_url")
        ]
        queryset.delete()
        _announce(gone)


def _announce(saved: list[SavedRoute]) -> None:
    wiring.announce_saved_routes().execute(saved).unwrap()
