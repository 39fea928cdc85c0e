"""The per-worker memo of verified tokens: reused until expiry, refusals never remembered."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.common.tokens import SimpleJWTAccessTokenVerifier
from apps.gateway.limiter import NoRevocationFacts
from apps.gateway.verified_tokens import MemoizingAccessTokenVerifier
from core.domain.shared.identity import TokenError
from core.domain.shared.result import Err
from tests.factories.tokens import NOT_COMPACT, access_token, user_uuid
from tests.fakes.clock import FakeClock


class CountingVerifier:
    def __init__(self):
        self.inner = SimpleJWTAccessTokenVerifier(NoRevocationFacts())
        self.calls = 0

    def verify(self, raw_token):
        self.calls += 1
        return self.inner.verify(raw_token)


@pytest.fixture
def clock():
    return FakeClock(datetime.now(UTC))


def test_a_verified_token_is_reused_until_it_expires(clock):
    inner = CountingVerifier()
    memo = MemoizingAccessTokenVerifier(inner, clock)
    token = access_token(user_id=user_uuid("u-1"), lifetime=timedelta(minutes=5))
    first = memo.verify(token).unwrap()
    assert memo.verify(token).unwrap() == first
    assert inner.calls == 1
    clock.advance(minutes=6)  # past `exp` for the memo: the verifier decides again
    memo.verify(token)
    assert inner.calls == 2


def test_a_refused_token_drops_its_memo(clock):
    class Flipping:
        def __init__(self):
            self.answers = [SimpleJWTAccessTokenVerifier(NoRevocationFacts())]

        def verify(self, raw_token):
            return self.answers[-1].verify(raw_token)

    inner = Flipping()
    memo = MemoizingAccessTokenVerifier(inner, clock)
    token = access_token(lifetime=timedelta(minutes=1))
    assert memo.verify(token).is_ok()
    clock.advance(minutes=2)

    class Refusing:
        def verify(self, raw_token):
            return Err(TokenError.EXPIRED)

    inner.answers.append(Refusing())
    assert memo.verify(token) == Err(TokenError.EXPIRED)
    clock.advance(minutes=-2)
    assert memo.verify(token) == Err(TokenError.EXPIRED)  # not served from the memo any more


def test_refusals_are_not_remembered_and_the_memo_is_bounded(clock):
    inner = CountingVerifier()
    memo = MemoizingAccessTokenVerifier(inner, clock, max_entries=2)
    assert memo.verify("forged") == Err(TokenError.INVALID)
    assert memo.verify("forged") == Err(TokenError.INVALID)
    assert inner.calls == 2
    tokens = [access_token() for _ in range(3)]
    for token in tokens:
        memo.verify(token)
    memo.verify(tokens[0])  # pushed out by the third
    assert inner.calls == 6


def test_another_text_of_a_remembered_token_is_verified_and_refused(clock):
    """The memo is keyed by the token's text: a padded copy of a remembered token is not it."""
    inner = CountingVerifier()
    memo = MemoizingAccessTokenVerifier(inner, clock)
    token = access_token()
    assert memo.verify(token).is_ok()
    for name, variant in NOT_COMPACT.items():
        assert memo.verify(variant(token)) == Err(TokenError.INVALID), name
    assert inner.calls == 1 + len(NOT_COMPACT)
    assert memo.verify(token).is_ok()
    assert inner.calls == 1 + len(NOT_COMPACT)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"sub": "u-1"}, id="sub-not-a-user-id"),
        pytest.param({"sid": ""}, id="empty-sid"),
        pytest.param({"iat": True}, id="iat-true"),
    ],
)
def test_a_signed_token_with_claims_the_accounts_never_issue_is_never_remembered(clock, claims):
    inner = CountingVerifier()
    memo = MemoizingAccessTokenVerifier(inner, clock)
    token = access_token(**claims)
    assert memo.verify(token) == Err(TokenError.INVALID)
    assert memo.verify(token) == Err(TokenError.INVALID)
    assert inner.calls == 2
