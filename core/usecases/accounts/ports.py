"""Ports of the accounts context: what its use cases need from the outside world.

Protocols named by role; their Django/simplejwt/bcrypt adapters live in `apps/accounts`, fakes in
`tests/fakes/accounts.py`. Nothing here may import a framework.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.user import User, UserStatus
from core.domain.accounts.values import Email, PasswordHash, UserId
from core.domain.shared.result import Result
from core.usecases.shared.ports import Clock, TokenRevocations, UnitOfWork

__all__ = [
    "AccountEvents",
    "Clock",
    "EmailQuota",
    "IssuedTokens",
    "LoginFailures",
    "Mailer",
    "MomentWaiter",
    "OneTimeTokens",
    "PasswordHasher",
    "PasswordPolicy",
    "RefreshClaims",
    "RefreshTokenError",
    "SessionRepository",
    "TokenIssuer",
    "TokenOwner",
    "TokenPurpose",
    "TokenRevocations",
    "UnitOfWork",
    "UserPage",
    "UserQuery",
    "UserRepository",
]


@dataclass(frozen=True, slots=True)
class UserQuery:
    """Filters and window of the admin user list."""

    email: str | None = None
    status: UserStatus | None = None
    role: str | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of users and how many match in all."""

    items: list[User]
    total: int


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """The user an access token acts for, and whether the token's session has been revoked."""

    user: User
    session_revoked: bool


class UserRepository(Protocol):
    """Users by id or email; `add` refuses a taken email instead of raising."""

    def get(self, user_id: UserId) -> User | None: ...

    def get_for_update(self, user_id: UserId) -> User | None:
        """The user, row-locked until the unit of work ends."""
        ...

    def lock_active_admins(self, *, with_users: Collection[UserId]) -> list[User]:
        """The active admins who can sign in (`User.administers`), row-locked until the unit of
        work ends together with the users `with_users` (whatever they are), all in id order:
        changes and deletes that could end an admin count the others under these locks, so
        two of them at once are decided one after the other. Taken before any other lock of
        the unit of work, in the one order of paths that lock several users (`OneTimeTokens`
        says the rest of the order)."""
        ...

    def token_owner(
        self, user_id: UserId, session_id: str | None, *, lock: bool = False
    ) -> TokenOwner | None:
        """The user, and whether `session_id` names one of their sessions that was revoked,
        in one query (with `lock`, the user row-locked until the unit of work ends)."""
        ...

    def by_email(self, email: Email) -> User | None: ...

    def add(self, user: User) -> bool:
        """Insert; False when the email is already taken (also under concurrency)."""
        ...

    def save(self, user: User) -> None: ...

    def delete(self, user_ids: Collection[UserId]) -> None:
        """Remove the users for good, with every row that refers to them (their sessions,
        one-time tokens...); ids of users already gone are passed over."""
        ...

    def search(self, query: UserQuery) -> UserPage: ...


