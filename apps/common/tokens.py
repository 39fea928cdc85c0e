"""Access-token verification shared by every context, and the revocation facts behind it.

A token is taken only in its compact form (`is_compact_jws`, for refresh tokens too) and, with
a key pair, only when its header names the published key (`kid`); then checked by simplejwt
(signature, algorithm allow-list, `type`, `exp`, `aud`, `iss`, `jti`), then its claims against
what the accounts issue (`principal_from_claims`: a user id in `sub`, a `sid`, integer `iat` and
`exp` no further apart than the longest access lifetime, a day), and then against revocation
facts kept in the shared cache (Redis): a denied `jti`, an ended session (the token's `sid`), or
a per-user cut-off time. Verifying costs one cache round trip (MGET) and no database query.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import structlog
from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter
from rest_framework_simplejwt.exceptions import ExpiredTokenError
from rest_framework_simplejwt.exceptions import TokenError as SimpleJWTError
from rest_framework_simplejwt.tokens import AccessToken

from apps.common.logging import EveryFewSeconds
from apps.common.signing_keys import signing_key_id
from core.domain.shared.identity import (
    LONGEST_ACCESS_LIFETIME,
    Principal,
    TokenError,
    is_revoked,
    principal_from_claims,
)
from core.domain.shared.result import Err, Ok, Result

log = structlog.get_logger(__name__)

REVOCATION_LOOKUP_FAILURES = Counter(
    "platform_token_revocation_lookup_failures_total",
    "Token checks that could not read revocation facts (cache unreachable) and failed open.",
)
REVOCATION_WRITE_FAILURES = Counter(
    "platform_token_revocation_write_failures_total",
    "Revocation facts that could not be written (cache unreachable): those access tokens live "
    "on until they expire.",
)

# Cache keys of the revocation facts; the gateway reads them inside its one Lua call per request.
REVOKED_JTI_KEY = "auth:revoked-jti:{}"
REVOKED_SID_KEY = "auth:revoked-sid:{}"
USER_CUTOFF_KEY = "auth:valid-after:{}"


# RFC 7515 §7.1 with RFC 7515 §2's base64url (no padding): three segments of [A-Za-z0-9_-].
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# By the signature's length mod 4: the bits of its last character that encode nothing.
_UNUSED_BITS = {2: 0b1111, 3: 0b11}


def is_compact_jws(text: str) -> bool:
    """Whether `text` is a JWS in its one compact form: three base64url segments without
    padding, and a signature that is the encoding of its own bytes (no unused bit set).

    Header and payload need no canonical check: the signature covers their text. Without this
    the same signed token had other texts (PyJWT takes `=` padding), each of them a token of
    its own to whatever keys by the text, as the gateway's memo of verified tokens does.
    """
    if _COMPACT_JWS.fullmatch(text) is None:
        return False
    length = len(text) - text.rindex(".") - 1
    if length % 4 == 1:  # six bits short of a byte: no encoding ends so
        return False
    unused = _UNUSED_BITS.get(length % 4, 0)
    return _BASE64URL.index(text[-1]) & unused == 0


def _user_cutoff_ttl() -> int:
    # After the longest token lifetime every earlier token has expired on its own.
    lifetime: timedelta = max(
        settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"], settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    )
    return int(lifetime.total_seconds()) + 60


def _set_until(key: str, expires_at: datetime) -> None:
    # A fact about tokens that have all expired is not worth keeping.
    ttl = math.ceil((expires_at - datetime.now(UTC)).total_seconds())
    if ttl > 0:
        _publish(key, 1, ttl)


def _publish(key: str, value: int, ttl: int) -> None:
    """Write one revocation fact. With the cache unreachable the operation that revokes (logout,
    suspension, password change, ...) still completes: its durable part is in the database
    (refresh families end there), and only access tokens already issued stay usable until they
    expire, which is counted and logged rather than turned into a failed request."""
    try:
        cache.set(key, value, timeout=ttl)
    except Exception as error:
        REVOCATION_WRITE_FAILURES.inc()
        log.warning("revocation_write_failed", fact=key.split(":")[1], error=type(error).__name__)


class CacheTokenRevocations:
    """`TokenRevocations` on Django's cache (Redis in production; shared by all workers)."""

    def revoke_token(self, token_id: str, expires_at: datetime) -> None:
        _set_until(REVOKED_JTI_KEY.format(token_id), expires_at)

    def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        _set_until(REVOKED_SID_KEY.format(session_id), expires_at)

    def revoke_user_tokens(self, user_id: str, issued_before: datetime) -> None:
        # `iat` has whole seconds, so "issued before 12:00:00.5" reaches every token of 12:00:00
        # (one of them may predate the cut-off): the cut-off is that moment rounded up, and the
        # check (here and in the gateway's script) stays `iat < cut-off`. The accounts mint no
        # token of the user before that second (`User.tokens_valid_from`).
        _publish(
            USER_CUTOFF_KEY.format(user_id),
            math.ceil(issued_before.timestamp()),
            _user_cutoff_ttl(),
        )

    def facts_for(
        self, token_id: str, user_id: str, session_id: str | None = None
    ) -> tuple[bool, bool, int | None]:
        """(token denied?, session revoked?, user's cut-off epoch second or None) in one round
        trip."""
        jti_key, user_key = REVOKED_JTI_KEY.format(token_id), USER_CUTOFF_KEY.format(user_id)
        keys = [jti_key, user_key]
        sid_key = REVOKED_SID_KEY.format(session_id) if session_id is not None else None
        if sid_key is not None:
            keys.append(sid_key)
        found = cache.get_many(keys)
        return jti_key in found, sid_key in found, found.get(user_key)

    def revoked(self, token_id: str, user_id: str, session_id: str | None, issued_at: int) -> bool:
        """Whether these facts revoke a token (`facts_for`, then the domain's rule)."""
        denied, ended, cutoff = self.facts_for(token_id, user_id, session_id)
        return is_revoked(
            issued_at=issued_at, token_denied=denied, user_valid_after=cutoff, session_revoked=ended
        )


