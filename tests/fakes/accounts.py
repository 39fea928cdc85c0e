"""In-memory fakes of the accounts ports, for unit tests of the use cases (no I/O)."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta

from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.user import User
from core.domain.accounts.values import Email, PasswordHash, UserId
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts.ports import (
    IssuedTokens,
    RefreshClaims,
    RefreshTokenError,
    TokenOwner,
    TokenPurpose,
    UserPage,
    UserQuery,
)
from tests.fakes.transactions import FakeUnitOfWork


class InMemoryUserRepository:
    """Users in a dict, unique by email like the table; `locked` lists the rows locked, in
    order, `admin_locks` counts `lock_active_admins`. `concurrently`, when set, runs once
    just before the next locked read (`get_for_update`...) or write, whichever comes first:
    another writer's change (an admin's) landing after a use case's lock-free reads. A use
    case that locks the user's row meets it there, as it would wait for that writer."""

    def __init__(self, *users: User, sessions: InMemorySessionRepository | None = None) -> None:
        self.rows: dict[str, User] = {u.id.value: copy.deepcopy(u) for u in users}
        self.locked: list[str] = []
        self.sessions = sessions
        self.saves = 0
        self.admin_locks = 0
        self.concurrently: Callable[[InMemoryUserRepository], None] | None = None

    def _interleave(self) -> None:
        change, self.concurrently = self.concurrently, None
        if change is not None:
            change(self)

    def get(self, user_id: UserId) -> User | None:
        user = self.rows.get(user_id.value)
        return copy.deepcopy(user) if user else None

    def get_for_update(self, user_id: UserId) -> User | None:
        self._interleave()
        self.locked.append(user_id.value)
        return self.get(user_id)

    def lock_active_admins(self, *, with_users: Collection[UserId]) -> list[User]:
        self._interleave()
        self.admin_locks += 1
        admins = [u for u in self.rows.values() if u.administers]
        self.locked.extend(sorted({u.id.value for u in admins} | {u.value for u in with_users}))
        return copy.deepcopy(sorted(admins, key=lambda u: u.id.value))

    def token_owner(
        self, user_id: UserId, session_id: str | None, *, lock: bool = False
    ) -> TokenOwner | None:
        """Needs the world's sessions (`sessions`) to say whether a session was revoked."""
        user = self.get_for_update(user_id) if lock else self.get(user_id)
        if user is None:
            return None
        session = self.sessions.get(session_id) if session_id and self.sessions else None
        revoked = session is not None and session.user_id == user_id and session.revoked_at
        return TokenOwner(user, bool(revoked))

    def by_email(self, email: Email) -> User | None:
        # The account holding the address: a deleted one holds none (`User.holds_email`).
        found = [u for u in self.rows.values() if u.email == email and u.holds_email]
        return copy.deepcopy(found[0]) if found else None

    def add(self, user: User) -> bool:
        self._interleave()
        if self.by_email(user.email) is not None:
            return False
        self.rows[user.id.value] = copy.deepcopy(user)
        self.locked.append(user.id.value)  # a row just inserted is its transaction's alone
        return True

    def save(self, user: User) -> None:
        self._interleave()
        self.saves += 1
        self.rows[user.id.value] = copy.deepcopy(user)

    def delete(self, user_ids: Collection[UserId]) -> None:
        self._interleave()
        for user_id in user_ids:
            assert user_id.value in self.locked, "a user deleted before their row was locked"
            self.rows.pop(user_id.value, None)
            if self.sessions is not None:  # their sessions go with them, as on the table
                rows = self.sessions.rows
                self.sessions.rows = {k: s for k, s in rows.items() if s.user_id != user_id}

    def search(self, query: UserQuery) -> UserPage:
        found = [
            u
            for u in self.rows.values()
            if (not query.email or query.email in u.email.value)
            and (query.status is None or u.status == query.status)
            and (not query.role or query.role in u.roles)
        ]
        return UserPage(found[query.offset : query.offset + query.limit], len(found))


