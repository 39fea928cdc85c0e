"""The `User` entity: lifecycle (statuses and their legal transitions), login rules, lockout."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.domain.accounts.values import (
    ADMIN_ROLE,
    DEFAULT_ROLES,
    Email,
    PasswordHash,
    UserId,
    valid_roles,
)
from core.domain.shared.identity import is_revoked


class UserStatus(StrEnum):
    """Where a user is in their lifecycle; `deleted` is terminal (soft delete)."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"
    DELETED = "deleted"


_TRANSITIONS: dict[UserStatus, frozenset[UserStatus]] = {
    UserStatus.ACTIVE: frozenset({UserStatus.INACTIVE, UserStatus.SUSPENDED, UserStatus.DELETED}),
    UserStatus.INACTIVE: frozenset({UserStatus.ACTIVE, UserStatus.DELETED}),
    UserStatus.SUSPENDED: frozenset({UserStatus.ACTIVE, UserStatus.DELETED}),
    UserStatus.DELETED: frozenset(),
}


def can_transition(current: UserStatus, target: UserStatus) -> bool:
    """Staying put is always legal; otherwise only the edges above."""
    return current == target or target in _TRANSITIONS[current]


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """After `max_failures` wrong passwords in a row the account is locked for `lock_for`."""

    max_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(slots=True)
