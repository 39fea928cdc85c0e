"""ORM rows of the gateway database. Only repositories.py and admin.py use them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.domain.gateway.route import (
    AuthMode,
    LimitKey,
    normalise_prefix,
    rate_limit_parts_problems,
    route_problems,
)


class RouteRow(models.Model):
    """One route; nested policies are flattened into columns."""

    name = models.CharField(max_length=63, unique=True)
    path_prefix = models.CharField(max_length=255, unique=True)
    upstream_url = models.CharField(max_length=2048)
    strip_prefix = models.BooleanField(default=True)
    methods = models.JSONField(default=list)
    auth = models.CharField(
        max_length=16, choices=[(m.value, m.value) for m in AuthMode], default=AuthMode.NONE.value
    )
    required_roles = models.JSONField(default=list, blank=True)
    rate_limit_requests = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_key = models.CharField(
        max_length=8, choices=[(k.value, k.value) for k in LimitKey], blank=True, default=""
    )
    cache_ttl_seconds = models.PositiveIntegerField(default=0)
    timeout_ms = models.PositiveIntegerField(default=5000)
    retries = models.PositiveSmallIntegerField(default=0)
    failure_threshold = models.PositiveIntegerField(default=5)
    recovery_seconds = models.PositiveIntegerField(default=30)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "gateway_route"
        ordering = ["name"]
        verbose_name = "route"

    def __str__(self) -> str:
        return f"{self.name} ({self.path_prefix})"

    def clean(self) -> None:
        """Admin forms refuse what the domain refuses."""
        from apps.gateway.repositories import route_to_domain  # it imports this module

        parts = rate_limit_parts_problems(
            self.rate_limit_requests, self.rate_limit_window_seconds, self.rate_limit_key or None
        )
        if parts:
            raise ValidationError({"rate_limit_requests": parts})
        # Printable text only: the domain's error quotes an unknown method, and a lone surrogate
        # (a JSON escape, `["\\ud800"]`) quoted in the page could not be written out (a 500).
        if not isinstance(self.methods, list) or not all(
            isinstance(m, str) and m.isprintable() for m in self.methods
        ):
            raise ValidationError({"methods": "A list of method names."})
        if not isinstance(self.required_roles, list) or not all(
            isinstance(role, str) for role in self.required_roles
        ):
            # Refused rather than stringified: [1, null] is not the roles "1" and "None".
            raise ValidationError({"required_roles": 'A list of role names, say ["admin"].'})
        # Trimmed as the REST API trims them; the domain then judges what is left. The prefix
        # loses a trailing slash by the API's rule before the uniqueness check reads it.
        self.required_roles = [role.strip() for role in self.required_roles]
        self.path_prefix = normalise_prefix(self.path_prefix)
        problems = route_problems(route_to_domain(self))
        if problems:
            raise ValidationError(
                {_FORM_FIELDS.get(key, key): messages for key, messages in problems.items()}
            )


# Domain fields that are flattened into several columns report on their first column.
_FORM_FIELDS = {"rate_limit": "rate_limit_requests", "circuit_breaker": "failure_threshold"}
