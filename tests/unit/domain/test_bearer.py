"""The bearer credential of an `Authorization` value, as the API and the gateway read it."""

import pytest

from core.domain.shared.bearer import bearer_token
from core.domain.shared.identity import TokenError
from core.domain.shared.result import Err, Ok


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (b"", None),
        (b"  ", None),
        (b"Basic dTpw", None),
        (b'Digest realm="r", nonce="n"', None),  # commas, but no Bearer member
        (b"Basic dTpw,Basic dTpx", None),
        (b"Bearer abc", b"abc"),
        (b"bEARER\tabc ", b"abc"),
    ],
)
def test_a_value_names_one_token_or_none(value, token):
    assert bearer_token(value) == Ok(token)


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer",
        b"Bearer a b",
        b"Bearer abc,",
        # Two field lines as servers join them: the Bearer one first, last, or alone of two.
        b"Bearer abc,Bearer def",
        b"Basic dTpw,Bearer abc",
        b"Basic dTpw, bearer abc",
        b"Basic dTpw,Bearer",
        b"Bearer abc,Basic dTpw",
    ],
)
def test_a_bearer_credential_that_is_not_one_token_alone_is_invalid(value):
    assert bearer_token(value) == Err(TokenError.INVALID)
