"""Administration of users: ListUsers, GetUser, UpdateUser, DeleteUsers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from core.domain.accounts.sessions import SessionEnd
from core.domain.accounts.user import User, UserStatus, leaves_no_admin, removal_leaves_no_admin
from core.domain.accounts.values import ADMIN_ROLE, UserId, valid_roles
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts._revocation import EndsUserSessions, Revocation, end_user_sessions
from core.usecases.accounts.caller import CurrentUserError, acting_for
from core.usecases.accounts.ports import (
    UserPage,
    UserQuery,
    UserRepository,
)


class ListUsers:
    """A filtered page of users, unless the database revokes the caller's token."""

    def __init__(self, *, users: UserRepository) -> None:
        self._users = users

    def execute(self, caller: Principal, query: UserQuery) -> Result[UserPage, CurrentUserError]:
        acting = acting_for(self._users, caller)
        if acting.is_err():
            return Err(acting.unwrap_err())
        return Ok(self._users.search(query))


class GetUserError(StrEnum):
    """Why a user could not be shown."""

    FORBIDDEN = "permission_denied"
    NOT_FOUND = "not_found"


class GetUser:
    """One user, for an admin or for the user themself."""

    def __init__(self, *, users: UserRepository) -> None:
        self._users = users

    def execute(
        self, principal: Principal, user_id: str
    ) -> Result[User, GetUserError | CurrentUserError]:
        """`user_id` as the client wrote it: any case, or not a UUID at all (not found).
        Refused first if the database revokes the caller's token."""
        acting = acting_for(self._users, principal)
        if acting.is_err():
            return Err(acting.unwrap_err())
        uid = UserId.parse(user_id)
        itself = uid is not None and uid.value == principal.user_id
        if not principal.is_admin and not itself:
            return Err(GetUserError.FORBIDDEN)
        user = self._users.get(uid) if uid is not None else None
        return Ok(user) if user is not None else Err(GetUserError.NOT_FOUND)


class UpdateUserError(StrEnum):
    """Why an admin change was refused."""

    NOT_FOUND = "not_found"
    ILLEGAL_TRANSITION = "illegal_status_transition"
    INVALID_ROLE = "invalid_role"
    USER_DELETED = "user_deleted"
    LAST_ADMIN_ROLE = "last_admin_role"
    """Taking `admin` away would leave no active admin (`leaves_no_admin`)."""
    LAST_ADMIN_STATUS = "last_admin_status"
    """Leaving `active` would leave no active admin (`leaves_no_admin`)."""
    LAST_ADMIN_VERIFICATION = "last_admin_verification"
    """Taking the email verification back would leave no admin who can sign in."""


@dataclass(frozen=True, slots=True)
class UserChanges:
    """What an admin asked to change; None leaves a field alone."""

    status: UserStatus | None = None
    roles: tuple[str, ...] | None = None
    full_name: str | None = None
    email_verified: bool | None = None

    @property
    def may_end_an_admin(self) -> bool:
        """Whether this change could leave its user no admin who can sign in
        (`User.administers`), whoever the user is: a status but `active`, roles without
        `admin`, the verification taken back. Only such a change locks the admins."""
        return (
            (self.status is not None and self.status != UserStatus.ACTIVE)
            or (self.roles is not None and ADMIN_ROLE not in self.roles)
            or self.email_verified is False
        )


def _asks_a_revocation(changes: UserChanges) -> bool:
    """Whether `changes` revoke the user's tokens when they change anything: a status other
    than active, or the roles."""
    return (changes.status is not None and changes.status != UserStatus.ACTIVE) or (
        changes.roles is not None
    )