def _names_the_signing_key(raw_token: str) -> bool:
    """Whether a token's header names the published key (`kid`), when one is published: the
    accounts write it into every token they sign with a key pair (`apps.accounts.keys`), so a
    token without it, or naming another key, is none of theirs. With a shared secret nothing
    is published and `kid` is not read."""
    key_id = signing_key_id()
    if key_id is None:
        return True
    try:
        header = jwt.get_unverified_header(raw_token)
    except jwt.PyJWTError:  # no JSON object, or a `kid` that is no string
        return False
    return header.get("kid") == key_id


def _longest_lifetime() -> int:
    # The longest life the platform gives an access token, not the one configured now (a
    # change of it refuses no token already issued); simplejwt's leeway, if any, on top.
    leeway = settings.SIMPLE_JWT.get("LEEWAY", 0)
    if isinstance(leeway, timedelta):
        leeway = leeway.total_seconds()
    return LONGEST_ACCESS_LIFETIME + int(leeway)


# One `revocation_lookup_failed` line every 5 s per process while Redis is unreachable (the
# counter counts every lookup), as the gateway's own Redis warnings.
_LOOKUP_FAILURE_LOGGED = EveryFewSeconds(5.0)


class SimpleJWTAccessTokenVerifier:
    """`AccessTokenVerifier` on simplejwt plus the cache-held revocation facts."""

    def __init__(
        self,
        revocations: CacheTokenRevocations | None = None,
        *,
        log_failure: Callable[[], bool] = _LOOKUP_FAILURE_LOGGED,
    ) -> None:
        self._revocations = revocations or CacheTokenRevocations()
        self._log_failure = log_failure

    def verify(self, raw_token: str) -> Result[Principal, TokenError]:
        if not is_compact_jws(raw_token) or not _names_the_signing_key(raw_token):
            return Err(TokenError.INVALID)
        try:
            token = AccessToken(raw_token)  # type: ignore[arg-type]
        except ExpiredTokenError:
            return Err(TokenError.EXPIRED)
        except SimpleJWTError:
            return Err(TokenError.INVALID)
        except (TypeError, ValueError, OverflowError):
            # A signed token whose `exp` is no time (text, a list, past the year 9999): PyJWT
            # and simplejwt raise these from reading it, which was a 500.
            return Err(TokenError.INVALID)
        payload = token.payload
        principal = principal_from_claims(payload, longest_lifetime=_longest_lifetime())
        if principal is None:
            return Err(TokenError.INVALID)
        try:
            revoked = self._revocations.revoked(
                principal.token_id, principal.user_id, principal.session_id, payload["iat"]
            )
        except Exception as error:  # cache unreachable: fail open on revocation, counted
            REVOCATION_LOOKUP_FAILURES.inc()
            if self._log_failure():
                log.warning("revocation_lookup_failed", error=type(error).__name__)
            revoked = False
        if revoked:
            return Err(TokenError.REVOKED)
        return Ok(principal)
