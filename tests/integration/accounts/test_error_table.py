"""The accounts error table: one HTTP status per use case's code, every code snake_case."""

from apps.accounts.errors import ERRORS
from core.usecases.accounts.authentication import AuthenticateError
from core.usecases.accounts.profile import ChangePasswordError


def test_equal_codes_of_different_use_cases_keep_their_own_status():
    assert ERRORS.status_of(AuthenticateError.INVALID_CREDENTIALS) == 401
    assert ERRORS.status_of(ChangePasswordError.INVALID_CREDENTIALS) == 400
    grouped = ERRORS.codes_by_status()
    assert "invalid_credentials" in grouped[400]
    assert "invalid_credentials" in grouped[401]


def test_every_code_of_the_table_is_snake_case():
    for codes in ERRORS.codes_by_status().values():
        assert all(code.replace("_", "").isalpha() and code.islower() for code in codes)
