"""Logging in and out: AuthenticateUser, RefreshTokens, Logout, LogoutAll."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.user import LockoutPolicy, User, UserStatus
from core.domain.accounts.values import Email, UserId
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts._revocation import (
    EndsUserSessions,
    deny_session_tokens,
    deny_tokens_of_ended,
    end_user_sessions,
)
from core.usecases.accounts.caller import CurrentUserError, acting_for
from core.usecases.accounts.ports import (
    AccountEvents,
    Clock,
    IssuedTokens,
    LoginFailures,
    MomentWaiter,
    PasswordHasher,
    RefreshClaims,
    RefreshTokenError,
    SessionRepository,
    TokenIssuer,
    TokenRevocations,
    UnitOfWork,
    UserRepository,
)

# How long a mint waits at most for a cut-off's second (`_await_cut_off`).
MAX_CUT_OFF_WAIT = timedelta(seconds=1)


def _cut_off_wait(user: User, clock: Clock) -> datetime | None:
    """Until when a mint for `user` waits (None: not at all): the first second whose tokens
    their cut-off keeps (`User.tokens_valid_from`), when it is less than `MAX_CUT_OFF_WAIT`
    away. Within the cut-off's own second a token would be refused on arrival, `iat` having
    whole seconds. A cut-off further ahead comes from a clock running ahead: waiting would
    not make the token good (it is refused until the clocks agree, as any token of that
    server's future would be) and would hold the thread as long."""
    valid_from, now = user.tokens_valid_from, clock.now()
    if valid_from is None or valid_from <= now or valid_from - now > MAX_CUT_OFF_WAIT:
        return None
    return valid_from


def _await_cut_off(user: User, clock: Clock, waiter: MomentWaiter) -> None:
    """Hold a mint for `user` until `_cut_off_wait` says. Login waits before it takes the
    user's row lock (and under it only for a cut-off committed while the password was
    hashed); refresh only for a token that rotates, and not holding the lock."""
    until = _cut_off_wait(user, clock)
    if until is not None:
        waiter.sleep_until(until)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A user and the token pair just issued to them."""

    user: User
    tokens: IssuedTokens


class AuthenticateError(StrEnum):
    """Why a login was refused; the first is deliberately vague."""

    INVALID_CREDENTIALS = "invalid_credentials"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    ACCOUNT_INACTIVE = "account_inactive"


@dataclass(frozen=True, slots=True)
class Credentials:
    email: str
    password: str
    user_agent: str = ""
    ip: str = ""


class RecordFailedLogin:
    """Count a wrong password against an account; enough in a row lock it (`LockoutPolicy`)."""

    def __init__(
        self,
        *,
        users: UserRepository,
        uow: UnitOfWork,
        events: AccountEvents,
        lockout: LockoutPolicy,
    ) -> None:
        self._users, self._uow, self._events, self._lockout = users, uow, events, lockout

    def execute(self, user_id: UserId, at: datetime) -> Result[None, None]:
        with self._uow:
            user = self._users.get_for_update(user_id)
            if user is None:  # deleted meanwhile
                return Ok(None)
            if user.record_failed_login(at, self._lockout):
                self._events.locked_out()
            self._users.save(user)
            self._uow.commit()
        return Ok(None)


def _refusal(
    user: User | None, now: datetime, *, password_matches: bool
) -> tuple[str, AuthenticateError] | None:
    """Why a login is refused (the outcome counted, the error answered), in the order that
    says nothing about the account before the right password; None when it may go on."""
    if user is None or user.status == UserStatus.DELETED:
        return "unknown_user", AuthenticateError.INVALID_CREDENTIALS
    if user.is_locked(now):
        return "locked", AuthenticateError.INVALID_CREDENTIALS
    if not password_matches:
        return "wrong_password", AuthenticateError.INVALID_CREDENTIALS
    if user.status != UserStatus.ACTIVE:
        return "inactive", AuthenticateError.ACCOUNT_INACTIVE
    if not user.email_verified:
        return "unverified", AuthenticateError.EMAIL_NOT_VERIFIED
    return None


class VerifyCredentials:
    """Check an email and password as login does, without opening a session (AuthenticateUser
    opens one; Django admin's sign-in has its own).

    Unknown email, wrong password and a locked account look the same from outside, and each
    runs the hasher exactly once. A wrong password for a known account is counted through
    `failures` (off the request in production), so that refusal does not take longer than the
    one for an unknown address either. Only after the right password do we say what else is
    wrong.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        hasher: PasswordHasher,
        clock: Clock,
        events: AccountEvents,
        failures: LoginFailures,
    ) -> None:
        self._users, self._hasher, self._clock = users, hasher, clock
        self._events, self._failures = events, failures

    def execute(self, credentials: Credentials) -> Result[User, AuthenticateError]:
        email = Email.lookup(credentials.email)
        user = self._users.by_email(email) if email is not None else None
        matches = self._hasher.verify(
            credentials.password, user.password_hash if user is not None else None
        )
        now = self._clock.now()
        refusal = _refusal(user, now, password_matches=matches)
        if refusal is None:
            assert user is not None, "no refusal means a user"
            return Ok(user)
        if user is not None and refusal[0] == "wrong_password":
            self._failures.record(user.id, now)
        self._events.login(refusal[0])
        return Err(refusal[1])


class AuthenticateUser:
    """Check a password (`VerifyCredentials`) and open a session (a new refresh family)."""

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        uow: UnitOfWork,
        clock: Clock,
        events: AccountEvents,
        failures: LoginFailures,
        session_lifetime: timedelta,
        waiter: MomentWaiter,
    ) -> None:
        self._users, self._sessions, self._issuer = users, sessions, issuer
        self._uow, self._clock, self._events = uow, clock, events
        self._lifetime, self._waiter = session_lifetime, waiter
        self._verify = VerifyCredentials(
            users=users, hasher=hasher, clock=clock, events=events, failures=failures
        )

    def execute(self, credentials: Credentials) -> Result[SignedIn, AuthenticateError]:
        verified = self._verify.execute(credentials)
        if verified.is_err():
            return Err(verified.unwrap_err())
        user = verified.unwrap()
        # Right after a cut-off, wait before the row lock, not holding it.
        _await_cut_off(user, self._clock, self._waiter)
        now = self._clock.now()
        with self._uow:
            # Read again under the row lock, and mint from that row: a change committed while
            # we were hashing (a suspension, new roles, a lock, a new password) decides, and
            # one that waits for this lock then finds the new session to end or deny.
            fresh = self._users.get_for_update(user.id)
            changed = fresh is not None and fresh.password_hash != user.password_hash
            refusal = _refusal(fresh, now, password_matches=not changed)
            if refusal is not None:
                return self._refuse(*refusal)
            assert fresh is not None, "no refusal means a user"
            if fresh.tokens_valid_after != user.tokens_valid_after:  # cut off while hashing
                _await_cut_off(fresh, self._clock, self._waiter)
            session = Session.start(
                user_id=fresh.id,
                now=self._clock.now(),
                lifetime=self._lifetime,
                user_agent=credentials.user_agent,
                ip=credentials.ip,
            )
            tokens = self._issuer.issue(fresh, session.id, session.expires_at)
            session.current_jti = tokens.refresh_jti
            session.access_jti = tokens.access_jti
            session.access_expires_at = tokens.access_expires_at
            fresh.record_login(now)
            self._users.save(fresh)
            self._sessions.add(session)
            self._uow.commit()
        self._events.login("success")
        return Ok(SignedIn(fresh, tokens))

    def _refuse(self, outcome: str, error: AuthenticateError) -> Err[AuthenticateError]:
        self._events.login(outcome)
        return Err(error)