class UpdateUser(EndsUserSessions):
    """Change a user's status, roles or name; leaving `active` ends all their sessions.

    A change of roles revokes the user's access tokens (they carry the old roles) but keeps
    their sessions, so the next refresh carries the new roles. The revocation facts are
    published once the change has committed: a refresh reads the user under the row lock this
    change holds, so it either committed before (and its new access token is among those
    denied) or reads the changed row.

    A change that would leave nobody able to administer (`leaves_no_admin`) is refused, for
    the API's admin and the Django admin alike, the caller themself included. A change that
    could end an admin first locks every active admin's row with the user's, in id order
    (`UserRepository.lock_active_admins`), and counts the others under those locks: two
    admins demoting each other at once are decided one after the other, and the second
    finds no other admin left. A change of anything else locks the user's row alone.
    """

    def execute(
        self, user_id: str, changes: UserChanges, *, caller: Principal | None = None
    ) -> Result[User, UpdateUserError | CurrentUserError]:
        """With `caller` (the API's admin): refused first if the database revokes the
        caller's token. The Django admin passes none: its sign-in is Django's own."""
        if caller is not None:
            acting = acting_for(self._users, caller)
            if acting.is_err():
                return Err(acting.unwrap_err())
        if changes.roles is not None and valid_roles(changes.roles) is None:
            return Err(UpdateUserError.INVALID_ROLE)  # before anything is read or locked
        uid = UserId.parse(user_id)
        now = self._clock.now()
        revocation = Revocation()
        with self._uow:
            # Locked first, before the user's own row: the one order of paths that lock
            # several users. Unlocked, no admin counts, so a change that ended one is refused.
            admins = (
                self._users.lock_active_admins(with_users=[uid])
                if uid is not None and changes.may_end_an_admin
                else []
            )
            user = self._users.get_for_update(uid) if uid is not None else None
            if user is None:
                return Err(UpdateUserError.NOT_FOUND)
            before = replace(user)
            was_final = user.is_final
            ends_sessions = False
            if changes.status is not None:
                ends_sessions = user.ends_sessions_on(changes.status)
                if not user.change_status(changes.status):
                    return Err(UpdateUserError.ILLEGAL_TRANSITION)
            if was_final:  # no status change was asked (any would have been illegal)
                return Err(UpdateUserError.USER_DELETED)
            roles_changed = changes.roles is not None and set(changes.roles) != set(user.roles)
            if changes.roles is not None:
                user.assign_roles(changes.roles)  # valid: checked above
            if changes.full_name is not None:
                user.rename(changes.full_name)
            if changes.email_verified is True:
                user.verify_email()
            elif changes.email_verified is False:
                user.unverify_email()
            if leaves_no_admin(before, user, admins):
                return Err(_last_admin_lost_by(user))
            if ends_sessions:
                user.end_sessions(now)
                revocation = end_user_sessions(
                    user_id=user.id,
                    now=now,
                    sessions=self._sessions,
                    reason=SessionEnd.ACCOUNT_STATUS,
                )
            elif roles_changed:
                user.revoke_tokens(now)
                revocation = Revocation(
                    last_tokens=tuple(self._sessions.live_for(user.id, now)),
                    user_id=user.id,
                    issued_before=now,
                )
            elif _asks_a_revocation(changes) and user.tokens_valid_after is not None:
                # Nothing left to change, maybe because this is the retry of a change whose
                # first try committed after its 503 or lost its facts (Redis down): the durable
                # cut-off again, which refuses no token the database does not refuse already.
                revocation = Revocation(user_id=user.id, issued_before=user.tokens_valid_after)
            if user != before:  # a change to what is kept already writes nothing
                self._users.save(user)
            self._uow.commit()
        revocation.publish(self._revocations)
        return Ok(user)


def _last_admin_lost_by(user: User) -> UpdateUserError:
    """Which part of the change (as `user` would be after it) ended the last admin."""
    if user.status != UserStatus.ACTIVE:
        return UpdateUserError.LAST_ADMIN_STATUS
    if not user.is_admin:
        return UpdateUserError.LAST_ADMIN_ROLE
    return UpdateUserError.LAST_ADMIN_VERIFICATION


class DeleteUsersError(StrEnum):
    """Why a delete of users was refused."""

    LAST_ADMIN = "last_admin"
    """The delete would leave no active admin (`removal_leaves_no_admin`)."""


class DeleteUsers(EndsUserSessions):
    """Remove users for good (Django admin's delete), every session of theirs ended first.

    Refused, with nothing deleted and nothing ended, when it would leave nobody able to
    administer (`removal_leaves_no_admin`), as `UpdateUser` refuses to end the last admin:
    deleting oneself or every admin at once. Any delete could end an admin, as a status
    `deleted` could, whoever the users were before their rows are locked; so it first locks
    every active admin's row with the users', in id order (`lock_active_admins`), and counts
    the others under those locks: two admins deleting each other at once are decided one
    after the other, and the second finds no other admin left. Locked first, the users' rows
    are also taken before the rows that refer to them, which the delete removes first (the
    lock order of `OneTimeTokens`). The revocation facts are published once the unit of work
    has committed.
    """

    def execute(self, user_ids: Iterable[str]) -> Result[int, DeleteUsersError]:
        """How many users were deleted; ids that name no user (or none any more) are
        passed over."""
        ids = sorted(
            {uid for raw in user_ids if (uid := UserId.parse(raw)) is not None},
            key=lambda uid: uid.value,
        )
        now = self._clock.now()
        with self._uow:
            admins = self._users.lock_active_admins(with_users=ids) if ids else []
            users = [user for uid in ids if (user := self._users.get_for_update(uid)) is not None]
            if removal_leaves_no_admin(users, admins):
                return Err(DeleteUsersError.LAST_ADMIN)
            # Their access tokens would otherwise act for users who no longer exist until
            # they expire: the gateway checks only the cache's facts.
            revocations = [
                end_user_sessions(
                    user_id=user.id, now=now, sessions=self._sessions, reason=SessionEnd.ADMIN
                )
                for user in users
            ]
            self._users.delete([user.id for user in users])
            self._uow.commit()
        for revocation in revocations:
            revocation.publish(self._revocations)
        return Ok(len(users))