class InMemorySessionRepository:
    def __init__(self) -> None:
        self.rows: dict[str, Session] = {}

    def add(self, session: Session) -> None:
        self.rows[session.id] = copy.deepcopy(session)

    def get(self, session_id: str) -> Session | None:
        session = self.rows.get(session_id)
        return copy.deepcopy(session) if session else None

    def rotate(self, session_id, *, presented_jti, new_jti, access_jti, access_expires_at, now):
        session = self.rows.get(session_id)
        if session is None or session.current_jti != presented_jti or not session.is_live(now):
            return False
        session.current_jti, session.access_jti = new_jti, access_jti
        session.access_expires_at, session.last_used_at = access_expires_at, now
        return True

    def revoke(
        self, session_id: str, user_id: UserId, now: datetime, *, reason: SessionEnd
    ) -> Session | None:
        session = self.rows.get(session_id)
        if session is None or session.user_id != user_id or not session.is_live(now):
            return None
        before = copy.deepcopy(session)
        session.revoked_at, session.revoked_reason = now, reason
        return before

    def revoke_all(
        self, user_id: UserId, now: datetime, *, reason: SessionEnd, keep: str | None = None
    ):
        ended = []
        for session in self.rows.values():
            access_lives = session.access_expires_at is not None and session.access_expires_at > now
            if (
                session.user_id == user_id
                and session.revoked_at is None
                and (now < session.expires_at or access_lives)
                and session.id != keep
            ):
                ended.append(copy.deepcopy(session))
                session.revoked_at, session.revoked_reason = now, reason
        return ended

    def live_for(self, user_id: UserId, now: datetime) -> list[Session]:
        return [
            copy.deepcopy(s) for s in self.rows.values() if s.user_id == user_id and s.is_live(now)
        ]

    def with_live_access(self, user_id: UserId, now: datetime) -> list[Session]:
        return [
            copy.deepcopy(s)
            for s in self.rows.values()
            if s.user_id == user_id
            and s.access_expires_at is not None
            and s.access_expires_at > now
        ]

    def purge(self, before: datetime) -> int:
        doomed = [
            s.id
            for s in self.rows.values()
            if (
                s.expires_at <= before
                or (s.revoked_at is not None and s.revoked_at <= before and not s.ended_for_reuse)
            )
            and (s.access_expires_at is None or s.access_expires_at <= before)
        ]
        for session_id in doomed:
            del self.rows[session_id]
        return len(doomed)


class InMemoryOneTimeTokens:
    """Given the world's users, remembers each write (`issue`, `consume`, `void`) made while
    its user's row was not locked (`unlocked_writes`): every path locks the user's row before
    it writes their tokens (the lock order, `OneTimeTokens`)."""

    def __init__(self, users: InMemoryUserRepository | None = None) -> None:
        self.rows: dict[str, dict] = {}
        self.unlocked_writes: list[tuple[str, UserId]] = []
        self._users = users

    def _writing(self, operation: str, user_id: UserId) -> None:
        if self._users is not None and user_id.value not in self._users.locked:
            self.unlocked_writes.append((operation, user_id))

    def issue(
        self, user_id: UserId, purpose: TokenPurpose, expires_at: datetime, *, now: datetime
    ) -> str:
        self._writing("issue", user_id)
        self.void(user_id, purpose, now)
        raw = f"tok-{len(self.rows)}"
        self.rows[raw] = {
            "user_id": user_id,
            "purpose": purpose,
            "expires_at": expires_at,
            "used": False,
        }
        return raw

    def consume(self, raw_token: str, purpose: TokenPurpose, now: datetime) -> UserId | None:
        user_id = self.peek(raw_token, purpose, now)
        if user_id is not None:
            self._writing("consume", user_id)
            self.rows[raw_token]["used"] = True
        return user_id

    def peek(self, raw_token: str, purpose: TokenPurpose, now: datetime) -> UserId | None:
        row = self.rows.get(raw_token)
        if row is None or row["used"] or row["purpose"] != purpose or now >= row["expires_at"]:
            return None
        return row["user_id"]

    def void(self, user_id: UserId, purpose: TokenPurpose, now: datetime) -> None:
        self._writing("void", user_id)
        for row in self.rows.values():
            if row["user_id"] == user_id and row["purpose"] == purpose:
                row["used"] = True

    def purge(self, now: datetime) -> int:
        doomed = [k for k, r in self.rows.items() if r["used"] or r["expires_at"] <= now]
        for key in doomed:
            del self.rows[key]
        return len(doomed)


class FakePasswordHasher:
    """'Hashes' by prefixing; counts every verification (the no-enumeration rule) and every
    hash (the real ones are slow)."""

    def __init__(self) -> None:
        self.verifications = 0
        self.hashes = 0

    def hash(self, raw_password: str) -> PasswordHash:
        self.hashes += 1
        return PasswordHash(f"fake${raw_password}")

    def verify(self, raw_password: str, hashed: PasswordHash | None) -> bool:
        self.verifications += 1
        return hashed is not None and hashed.value == f"fake${raw_password}"


class FakePasswordPolicy:
    """Refuses passwords shorter than 8 characters and the word 'password'."""

    def problems(self, password: str, *, email: str, full_name: str) -> list[str]:
        messages = []
        if len(password) < 8:
            messages.append("too short")
        if "password" in password:
            messages.append("too common")
        return messages


