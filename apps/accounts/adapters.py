"""Adapters of the accounts ports on Django and simplejwt (repositories live beside them).

Hashing is Django's configured hasher (bcrypt-SHA256), tokens are simplejwt's classes, mail is
Django's mail. Nothing here decides a business rule; the use cases do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import structlog
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts import background, metrics
from apps.accounts.keys import signed
from apps.accounts.models import User as UserRow
from apps.common.tokens import is_compact_jws
from core.domain.accounts.sessions import parse_session_id
from core.domain.accounts.user import User
from core.domain.accounts.values import Email, PasswordHash, UserId
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts.ports import Clock, IssuedTokens, RefreshClaims, RefreshTokenError

log = structlog.get_logger(__name__)


class DjangoPasswordHasher:
    """`PasswordHasher` on Django's configured hasher (bcrypt-SHA256, cost 12): admin agrees."""

    def hash(self, raw_password: str) -> PasswordHash:
        return PasswordHash(make_password(raw_password))

    def verify(self, raw_password: str, hashed: PasswordHash | None) -> bool:
        # For None or an unusable hash Django still runs the hasher once, for even timing.
        return check_password(raw_password, hashed.value if hashed is not None else "")


class DjangoPasswordPolicy:
    """`PasswordPolicy` on `AUTH_PASSWORD_VALIDATORS` (length, common, numeric, similarity)."""

    def problems(self, password: str, *, email: str, full_name: str) -> list[str]:
        # An unsaved row: the similarity validator compares `email` and `full_name` and names
        # them by their fields' verbose names ("the full name").
        person = UserRow(email=email, full_name=full_name)
        try:
            validate_password(password, user=person)
        except ValidationError as error:
            return list(error.messages)
        return []


def _epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


class SimpleJWTTokenIssuer:
    """`TokenIssuer` on simplejwt's token classes; `aud`/`iss` are added by its backend.

    Every refresh token of a family expires when the family does (7 days after the login), so
    rotating never extends a session. Both tokens carry the family id as `sid`. `iat` and the
    access token's `exp` come from `clock`, the use cases' own, so a token and the cut-offs it
    is compared with tell one time.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def issue(self, user: User, session_id: str, refresh_expires_at: datetime) -> IssuedTokens:
        now = self._clock.now()
        access = AccessToken()
        access.set_iat(at_time=now)
        access.set_exp(from_time=now)
        access["sub"] = user.id.value
        access["roles"] = list(user.roles)
        access["sid"] = session_id
        refresh = RefreshToken()
        refresh.set_iat(at_time=now)
        refresh["sub"] = user.id.value
        refresh["sid"] = session_id
        refresh["exp"] = int(refresh_expires_at.timestamp())
        return IssuedTokens(
            access_token=signed(access),
            refresh_token=signed(refresh),
            access_jti=str(access["jti"]),
            access_expires_at=_epoch(access["exp"]),
            refresh_jti=str(refresh["jti"]),
            refresh_expires_at=_epoch(refresh["exp"]),
            issued_at=_epoch(access["iat"]),
        )

    def read_refresh(
        self, raw_token: str, *, expired_ok: bool = False
    ) -> Result[RefreshClaims, RefreshTokenError]:
        if not is_compact_jws(raw_token):  # as access tokens: one text per token
            return Err(RefreshTokenError.INVALID)
        try:
            payload = RefreshToken(raw_token).payload  # type: ignore[arg-type]
        except ExpiredTokenError:
            if not expired_ok:
                return Err(RefreshTokenError.EXPIRED)
            payload = _expired_refresh_payload(raw_token)
            if payload is None:
                return Err(RefreshTokenError.INVALID)
        except TokenError:
            return Err(RefreshTokenError.INVALID)
        except (TypeError, ValueError, OverflowError):
            # A signed token whose `exp` is no time (past the year 9999): simplejwt raises
            # these from reading it, as for access tokens (`SimpleJWTAccessTokenVerifier`).
            return Err(RefreshTokenError.INVALID)
        user_id = UserId.parse(str(payload.get("sub", "")))
        raw_sid, jti = payload.get("sid"), payload.get("jti")
        session_id = parse_session_id(raw_sid) if isinstance(raw_sid, str) else None
        if user_id is None or not isinstance(jti, str) or session_id is None:
            return Err(RefreshTokenError.INVALID)
        return Ok(RefreshClaims(user_id, session_id, jti, _epoch(payload["exp"])))


def _expired_refresh_payload(raw_token: str) -> dict[str, Any] | None:
    """The payload of a refresh token whose one fault is an `exp` in the past: the signature,
    algorithm, `aud`, `iss` and type checked by simplejwt's own backend and settings; None for
    anything else."""
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.state import token_backend as backend

    try:
        payload: dict[str, Any] = jwt.decode(
            raw_token,
            backend.get_verifying_key(raw_token),
            algorithms=[backend.algorithm],
            audience=backend.audience,
            issuer=backend.issuer,
            options={"verify_exp": False, "verify_aud": backend.audience is not None},
        )
    except jwt.InvalidTokenError:
        return None
    if payload.get(api_settings.TOKEN_TYPE_CLAIM) != RefreshToken.token_type:
        return None
    return payload


class DjangoMailer:
    """`Mailer` on Django's email backend (SMTP; files in var/mail/ locally; locmem in tests).

    A mail server that is down must not fail the request that triggered the email: the
    failure is logged and counted, and the user can ask again. With `background` the message
    leaves on the accounts' background pool (`apps.accounts.background`), so answering "202, an
    email is on its way" takes as long for an address with an account as for one without (no
    enumeration by timing).
    """

    def __init__(self, *, background: bool = False) -> None:
        self._background = background

    def send_verification(self, to: Email, token: str) -> None:
        link = f"{settings.PUBLIC_BASE_URL}/verify-email?token={token}"
        self._send(
            to,
            "Confirm your email address",
            "Welcome! Confirm your email address within 24 hours:\n\n"
            f"{link}\n\nor post this token to /api/v1/auth/verify-email:\n\n"
            f"Token: {token}\n",
        )

    def send_password_reset(self, to: Email, token: str) -> None:
        link = f"{settings.PUBLIC_BASE_URL}/reset-password?token={token}"
        self._send(
            to,
            "Reset your password",
            "Someone (hopefully you) asked to reset your password. Within one hour:\n\n"
            f"{link}\n\nor post this token to /api/v1/auth/password/reset/confirm:\n\n"
            f"Token: {token}\n\nIf it was not you, ignore this email.\n",
        )

    def _send(self, to: Email, subject: str, body: str) -> None:
        if self._background:
            background.submit(self._send_now, to, subject, body)
        else:
            self._send_now(to, subject, body)

    def _send_now(self, to: Email, subject: str, body: str) -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to.value])
        except Exception as error:  # any backend failure: log without the token
            metrics.EMAIL_FAILURES.inc()
            log.error("account_email_failed", subject=subject, error=type(error).__name__)


class PrometheusAccountEvents:
    """`AccountEvents` as Prometheus counters."""

    def registered(self) -> None:
        metrics.REGISTRATIONS.inc()

    def login(self, outcome: str) -> None:
        metrics.LOGINS.labels(outcome=outcome).inc()

    def refreshed(self) -> None:
        metrics.REFRESHES.inc()

    def reuse_detected(self) -> None:
        metrics.REUSE_DETECTIONS.inc()

    def locked_out(self) -> None:
        metrics.LOCKOUTS.inc()

    def email_throttled(self, kind: str) -> None:
        metrics.EMAILS_THROTTLED.labels(endpoint=kind).inc()
