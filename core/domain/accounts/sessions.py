"""A login session: one refresh-token family, rotated on every refresh.

Exactly one refresh token of a family is current; presenting an older one is reuse and ends the
family. A family never outlives `expires_at` (7 days after its login), however often it rotates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.domain.accounts.values import UserId, parse_uuid


def parse_session_id(raw: str) -> str | None:
    """A session id in canonical form (a lowercase UUID, as stored), None when `raw` is not a
    UUID in its canonical 8-4-4-4-12 form (either letter case)."""
    return parse_uuid(raw)


@dataclass(slots=True)
class Session:
    """A refresh-token family of one user, with what the user sees in their session list."""

    id: str
    user_id: UserId
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current_jti: str
    access_jti: str = ""
    access_expires_at: datetime | None = None
    user_agent: str = ""
    ip: str = ""
    revoked_at: datetime | None = None

    @classmethod
    def start(
        cls, *, user_id: UserId, now: datetime, lifetime: timedelta, user_agent: str, ip: str
    ) -> Session:
        return cls(
            id=str(uuid.uuid4()),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + lifetime,
            current_jti="",
            user_agent=user_agent[:300],
            ip=ip[:45],
        )

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
