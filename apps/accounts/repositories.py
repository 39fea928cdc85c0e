"""Django ORM repositories of the accounts context (database `default`).

Each maps rows to domain entities in `_to_domain` / `_to_row`; nothing outside this module and
`models.py` sees a row. No business rule lives here, only storage (and the atomic swaps).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import datetime

from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.db.models.sql import InsertQuery

from apps.accounts.models import OneTimeToken, RefreshSession
from apps.accounts.models import User as UserRow
from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.user import User, UserStatus
from core.domain.accounts.values import (
    ADMIN_ROLE,
    Email,
    PasswordHash,
    UserId,
    email_query_spellings,
)
from core.usecases.accounts.ports import TokenOwner, TokenPurpose, UserPage, UserQuery

DB = "default"
# Roles are slugs, so their quoted form in the JSON text is exact (and portable), as in `search`.
_ADMIN_JSON = f'"{ADMIN_ROLE}"'


def released_address(user_id: str) -> str:
    """What `email` holds for an account that no longer holds its address (a deleted one):
    unique, and in `.invalid` (RFC 2606), which no mail reaches."""
    return f"{user_id}@deleted.invalid"


def _to_domain(row: UserRow) -> User:
    return User(
        id=UserId(str(row.id)),
        # A deleted account's own address, which its `email` no longer holds.
        email=Email(row.deleted_email or row.email),
        password_hash=PasswordHash(row.password),
        created_at=row.created_at,
        full_name=row.full_name,
        status=UserStatus(row.status),
        email_verified=row.email_verified,
        roles=tuple(row.roles or ()),
        is_staff=row.is_staff,
        last_login_at=row.last_login,
        tokens_valid_after=row.tokens_valid_after,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        sessions_ended_at=row.sessions_ended_at,
    )


def _to_row(user: User, row: UserRow | None = None) -> UserRow:
    row = row or UserRow(id=user.id.value, created_at=user.created_at)
    if user.holds_email:
        row.email, row.deleted_email = user.email.value, ""
    else:  # released for another account to register (`User.holds_email`)
        row.email, row.deleted_email = released_address(user.id.value), user.email.value
    row.password = user.password_hash.value
    row.full_name = user.full_name
    row.status = user.status.value
    row.email_verified = user.email_verified
    row.roles = list(user.roles)
    row.is_staff = user.is_staff
    row.last_login = user.last_login_at
    row.tokens_valid_after = user.tokens_valid_after
    row.failed_logins = user.failed_logins
    row.locked_until = user.locked_until
    row.sessions_ended_at = user.sessions_ended_at
    return row


class DjangoUserRepository:
    """`UserRepository` on the `accounts_user` table."""

    def get(self, user_id: UserId) -> User | None:
        row = UserRow.objects.using(DB).filter(pk=user_id.value).first()
        return _to_domain(row) if row is not None else None

    def get_for_update(self, user_id: UserId) -> User | None:
        row = UserRow.objects.using(DB).select_for_update().filter(pk=user_id.value).first()
        return _to_domain(row) if row is not None else None

    def lock_active_admins(self, *, with_users: Collection[UserId]) -> list[User]:
        # One statement, ordered by id: PostgreSQL locks the rows in that order (on SQLite,
        # whose writers take the whole database, `select_for_update` is a no-op). A row
        # changed meanwhile is read again once its lock is taken, and left out if it no
        # longer matches: an admin demoted by the change this one waited for is not counted.
        admins = Q(
            status=UserStatus.ACTIVE.value, email_verified=True, roles_text__contains=_ADMIN_JSON
        )
        rows = (
            UserRow.objects.using(DB)
            .annotate(roles_text=Cast("roles", TextField()))
            .filter(admins | Q(pk__in=[user_id.value for user_id in with_users]))
            .select_for_update()
            .order_by("pk")
        )
        return [user for user in map(_to_domain, rows) if user.administers]

    def token_owner(
        self, user_id: UserId, session_id: str | None, *, lock: bool = False
    ) -> TokenOwner | None:
        rows = UserRow.objects.using(DB).filter(pk=user_id.value)
        if session_id is not None:  # the session's state rides along in the same query
            revoked = RefreshSession.objects.filter(
                pk=session_id, user_id=OuterRef("pk"), revoked_at__isnull=False
            )
            rows = rows.annotate(session_revoked=Exists(revoked))
        if lock:
            rows = rows.select_for_update()
        row = rows.first()
        if row is None:
            return None
        return TokenOwner(_to_domain(row), bool(getattr(row, "session_revoked", False)))

    def by_email(self, email: Email) -> User | None:
        row = UserRow.objects.using(DB).filter(email=email.value).first()
        return _to_domain(row) if row is not None else None

    def add(self, user: User) -> bool:
        row = _to_row(user)
        # The domain's `is_staff` means "may use Django admin". The platform defines no finer
        # Django permission sets (groups, model permissions), so a staff user without every
        # permission would open /admin/ and find nothing to view or change: a staff user the
        # platform creates (the provisioned administrator) is a Django superuser. Finer
        # grants, if ever wanted, are made in the admin itself, not here.
        row.is_superuser = user.is_staff
        # `INSERT ... ON CONFLICT (email) DO NOTHING RETURNING id`: a taken address is no
        # error, and the answer is the insert's own, in one statement. (A read-back after it
        # is another snapshot: the holder's delete, committed in between, hid both rows.) A
        # refused insert's message would name the address (`Key (email)=(…) already exists`)
        # and psycopg's instrumentation record it on the span. Against a concurrent insert of
        # the same address PostgreSQL waits for it to commit or roll back, so exactly one
        # insert writes its row. Any other violation (the id, a CHECK, NOT NULL) is still
        # raised, in a savepoint: the outer transaction survives.
        query = InsertQuery(UserRow)
        query.insert_values(
            [field for field in UserRow._meta.concrete_fields if not field.generated], [row]
        )
        [(sql, params)] = query.get_compiler(using=DB).as_sql()
        quote = connections[DB].ops.quote_name
        pk, email = UserRow._meta.pk.column, UserRow._meta.get_field("email").column
        sql += f" ON CONFLICT ({quote(email)}) DO NOTHING RETURNING {quote(pk)}"
        with transaction.atomic(using=DB), connections[DB].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None  # none: another account holds the address

    def save(self, user: User) -> None:
        # A user who is no longer staff is no superuser either (`add`'s rule, undone): a
        # superuser flag left behind would still open every page of the admin.
        superuser = [] if user.is_staff else ["is_superuser"]
        _to_row(user).save(
            using=DB,
            force_update=True,
            update_fields=[
                *superuser,
                "email",
                "deleted_email",
                "password",
                "full_name",
                "status",
                "email_verified",
                "roles",
                "is_staff",
                "last_login",
                "tokens_valid_after",
                "sessions_ended_at",
                "failed_logins",
                "locked_until",
                "updated_at",
            ],
        )

    def delete(self, user_ids: Collection[UserId]) -> None:
        # Django's delete: the rows that refer to the users go first (cascades), as in the
        # admin's own delete.
        UserRow.objects.using(DB).filter(pk__in=[user_id.value for user_id in user_ids]).delete()

    def search(self, query: UserQuery) -> UserPage:
        rows = UserRow.objects.using(DB).all()
        if query.email:
            spellings = email_query_spellings(query.email)
            matches = Q()
            for spelling in spellings:
                # A deleted account by the address it had, not by its placeholder.
                matches |= Q(email__icontains=spelling, deleted_email="")
                matches |= Q(deleted_email__icontains=spelling)
            rows = rows.filter(matches) if spellings else rows.none()  # text naming no mailbox
        if query.status is not None:
            rows = rows.filter(status=query.status.value)
        if query.role:
            # Roles are slugs, so their quoted form in the JSON text is exact (and portable).
            rows = rows.annotate(roles_text=Cast("roles", TextField())).filter(
                roles_text__contains=f'"{query.role}"'
            )
        total = rows.count()
        if query.offset >= total:  # past the end (also offsets no SQL integer can hold)
            return UserPage([], total)
        page = rows.order_by("-created_at", "id")[query.offset : query.offset + query.limit]
        return UserPage([_to_domain(row) for row in page], total)


def _session_to_domain(row: RefreshSession) -> Session:
    return Session(
        id=str(row.id),
        user_id=UserId(str(row.user_id)),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        current_jti=row.current_jti,
        access_jti=row.access_jti,
        access_expires_at=row.access_expires_at,
        user_agent=row.user_agent,
        ip=row.ip,
        revoked_at=row.revoked_at,
        revoked_reason=_session_end(row.revoked_reason),
    )


def _session_end(stored: str) -> SessionEnd | None:
    """A stored revocation reason; "" (none, or from before reasons were kept) and one this
    release does not know (written by a later one, read after a roll back) are None."""
    try:
        return SessionEnd(stored) if stored else None
    except ValueError:
        return None


def _session_to_row(session: Session) -> RefreshSession:
    return RefreshSession(
        id=session.id,
        user_id=session.user_id.value,
        created_at=session.created_at,
        last_used_at=session.last_used_at,
        expires_at=session.expires_at,
        current_jti=session.current_jti,
        access_jti=session.access_jti,
        access_expires_at=session.access_expires_at,
        user_agent=session.user_agent,
        ip=session.ip,
        revoked_at=session.revoked_at,
        revoked_reason=session.revoked_reason.value if session.revoked_reason else "",
    )


class DjangoSessionRepository:
    """`SessionRepository` on `accounts_session`; rotation is one conditional UPDATE."""

    def add(self, session: Session) -> None:
        _session_to_row(session).save(using=DB, force_insert=True)

    def get(self, session_id: str) -> Session | None:
        row = RefreshSession.objects.using(DB).filter(pk=session_id).first()
        return _session_to_domain(row) if row is not None else None

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
        # The row lock taken by this UPDATE makes a concurrent second swap wait, re-check the
        # WHERE clause against the winner's jti and match nothing: exactly one winner.
        updated = (
            RefreshSession.objects.using(DB)
            .filter(
                pk=session_id,
                current_jti=presented_jti,
                revoked_at__isnull=True,
                expires_at__gt=now,
            )
            .update(
                current_jti=new_jti,
                access_jti=access_jti,
                access_expires_at=access_expires_at,
                last_used_at=now,
            )
        )
        return updated == 1

    def revoke(
        self, session_id: str, user_id: UserId, now: datetime, *, reason: SessionEnd
    ) -> Session | None:
        with transaction.atomic(using=DB):
            row = (
                RefreshSession.objects.using(DB)
                .select_for_update()
                .filter(pk=session_id, user_id=user_id.value, revoked_at__isnull=True)
                .first()
            )
            if row is None:
                return None
            session = _session_to_domain(row)
            if not session.is_live(now):
                return None
            row.revoked_at, row.revoked_reason = now, reason.value
            row.save(using=DB, update_fields=["revoked_at", "revoked_reason"])
        return session

    def revoke_all(
        self, user_id: UserId, now: datetime, *, reason: SessionEnd, keep: str | None = None
    ) -> list[Session]:
        # An expired family whose last access token is still valid is ended too: the database
        # then says its tokens are revoked (`token_owner`), not only the cache.
        live = RefreshSession.objects.using(DB).filter(
            Q(expires_at__gt=now) | Q(access_expires_at__gt=now),
            user_id=user_id.value,
            revoked_at__isnull=True,
        )
        if keep is not None:
            live = live.exclude(pk=keep)
        with transaction.atomic(using=DB):
            rows = list(live.select_for_update())
            RefreshSession.objects.using(DB).filter(pk__in=[r.pk for r in rows]).update(
                revoked_at=now, revoked_reason=reason.value
            )
        return [_session_to_domain(row) for row in rows]

    def live_for(self, user_id: UserId, now: datetime) -> list[Session]:
        rows = RefreshSession.objects.using(DB).filter(
            user_id=user_id.value, revoked_at__isnull=True, expires_at__gt=now
        )
        return [_session_to_domain(row) for row in rows]

    def with_live_access(self, user_id: UserId, now: datetime) -> list[Session]:
        rows = RefreshSession.objects.using(DB).filter(
            user_id=user_id.value, access_expires_at__gt=now
        )
        return [_session_to_domain(row) for row in rows]

    def purge(self, before: datetime) -> int:
        # A family whose last access token still lives is kept: password change finds it
        # there to deny that token. One revoked for reuse is kept until it expires: its tokens
        # answer `token_reused` until then.
        ended_early = Q(revoked_at__lte=before) & ~Q(revoked_reason=SessionEnd.REUSE.value)
        deleted, _ = (
            RefreshSession.objects.using(DB)
            .filter(Q(expires_at__lte=before) | ended_early)
            .filter(Q(access_expires_at__isnull=True) | Q(access_expires_at__lte=before))
            .delete()
        )
        return deleted


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8", "surrogatepass")).hexdigest()


class DjangoOneTimeTokens:
    """`OneTimeTokens`: 256 random bits handed out once; only their SHA-256 is stored."""

    def issue(
        self, user_id: UserId, purpose: TokenPurpose, expires_at: datetime, *, now: datetime
    ) -> str:
        self.void(user_id, purpose, now)
        raw = secrets.token_urlsafe(32)
        OneTimeToken.objects.using(DB).create(
            user_id=user_id.value,
            purpose=purpose.value,
            token_hash=_digest(raw),
            created_at=now,
            expires_at=expires_at,
        )
        return raw

    def consume(self, raw_token: str, purpose: TokenPurpose, now: datetime) -> UserId | None:
        with transaction.atomic(using=DB):
            row = (
                OneTimeToken.objects.using(DB)
                .select_for_update()
                .filter(
                    token_hash=_digest(raw_token),
                    purpose=purpose.value,
                    used_at__isnull=True,
                    expires_at__gt=now,
                )
                .first()
            )
            if row is None:
                return None
            row.used_at = now
            row.save(using=DB, update_fields=["used_at"])
        return UserId(str(row.user_id))

    def peek(self, raw_token: str, purpose: TokenPurpose, now: datetime) -> UserId | None:
        user_id = (
            OneTimeToken.objects.using(DB)
            .filter(
                token_hash=_digest(raw_token),
                purpose=purpose.value,
                used_at__isnull=True,
                expires_at__gt=now,
            )
            .values_list("user_id", flat=True)
            .first()
        )
        return UserId(str(user_id)) if user_id is not None else None

    def void(self, user_id: UserId, purpose: TokenPurpose, now: datetime) -> None:
        OneTimeToken.objects.using(DB).filter(
            user_id=user_id.value, purpose=purpose.value, used_at__isnull=True
        ).update(used_at=now)

    def purge(self, now: datetime) -> int:
        deleted, _ = (
            OneTimeToken.objects.using(DB)
            .filter(Q(used_at__isnull=False) | Q(expires_at__lte=now))
            .delete()
        )
        return deleted
