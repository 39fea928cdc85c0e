"""Access tokens are checked for signature, algorithm, type, expiry, audience, issuer and
revocation, with the revocation facts read from the real Redis."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from django.core.cache import cache

from apps.common.tokens import (
    USER_CUTOFF_KEY,
    CacheTokenRevocations,
    SimpleJWTAccessTokenVerifier,
    is_compact_jws,
)
from core.domain.shared.identity import LONGEST_ACCESS_LIFETIME, TokenError
from core.domain.shared.result import Err, Ok
from tests.factories.tokens import NOT_COMPACT_TEXT, access_token, refresh_token, user_uuid

pytestmark = [pytest.mark.django_db(databases=[])]


@pytest.fixture
def verifier():
    return SimpleJWTAccessTokenVerifier(CacheTokenRevocations())


def _forge(payload, key=None, algorithm="HS256"):
    return jwt.encode(payload, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm)


def _claims(**overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": user_uuid("u-1"),
        "type": "access",
        "roles": ["user"],
        "jti": "j-1",
        "sid": "s-1",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "aud": settings.SIMPLE_JWT["AUDIENCE"],
        "iss": settings.SIMPLE_JWT["ISSUER"],
    }
    claims.update(overrides)
    return claims


def test_valid_token_yields_the_principal(verifier):
    result = verifier.verify(access_token(user_id=user_uuid("u-42"), roles=("user", "admin")))
    match result:
        case Ok(principal):
            assert principal.user_id == user_uuid("u-42")
            assert principal.roles == {"user", "admin"}
            assert principal.expires_at > principal.issued_at
        case Err(error):
            pytest.fail(f"unexpected {error}")


def test_expired_token_is_refused_as_expired(verifier):
    token = access_token(lifetime=timedelta(seconds=-1))
    assert verifier.verify(token) == Err(TokenError.EXPIRED)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            lambda: _forge(_claims(), key="another-key-entirely-0123456789abcdef"), id="signature"
        ),
        pytest.param(lambda: _forge(_claims(aud="someone-else")), id="audience"),
        pytest.param(lambda: _forge(_claims(iss="evil")), id="issuer"),
        pytest.param(lambda: _forge(_claims(type="refresh")), id="type"),
        pytest.param(lambda: _forge(_claims(roles="admin")), id="roles-not-a-list"),
        pytest.param(
            lambda: _forge({k: v for k, v in _claims().items() if k != "jti"}), id="no-jti"
        ),
        pytest.param(lambda: _forge(_claims(), algorithm="HS512"), id="algorithm-not-allowed"),
        pytest.param(lambda: jwt.encode(_claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
        pytest.param(refresh_token, id="refresh-token-as-access"),
    ],
)
def test_forged_or_misused_tokens_are_invalid(verifier, token):
    assert verifier.verify(token()) == Err(TokenError.INVALID)


def _lifetime():
    return int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())


def _without(name):
    return {k: v for k, v in _claims().items() if k != name}


def test_a_token_as_the_accounts_sign_it_is_valid_also_with_an_audience_list(verifier):
    assert verifier.verify(_forge(_claims())).is_ok()
    audiences = ["other-api", settings.SIMPLE_JWT["AUDIENCE"]]  # RFC 7519 §4.1.3
    assert verifier.verify(_forge(_claims(aud=audiences))).is_ok()
    now = int(datetime.now(UTC).timestamp())
    assert verifier.verify(_forge(_claims(iat=now, exp=now + _lifetime()))).is_ok()


def test_a_token_issued_under_a_longer_configured_lifetime_is_still_valid(verifier):
    """The bound on `exp` - `iat` is the longest lifetime the platform gives (a day), not the
    one configured now: a lifetime lowered, or raised while a rollout still has workers on the
    old value, refuses no token already issued."""
    now = int(datetime.now(UTC).timestamp())
    longer = now + _lifetime() + 600
    assert verifier.verify(_forge(_claims(iat=now, exp=longer))).is_ok()
    a_day = now + LONGEST_ACCESS_LIFETIME
    assert verifier.verify(_forge(_claims(iat=now, exp=a_day))).is_ok()


@pytest.mark.parametrize("leeway", [30, timedelta(seconds=30)], ids=["seconds", "timedelta"])
def test_the_bound_on_a_token_s_lifetime_allows_simplejwt_s_leeway(verifier, settings, leeway):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "LEEWAY": leeway}
    now = int(datetime.now(UTC).timestamp())
    within = now + LONGEST_ACCESS_LIFETIME + 30
    assert verifier.verify(_forge(_claims(iat=now, exp=within))).is_ok()
    past = now + LONGEST_ACCESS_LIFETIME + 31
    assert verifier.verify(_forge(_claims(iat=now, exp=past))) == Err(TokenError.INVALID)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(lambda: _without("sid"), id="no-sid"),
        pytest.param(lambda: _claims(sid=""), id="empty-sid"),
        pytest.param(lambda: _claims(sid=7), id="sid-not-a-string"),
        pytest.param(lambda: _claims(iat=True), id="iat-true"),
        pytest.param(lambda: _claims(iat=float(_claims()["iat"])), id="iat-float"),
        pytest.param(lambda: _claims(exp=_claims()["exp"] + 0.5), id="exp-float"),
        pytest.param(
            lambda: _claims(exp=_claims()["iat"] + LONGEST_ACCESS_LIFETIME + 1), id="too-long"
        ),
        pytest.param(lambda: _claims(sub="u-1"), id="sub-not-a-uuid"),
        pytest.param(lambda: _claims(sub=user_uuid("u-1").upper()), id="sub-uppercase"),
    ],
)
def test_a_signed_token_with_claims_the_accounts_never_issue_is_invalid(verifier, claims):
    """Signed with the platform's key, but not as the accounts sign: every access token
    names its session, `iat` and `exp` are integers no further apart than the lifetime, and
    `sub` is a user id (the API refused other subjects, the gateway let them through)."""
    assert verifier.verify(_forge(claims())) == Err(TokenError.INVALID)


@pytest.mark.parametrize("variant", NOT_COMPACT_TEXT, ids=list(NOT_COMPACT_TEXT))
def test_a_valid_token_in_any_text_but_its_compact_form_is_invalid(verifier, variant):
    """Three base64url segments without padding, the signature canonical (re-encoding its
    bytes gives its text): PyJWT accepted the token with `=` padding."""
    token = access_token()
    assert verifier.verify(token).is_ok()
    assert verifier.verify(NOT_COMPACT_TEXT[variant](token)) == Err(TokenError.INVALID)


@pytest.mark.parametrize(
    ("text", "compact"),
    [
        ("h.p.AAAA", True),  # whole bytes: every bit used
        ("h.p.AAA", True),  # 2 bytes: the last character's low 2 bits unused, and zero
        ("h.p.AAE", True),
        ("h.p.AAB", False),
        ("h.p.AAC", False),
        ("h.p.AA", True),  # 1 byte: the last character's low 4 bits unused, and zero
        ("h.p.AQ", True),
        ("h.p.AB", False),
        ("h.p.A_", False),
        ("h.p.AI", False),  # the highest of the 4 unused bits
        ("h=.p.AA", False),  # no padding in the header or the payload either
        ("h.p=.AA", False),
        ("h.p.AAAAA", False),  # no encoding has a length of 1 mod 4
        ("h.p.AA==", False),
        ("h.p.A-_z09Az", True),
        ("h.p.A+/z09Az", False),  # base64's own alphabet, not base64url's
        ("h.p.", False),
        (".p.AA", False),
        ("h..AA", False),
        ("h.p", False),
        ("h.p.AA.AA", False),
        ("h.p.AA\n", False),
        ("h.p.Aé", False),
        ("", False),
    ],
)
def test_the_compact_form_is_three_base64url_segments_and_a_canonical_signature(text, compact):
    assert is_compact_jws(text) is compact


def test_a_denied_token_id_is_revoked_until_it_expires(verifier):
    revocations = CacheTokenRevocations()
    token = access_token()
    principal = verifier.verify(token).unwrap()
    revocations.revoke_token(principal.token_id, principal.expires_at)
    assert verifier.verify(token) == Err(TokenError.REVOKED)
    assert verifier.verify(access_token(user_id=principal.user_id)).is_ok()


def test_tokens_issued_before_the_user_cutoff_are_revoked(verifier):
    revocations = CacheTokenRevocations()
    now = int(datetime.now(UTC).timestamp())
    old = _forge(_claims(sub=user_uuid("u-7"), jti="old", iat=now - 60))
    revocations.revoke_user_tokens(user_uuid("u-7"), datetime.fromtimestamp(now - 5, UTC))
    assert verifier.verify(old) == Err(TokenError.REVOKED)
    fresh = _forge(_claims(sub=user_uuid("u-7"), jti="fresh", iat=now))
    assert verifier.verify(fresh).is_ok()


def test_a_cutoff_within_a_second_refuses_that_whole_second(verifier):
    """`iat` has whole seconds, so a token of the cut-off's own second may have been minted
    before it (a role taken away at .5 s, a token minted at .1 s): the cut-off is published as
    the next whole second, the value the gateway's script compares `iat` with too."""
    second = int(datetime.now(UTC).timestamp()) - 10
    CacheTokenRevocations().revoke_user_tokens(
        user_uuid("u-9"), datetime.fromtimestamp(second + 0.5, UTC)
    )
    assert cache.get(USER_CUTOFF_KEY.format(user_uuid("u-9"))) == second + 1
    for iat, revoked in ((second - 1, True), (second, True), (second + 1, False)):
        token = _forge(_claims(sub=user_uuid("u-9"), jti=f"j-{iat}", iat=iat))
        assert (verifier.verify(token) == Err(TokenError.REVOKED)) is revoked, iat
    # A cut-off on a whole second refuses the tokens before it only.
    CacheTokenRevocations().revoke_user_tokens(
        user_uuid("u-9"), datetime.fromtimestamp(second, UTC)
    )
    assert cache.get(USER_CUTOFF_KEY.format(user_uuid("u-9"))) == second