class RefreshError(StrEnum):
    """Why a refresh token was refused."""

    INVALID = "token_invalid"
    EXPIRED = "token_expired"
    REUSED = "token_reused"
    ACCOUNT_INACTIVE = "account_inactive"


class RefreshTokens:
    """Rotate a refresh token: the family's current token buys a new pair, exactly once.

    The happy path is two statements in one short transaction: read the user under a row lock,
    compare-and-swap the family's current jti. A token that lost the swap was already used:
    that is reuse, and the whole family ends. The lock orders the refresh with every change of
    the user's roles or status (they lock the row too): the new pair is minted either from the
    changed row, or before the change, which then finds the new access token to deny.

    Right after a cut-off (a change of roles), within its second, the pair waits for the
    cut-off's next second: the lock is let go, the family is read to see whether this token
    rotates at all (a refused token waits for nothing), and the rotation runs again after the
    wait, under the lock, from the user as it then is. Only that rare path reads the family
    first; a token minted after a second cut-off that lands during the wait is refused at
    once, and the client refreshes again.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        issuer: TokenIssuer,
        revocations: TokenRevocations,
        uow: UnitOfWork,
        clock: Clock,
        events: AccountEvents,
        waiter: MomentWaiter,
    ) -> None:
        self._users, self._sessions, self._issuer = users, sessions, issuer
        self._revocations, self._uow = revocations, uow
        self._clock, self._events, self._waiter = clock, events, waiter

    def execute(self, raw_token: str) -> Result[SignedIn, RefreshError]:
        match self._issuer.read_refresh(raw_token):
            case Err(RefreshTokenError.EXPIRED):
                return Err(RefreshError.EXPIRED)
            case Err(_):
                return Err(RefreshError.INVALID)
            case Ok(claims):
                pass
        rotation = self._rotate(claims)
        if rotation.is_err():
            return Err(rotation.unwrap_err())
        user, tokens, waits = rotation.unwrap()
        now = self._clock.now()
        session: Session | None = None
        if waits:
            session = self._sessions.get(claims.session_id)
            if session is not None and session.current_jti == claims.jti and session.is_live(now):
                rotation = self._rotate(claims, after_waiting_for=user)  # unlocked wait
                if rotation.is_err():
                    return Err(rotation.unwrap_err())
                user, tokens, _ = rotation.unwrap()
                now = self._clock.now()
                session = None  # it may have changed meanwhile
        if tokens is not None:
            self._events.refreshed()
            return Ok(SignedIn(user, tokens))
        if session is None:  # not read yet (or read before a wait)
            session = self._sessions.get(claims.session_id)
        if session is None or session.user_id != user.id:
            return Err(RefreshError.INVALID)
        if session.ended_for_reuse:  # said of each of its tokens, whoever presents it
            return Err(RefreshError.REUSED)
        if not session.is_live(now):
            return Err(RefreshError.INVALID)
        # The family lives but its current token is another one: this one was already used.
        # The family as revoked under its row lock knows its latest access token.
        ended = self._sessions.revoke(session.id, user.id, now, reason=SessionEnd.REUSE)
        deny_session_tokens(self._revocations, ended or session)
        self._events.reuse_detected()
        return Err(RefreshError.REUSED)

    def _rotate(
        self, claims: RefreshClaims, *, after_waiting_for: User | None = None
    ) -> Result[tuple[User, IssuedTokens | None, bool], RefreshError]:
        """Under the user's row lock: (the user, the new pair or None when this token did not
        rotate, whether it must first wait for a cut-off's second). `after_waiting_for`: the
        user as last read, whose cut-off's second is waited for first, before the lock; the
        rotation then does not wait again."""
        waited = after_waiting_for is not None
        if after_waiting_for is not None:  # (spelled out for the type checker)
            _await_cut_off(after_waiting_for, self._clock, self._waiter)
        with self._uow:
            user = self._users.get_for_update(claims.user_id)
            if user is None or user.is_final:  # a soft delete stands for removal, as at login
                return Err(RefreshError.INVALID)
            if not user.can_login():
                return Err(RefreshError.ACCOUNT_INACTIVE)
            if not waited and _cut_off_wait(user, self._clock) is not None:
                return Ok((user, None, True))  # the lock goes; the caller decides on a wait
            tokens = self._issuer.issue(user, claims.session_id, claims.expires_at)
            rotated = self._sessions.rotate(
                claims.session_id,
                presented_jti=claims.jti,
                new_jti=tokens.refresh_jti,
                access_jti=tokens.access_jti,
                access_expires_at=tokens.access_expires_at,
                now=self._clock.now(),
            )
            self._uow.commit()
        return Ok((user, tokens if rotated else None, False))


class LogoutError(StrEnum):
    """Why a logout was refused."""

    INVALID = "token_invalid"


class Logout:
    """End the session of a refresh token (every access token of it) and deny the access
    token presented with it. Sent again, it denies them again (the session's end is kept).

    A refresh token past its expiry is taken too (as Keycloak's logout takes it): its family
    has ended, but the access token presented with it may have minutes left, and logging out
    must end that one as well.
    """

    def __init__(
        self,
        *,
        sessions: SessionRepository,
        issuer: TokenIssuer,
        revocations: TokenRevocations,
        clock: Clock,
    ) -> None:
        self._sessions, self._issuer = sessions, issuer
        self._revocations, self._clock = revocations, clock

    def execute(self, principal: Principal, refresh_token: str) -> Result[None, LogoutError]:
        claims = self._issuer.read_refresh(refresh_token, expired_ok=True)
        if claims.is_err() or claims.unwrap().user_id.value != principal.user_id:
            return Err(LogoutError.INVALID)
        session_id, user_id = claims.unwrap().session_id, claims.unwrap().user_id
        ended = self._sessions.revoke(
            session_id, user_id, self._clock.now(), reason=SessionEnd.LOGOUT
        )
        # Ended now or before (a retry): every 204 has denied all the session's access tokens.
        deny_tokens_of_ended(self._revocations, self._sessions, session_id, user_id, ended)
        self._revocations.revoke_token(principal.token_id, principal.expires_at)
        return Ok(None)


class LogoutAll(EndsUserSessions):
    """End every session of a user; every token issued so far stops working.

    The API's caller ends their own (`caller`): refused if the database revokes the caller's
    token. The admin ends anyone's (no caller).
    """

    def execute(
        self, user_id: str, *, caller: Principal | None = None
    ) -> Result[None, CurrentUserError]:
        assert caller is None or caller.user_id == user_id, "a caller ends only their own sessions"
        now = self._clock.now()
        with self._uow:
            if caller is not None:
                acting = acting_for(self._users, caller, lock=True)
                if acting.is_err():
                    return Err(acting.unwrap_err())
                user: User | None = acting.unwrap()
            else:
                user = self._users.get_for_update(UserId(user_id))
            if user is not None:
                user.end_sessions(now)
                self._users.save(user)
            revocation = end_user_sessions(
                user_id=UserId(user_id),
                now=now,
                sessions=self._sessions,
                # The API's caller logs out everywhere; without one, an operator ends them.
                reason=SessionEnd.LOGOUT_ALL if caller is not None else SessionEnd.ADMIN,
            )
            self._uow.commit()
        revocation.publish(self._revocations)
        return Ok(None)
