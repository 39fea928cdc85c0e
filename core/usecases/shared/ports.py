"""Ports shared by every context: time, random ids, transactions, access-token verification and
revocation.

Ports are `typing.Protocol`s named by role; their adapters live in `apps/`, never here.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Protocol

from core.domain.shared.identity import Principal, TokenError
from core.domain.shared.result import Result


class Clock(Protocol):
    """Tells the current time (timezone-aware UTC); injected so tests never sleep."""

    def now(self) -> datetime: ...


class Monotonic(Protocol):
    """Seconds on a clock that never goes back, for durations and deadlines; injected."""

    def __call__(self) -> float: ...


class RandomHex(Protocol):
    """Random hex strings (new trace and span ids); injected so tests can predict them."""

    def hex(self, nbytes: int) -> str: ...


class AccessTokenVerifier(Protocol):
    """Turns a raw bearer token into the caller it proves, checking revocation too."""

    def verify(self, raw_token: str) -> Result[Principal, TokenError]: ...


class TokenRevocations(Protocol):
    """Publishes revocation facts every token check (API and gateway edge) must honour."""

    def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        """Deny one access token until it would have expired anyway."""
        ...

    def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        """Deny every access token of one session (its `sid`) until the last would expire."""
        ...

    def revoke_user_tokens(self, user_id: str, issued_before: datetime) -> None:
        """Deny every token of the user issued before `issued_before`."""
        ...


class UnitOfWork(Protocol):
    """A transaction: rolled back on leaving the block unless `commit()` was called."""

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
