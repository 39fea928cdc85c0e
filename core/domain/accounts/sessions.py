"""A login session: one refresh-token family, rotated on every refresh.

Exactly one refresh token of a family is current; presenting an older one is reuse and ends the
family. A family never outlives `expires_at` (7 days after its login), however often it rotates.
A family ended early remembers why (`SessionEnd`): one ended for reuse answers every later
presentation of its tokens as reuse.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.domain.accounts.values import UserId, parse_uuid


def parse_session_id(raw: str) -> str | None:
    """A session id in canonical form (a lowercase UUID, as stored), None when `raw` is not a
    UUID in its canonical 8-4-4-4-12 form (either letter case)."""
    return parse_uuid(raw)


class SessionEnd(StrEnum):
    """Why a family was revoked before its expiry (stored with it)."""

    LOGOUT = "logout"  # POST /auth/logout
    SESSION_REVOKED = "session_revoked"  # DELETE /auth/sessions/{id}
    REUSE = "reuse"  # an already-used refresh token of it was presented
    LOGOUT_ALL = "logout_all"  # POST /auth/logout-all
    # The password changed in another session; was reset; was set by an operator (Django
    # admin, changepassword). Reasons, not secrets.
    PASSWORD_CHANGE = "password_change"  # noqa: S105
    PASSWORD_RESET = "password_reset"  # noqa: S105
    PASSWORD_SET = "password_set"  # noqa: S105
    ACCOUNT_STATUS = "account_status"  # the user left `active`
    ADMIN = "admin"  # an operator ended the user's sessions (Django admin)


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
    revoked_reason: SessionEnd | None = None

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

    @property
    def ended_for_reuse(self) -> bool:
        """Revoked because one of its refresh tokens was used twice: every later presentation
        of any of its tokens is reuse too."""
        return self.revoked_reason == SessionEnd.REUSE