class User:
    """A person with an account."""

    id: UserId
    email: Email
    password_hash: PasswordHash
    created_at: datetime
    full_name: str = ""
    status: UserStatus = UserStatus.ACTIVE
    email_verified: bool = False
    roles: tuple[str, ...] = DEFAULT_ROLES
    is_staff: bool = False
    last_login_at: datetime | None = None
    tokens_valid_after: datetime | None = None
    failed_logins: int = 0
    locked_until: datetime | None = None
    sessions_ended_at: datetime | None = None

    @classmethod
    def register(
        cls, *, email: Email, password_hash: PasswordHash, full_name: str, now: datetime
    ) -> User:
        """A new user: active, unverified, with the default roles — whatever the client sent."""
        user = cls(id=UserId.new(), email=email, password_hash=password_hash, created_at=now)
        user.rename(full_name)
        return user

    def rename(self, full_name: str) -> None:
        """The name as it is kept: without the blanks around it."""
        self.full_name = full_name.strip()

    def assign_roles(self, roles: Iterable[str]) -> bool:
        """Hold `roles`, each once in the order given; False (and no change) when one is not a
        role (`is_valid_role`). An administrator who loses the admin role loses Django admin
        too (`is_staff`): demoted over the API, they kept a superuser's admin, where they could
        give the role back."""
        kept = valid_roles(roles)
        if kept is None:
            return False
        if self.is_admin and ADMIN_ROLE not in kept:
            self.is_staff = False
        self.roles = kept
        return True

    def make_staff(self) -> None:
        """Let the user into Django admin (`is_staff`): the platform's own administrators."""
        self.is_staff = True

    def can_login(self) -> bool:
        """Only active users with a verified email may log in."""
        return self.status == UserStatus.ACTIVE and self.email_verified

    def may_reset_password(self) -> bool:
        """Any account not deleted may be mailed a reset link (and use it)."""
        return self.status != UserStatus.DELETED

    def awaits_verification(self) -> bool:
        """An active account whose address is not verified yet may be mailed a fresh link."""
        return self.status == UserStatus.ACTIVE and not self.email_verified

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @property
    def administers(self) -> bool:
        """An admin who can sign in (`can_login`): someone able to administer the platform."""
        return self.is_admin and self.can_login()

    @property
    def holds_email(self) -> bool:
        """Whether the account holds its address, so no other account may take it. A deleted
        one does not: a soft delete stands for removal (as Keycloak's delete is), so the
        address may register again, and the answer to it says nothing of the account that
        was there. The deleted account keeps showing admins the address it had."""
        return self.status != UserStatus.DELETED

    @property
    def is_final(self) -> bool:
        """A deleted account is final: no status, role, name or flag of it changes again."""
        return self.status == UserStatus.DELETED

    def change_status(self, target: UserStatus) -> bool:
        """Move to `target` if the transition is legal; False (and no change) otherwise."""
        if not can_transition(self.status, target):
            return False
        self.status = target
        return True

    def ends_sessions_on(self, target: UserStatus) -> bool:
        """Leaving `active` for any other status ends every session of the user."""
        return self.status == UserStatus.ACTIVE and target != UserStatus.ACTIVE

    def verify_email(self) -> None:
        self.email_verified = True

    def unverify_email(self) -> None:
        """An admin takes the verification back: no login until the address is verified."""
        self.email_verified = False

    def revoke_tokens(self, now: datetime) -> None:
        """Every token issued before `now` stops working (the durable cut-off)."""
        self.tokens_valid_after = now

    def end_sessions(self, now: datetime) -> None:
        """Every session of the user ends: every token issued before `now` stops working
        (`revoke_tokens`), and so does every browser sign-in (Django admin's cookie session,
        which `sessions_ended_at` is part of). A change of roles revokes tokens only: the
        sessions, and a signed-in admin page, go on."""
        self.revoke_tokens(now)
        self.sessions_ended_at = now

    @property
    def tokens_valid_from(self) -> datetime | None:
        """The first whole second whose tokens the cut-off keeps: `tokens_valid_after` rounded
        up. `iat` has whole seconds, so a token of the cut-off's own second may predate it (a
        role taken away at .5 s, a token minted at .1 s) and that whole second is refused; no
        token is minted for the user before this (login and refresh wait for it)."""
        cutoff = self.tokens_valid_after
        if cutoff is None:
            return None
        whole = cutoff.replace(microsecond=0)
        return whole if whole == cutoff else whole + timedelta(seconds=1)

    def honours_token(
        self,
        issued_at: datetime,
        *,
        roles: frozenset[str] = frozenset(),
        session_revoked: bool = False,
    ) -> bool:
        """Whether an access token issued at `issued_at` carrying `roles` may still act for
        this user, by what the database holds: only an active user's tokens, none issued before
        the durable cut-off's next whole second (`tokens_valid_from`), none of a session
        (refresh family) that was revoked, and none carrying a role the user no longer has. The
        cut-off compares whole seconds, as `iat` and the cache's cut-off (published as that
        same second) do (`is_revoked`), so both say the same about every token."""
        if self.status != UserStatus.ACTIVE or not roles <= set(self.roles):
            return False
        valid_from = self.tokens_valid_from
        return not is_revoked(
            issued_at=int(issued_at.timestamp()),
            token_denied=False,
            user_valid_after=None if valid_from is None else int(valid_from.timestamp()),
            session_revoked=session_revoked,
        )

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def record_failed_login(self, now: datetime, policy: LockoutPolicy) -> bool:
        """Count a wrong password; True when this failure locks the account.

        A failure seen while the account is locked counts for nothing: wrong passwords checked
        at once all found it unlocked, and once one of them has locked it the others, recorded
        after it, must neither lock it again (a lockout counted each time) nor extend the lock.
        """
        if self.is_locked(now):
            return False
        if self.locked_until is not None and now >= self.locked_until:
            self.failed_logins = 0
            self.locked_until = None
        self.failed_logins += 1
        if self.failed_logins >= policy.max_failures:
            self.locked_until = now + policy.lock_for
            self.failed_logins = 0
            return True
        return False

    def record_login(self, now: datetime) -> None:
        """A successful login clears the failure count."""
        self.failed_logins = 0
        self.locked_until = None
        self.last_login_at = now


def leaves_no_admin(before: User, after: User, admins: Iterable[User]) -> bool:
    """Whether changing `before` into `after` leaves nobody able to administer the platform:
    `before` administers, `after` does not (the `admin` role taken away, `active` left, the
    email verification taken back) and none of the other `admins` does. Such a change is
    refused, as GitLab refuses to demote a group's last owner: an admin who suspended or
    demoted the last admin, themself included, locked everyone out of the API."""
    return not after.administers and removal_leaves_no_admin([before], admins)


def removal_leaves_no_admin(removed: Iterable[User], admins: Iterable[User]) -> bool:
    """Whether taking `removed` away (deleted for good, or no longer administering) leaves
    nobody able to administer the platform: one of them administers and none of the other
    `admins` does. Refused as `leaves_no_admin` is: deleting the last admins, oneself among
    them, locked everyone out of the API as demoting them did."""
    leaving = list(removed)
    if not any(user.administers for user in leaving):
        return False
    gone = {user.id for user in leaving}
    return not any(admin.administers for admin in admins if admin.id not in gone)
