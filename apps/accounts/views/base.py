"""What every view of `/api/v1/auth/` and `/api/v1/users` shares."""

from __future__ import annotations

from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from apps.common.apiviews import PlatformAPIView


@method_decorator(never_cache, name="dispatch")
class AccountsView(PlatformAPIView):
    """Its answers carry tokens or personal data: `Cache-Control: no-store, private` (Django's
    `never_cache`) on each, errors included, so no browser or shared cache keeps one (RFC 6749
    §5.1 asks it of every answer with tokens, as Keycloak's token endpoint sends it)."""