class SessionRepository(Protocol):
    """Refresh-token families; `rotate` is the atomic compare-and-swap that picks one winner."""

    def add(self, session: Session) -> None: ...

    def get(self, session_id: str) -> Session | None: ...

    def rotate(
        self,
        session_id: str,
        *,
        presented_jti: str,
        new_jti: str,
        access_jti: str,
        access_expires_at: datetime,
        now: datetime,
    ) -> bool:
        """Replace the current refresh jti if it is still `presented_jti` and the family lives."""
        ...

    def revoke(
        self, session_id: str, user_id: UserId, now: datetime, *, reason: SessionEnd
    ) -> Session | None:
        """End one live family of the user for `reason`; the family as it was, or None if none
        was live (a family already ended keeps its reason)."""
        ...

    def revoke_all(
        self, user_id: UserId, now: datetime, *, reason: SessionEnd, keep: str | None = None
    ) -> list[Session]:
        """End for `reason` every family of the user except `keep` that is live or expired with
        its last access token still valid; the families ended."""
        ...

    def live_for(self, user_id: UserId, now: datetime) -> list[Session]: ...

    def with_live_access(self, user_id: UserId, now: datetime) -> list[Session]:
        """Families of the user, live or ended, whose last access token has not expired."""
        ...

    def purge(self, before: datetime) -> int:
        """Delete families that expired or were revoked before `before` and whose last access
        token expired by then, but a family revoked for reuse only once it has expired (its
        tokens answer reuse until then); how many."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """A freshly signed access + refresh pair and the ids that revocation needs; `issued_at`
    is when it was signed (its `iat`, on the use cases' clock), so lifetimes told to the client
    count from the same time as the tokens' `exp`."""

    access_token: str
    refresh_token: str
    access_jti: str
    access_expires_at: datetime
    refresh_jti: str
    refresh_expires_at: datetime
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    """What a verified refresh token says."""

    user_id: UserId
    session_id: str
    jti: str
    expires_at: datetime


class RefreshTokenError(StrEnum):
    """Why a refresh token was refused."""

    INVALID = "token_invalid"
    EXPIRED = "token_expired"


class TokenIssuer(Protocol):
    """Signs token pairs and verifies refresh tokens (signature, type, exp, aud, iss)."""

    def issue(self, user: User, session_id: str, refresh_expires_at: datetime) -> IssuedTokens: ...

    def read_refresh(
        self, raw_token: str, *, expired_ok: bool = False
    ) -> Result[RefreshClaims, RefreshTokenError]:
        """The claims of a genuine refresh token; with `expired_ok`, also of one past its
        `exp` (logout: it still names the session to end)."""
        ...


class TokenPurpose(StrEnum):
    """What a one-time token is for."""

    VERIFY_EMAIL = "verify_email"
    RESET = "reset_password"


class OneTimeTokens(Protocol):
    """Random single-use tokens, stored hashed; issuing one voids earlier ones of that purpose.

    Lock order: a unit of work writes a user's tokens (`issue`, `consume`, `void`) only once
    it holds the user's row lock (`UserRepository.get_for_update`, `token_owner(lock=True)`,
    or the row it has just added). Every path takes the user's row first and their tokens
    after, so no two wait for each other's locks in a cycle (a deadlock), and two issuers of
    one user run one after the other, the second voiding the first's token. A path that locks
    several users' rows takes them all first, in id order (`lock_active_admins`, which
    Django admin's delete takes too: `DeleteUsers`), so users' rows → a user's tokens →
    their sessions is one order.
    """

    def issue(
        self, user_id: UserId, purpose: TokenPurpose, expires_at: datetime, *, now: datetime
    ) -> str:
        """A new token of `purpose` for the user, valid until `expires_at`; the ones it
        supersedes are used up at `now`, when it is issued."""
        ...

    def consume(self, raw_token: str, purpose: TokenPurpose, now: datetime) -> UserId | None:
        """Mark the token used and return its user, or None if unknown, used or expired."""
        ...

    def peek(self, raw_token: str, purpose: TokenPurpose, now: datetime) -> UserId | None:
        """The user of a token `consume` would accept now, leaving it unused; else None."""
        ...

    def void(self, user_id: UserId, purpose: TokenPurpose, now: datetime) -> None:
        """Mark every unused token of `purpose` the user holds used: none of them works now."""
        ...

    def purge(self, now: datetime) -> int:
        """Delete used and expired tokens; how many."""
        ...


class Mailer(Protocol):
    """Sends the account emails."""

    def send_verification(self, to: Email, token: str) -> None: ...

    def send_password_reset(self, to: Email, token: str) -> None: ...


class EmailQuota(Protocol):
    """How many emails of one kind an address may still be sent in the current window, so
    nobody can flood a mailbox by asking for them from many client IPs."""

    def take(self, to: Email) -> bool:
        """Spend one email of `to`'s budget; False when it is already spent (send nothing)."""
        ...


class PasswordHasher(Protocol):
    """Hashes and checks passwords (bcrypt), each in its normalised form
    (`normalise_password`): two spellings of one password hash and verify alike."""

    def hash(self, raw_password: str) -> PasswordHash: ...

    def verify(self, raw_password: str, hashed: PasswordHash | None) -> bool:
        """True when it matches; with None, spend the same time and answer False."""
        ...


class PasswordPolicy(Protocol):
    """Why a new password is not acceptable for this user (empty when it is)."""

    def problems(self, password: str, *, email: str, full_name: str) -> list[str]: ...


class LoginFailures(Protocol):
    """Takes a wrong password for a known account to count (`RecordFailedLogin`), possibly
    after the answer has left: a refusal must not take longer for a known address."""

    def record(self, user_id: UserId, at: datetime) -> None: ...


class MomentWaiter(Protocol):
    """Holds the calling thread until the accounts' clock reads a moment: a token minted right
    after a per-user cut-off waits for the cut-off's next second (`User.tokens_valid_from`)."""

    def sleep_until(self, moment: datetime) -> None:
        """Return once the clock reads `moment` or later (at once if it already does)."""
        ...


class AccountEvents(Protocol):
    """Business events worth counting (registrations, logins by outcome, refreshes...)."""

    def registered(self) -> None: ...

    def login(self, outcome: str) -> None: ...

    def refreshed(self) -> None: ...

    def reuse_detected(self) -> None: ...

    def locked_out(self) -> None: ...

    def email_throttled(self, kind: str) -> None:
        """An email of `kind` was not sent: its address had spent its budget (`EmailQuota`)."""
        ...