def test_every_token_of_a_revoked_session_is_revoked(verifier):
    earlier, latest = (
        access_token(user_id=user_uuid("u-8"), sid="s-8"),
        access_token(user_id=user_uuid("u-8"), sid="s-8"),
    )
    principal = verifier.verify(latest).unwrap()
    assert principal.session_id == "s-8"
    CacheTokenRevocations().revoke_session("s-8", principal.expires_at)
    assert verifier.verify(earlier) == Err(TokenError.REVOKED)
    assert verifier.verify(latest) == Err(TokenError.REVOKED)
    assert verifier.verify(access_token(user_id=user_uuid("u-8"), sid="s-9")).is_ok()
    assert verifier.verify(access_token(sid=["s-8"])) == Err(TokenError.INVALID)


def test_revoking_an_already_expired_token_or_session_stores_nothing():
    gone = datetime.now(UTC) - timedelta(seconds=5)
    CacheTokenRevocations().revoke_token("gone", gone)
    CacheTokenRevocations().revoke_session("gone-sid", gone)
    facts = CacheTokenRevocations().facts_for("gone", "nobody", "gone-sid")
    assert facts == (False, False, None)


def test_unreachable_cache_fails_open_on_revocation_and_counts_it(redis_down):
    from prometheus_client import REGISTRY

    name = "platform_token_revocation_lookup_failures_total"
    before = REGISTRY.get_sample_value(name) or 0.0
    assert SimpleJWTAccessTokenVerifier().verify(access_token()).is_ok()
    assert REGISTRY.get_sample_value(name) == before + 1


