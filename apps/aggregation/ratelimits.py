"""The platform-wide limit on composite runs, per caller, on `apps.common.ratelimits`.

A run may fan out to 20 source calls and writes a history row, and distinct placeholder values
miss the source cache, so one anonymous client could make the platform do a lot for little.
Callers are counted by the token's user when one was presented (a bad token is its 401 before
anything is counted), else by client IP, an IPv6 one by its /64, as the accounts limits do.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request

from apps.aggregation.adapters import RATE_LIMITED
from apps.common import ratelimits as limits
from apps.common.authentication import TokenUser


def enforce_run(request: Request) -> None:
    """Count this run against its caller's `AGGREGATION_RUN_RATE`; raise when over it."""
    limits.enforce(
        request,
        group="aggregation.run",
        rate=settings.AGGREGATION_RUN_RATE,
        key=_caller(request),
        refused=RATE_LIMITED.inc,
    )


def _caller(request: Request) -> limits.Key:
    """The token's user (reading `request.user` authenticates), else the client IP."""
    user = request.user
    if not isinstance(user, TokenUser):
        return "ip"
    subject = f"user:{user.principal.user_id}"
    return lambda group, django_request: subject