class FakeTokenIssuer:
    """Tokens are readable strings `kind|user|session|jti|exp`; any other string is invalid."""

    def __init__(self, clock, access_lifetime: timedelta = timedelta(minutes=30)) -> None:
        self._clock, self._lifetime = clock, access_lifetime
        self.issued: list[IssuedTokens] = []
        self.roles: list[tuple[str, ...]] = []  # what each access token carries

    def issue(self, user: User, session_id: str, refresh_expires_at: datetime) -> IssuedTokens:
        access_jti, refresh_jti = uuid.uuid4().hex, uuid.uuid4().hex
        access_exp = self._clock.now() + self._lifetime
        tokens = IssuedTokens(
            access_token=f"access|{user.id}|{session_id}|{access_jti}|{access_exp.isoformat()}",
            refresh_token=(
                f"refresh|{user.id}|{session_id}|{refresh_jti}|{refresh_expires_at.isoformat()}"
            ),
            access_jti=access_jti,
            access_expires_at=access_exp,
            refresh_jti=refresh_jti,
            refresh_expires_at=refresh_expires_at,
            issued_at=self._clock.now(),
        )
        self.issued.append(tokens)
        self.roles.append(user.roles)
        return tokens

    def read_refresh(
        self, raw_token: str, *, expired_ok: bool = False
    ) -> Result[RefreshClaims, RefreshTokenError]:
        parts = raw_token.split("|")
        if len(parts) != 5 or parts[0] != "refresh":
            return Err(RefreshTokenError.INVALID)
        expires_at = datetime.fromisoformat(parts[4])
        if expires_at <= self._clock.now() and not expired_ok:
            return Err(RefreshTokenError.EXPIRED)
        return Ok(RefreshClaims(UserId(parts[1]), parts[2], parts[3], expires_at))


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send_verification(self, to: Email, token: str) -> None:
        self.sent.append(("verify", to.value, token))

    def send_password_reset(self, to: Email, token: str) -> None:
        self.sent.append(("reset", to.value, token))


class FakeEmailUseCase:
    """An email use case (what `InBackground` runs, such as `RequestPasswordReset`) that notes
    each address and the thread it ran on; with `fail`, raises as a mail server outage would."""

    def __init__(self, *, fail: bool = False) -> None:
        self.seen: list[tuple[str, str]] = []
        self.fail = fail

    def execute(self, email: str) -> None:
        self.seen.append((email, threading.current_thread().name))
        if self.fail:
            raise RuntimeError("mail server down")


class InMemoryEmailQuota:
    """`EmailQuota` of `limit` emails per address, never replenished; `taken` counts asks."""

    def __init__(self, limit: int = 1_000) -> None:
        self.limit = limit
        self.taken: dict[str, int] = {}

    def take(self, to: Email) -> bool:
        self.taken[to.value] = self.taken.get(to.value, 0) + 1
        return self.taken[to.value] <= self.limit


class InlineLoginFailures:
    """`LoginFailures` that counts at once with the given use case (`RecordFailedLogin`), as
    the adapter does when its background pool is switched off; remembers what it counted."""

    def __init__(self, record) -> None:
        self._record = record
        self.recorded: list[tuple[UserId, datetime]] = []

    def record(self, user_id: UserId, at: datetime) -> None:
        self.recorded.append((user_id, at))
        self._record.execute(user_id, at)


class FakeAccountEvents:
    def __init__(self) -> None:
        self.events: list[str] = []

    def registered(self) -> None:
        self.events.append("registered")

    def login(self, outcome: str) -> None:
        self.events.append(f"login:{outcome}")

    def refreshed(self) -> None:
        self.events.append("refreshed")

    def reuse_detected(self) -> None:
        self.events.append("reuse")

    def locked_out(self) -> None:
        self.events.append("locked_out")

    def email_throttled(self, kind: str) -> None:
        self.events.append(f"email_throttled:{kind}")


class FakeTokenRevocations:
    """Records the facts. Given the world's unit of work, refuses a fact written while it is
    open: facts are published once the change they follow from has committed."""

    def __init__(self, uow: FakeUnitOfWork | None = None) -> None:
        self.denied: dict[str, datetime] = {}
        self.denied_sessions: dict[str, datetime] = {}
        self.cutoffs: dict[str, datetime] = {}
        self._uow = uow

    def _outside_the_transaction(self) -> None:
        assert self._uow is None or not self._uow.open, "a revocation fact written before commit"

    def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        self._outside_the_transaction()
        self.denied[token_id] = expires_at

    def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        self._outside_the_transaction()
        self.denied_sessions[session_id] = expires_at

    def revoke_user_tokens(self, user_id: str, issued_before: datetime) -> None:
        self._outside_the_transaction()
        self.cutoffs[user_id] = issued_before


def make_user(clock, email: str = "alice@example.com", password: str = "s3cret-pass", **fields):  # noqa: S107
    """A verified, active user whose password is `password` under `FakePasswordHasher`."""
    user = User.register(
        email=Email(email),
        password_hash=FakePasswordHasher().hash(password),
        full_name="Alice",
        now=clock.now(),
    )
    user.email_verified = True
    return replace(user, **fields) if fields else user