def test_unwritable_revocation_facts_are_counted_not_raised(redis_down):
    from prometheus_client import REGISTRY

    name = "platform_token_revocation_write_failures_total"
    before = REGISTRY.get_sample_value(name) or 0.0
    later = datetime.now(UTC) + timedelta(minutes=5)
    revocations = CacheTokenRevocations()
    revocations.revoke_token("t", later)
    revocations.revoke_session("s", later)
    revocations.revoke_user_tokens("u", datetime.now(UTC))
    assert REGISTRY.get_sample_value(name) == before + 3


def test_an_unreachable_cache_is_one_warning_every_few_seconds_and_every_lookup_is_counted(
    redis_down, caplog
):
    # One `revocation_lookup_failed` line per request flooded the log during an outage.
    from prometheus_client import REGISTRY

    from apps.common.logging import EveryFewSeconds

    now = [100.0]
    verifier = SimpleJWTAccessTokenVerifier(log_failure=EveryFewSeconds(5.0, lambda: now[0]))
    name = "platform_token_revocation_lookup_failures_total"
    before = REGISTRY.get_sample_value(name) or 0.0
    with caplog.at_level("WARNING", logger="apps.common.tokens"):
        for at in (100.0, 101.0, 104.9, 105.1):
            now[0] = at
            assert verifier.verify(access_token()).is_ok()
    lines = [r.msg for r in caplog.records if r.msg.get("event") == "revocation_lookup_failed"]
    assert len(lines) == 2  # at 100 and at 105.1
    assert all(line["error"] for line in lines)
    assert REGISTRY.get_sample_value(name) == before + 4
