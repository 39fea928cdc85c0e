"""One table per app maps use-case error codes to HTTP problems."""

from enum import StrEnum

import pytest

from apps.common.errors import ErrorTable, FieldError
from apps.common.exceptions import ProblemError


class LoginError(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"
    LOCKED = "account_locked"


class ChangePasswordError(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"


def test_members_with_the_same_code_keep_their_own_status_when_given_as_pairs():
    table = ErrorTable(
        [
            (LoginError.INVALID_CREDENTIALS, (401, "Wrong email or password.")),
            (ChangePasswordError.INVALID_CREDENTIALS, (400, "The current password is wrong.")),
        ]
    )
    assert table.status_of(LoginError.INVALID_CREDENTIALS) == 401
    assert table.status_of(ChangePasswordError.INVALID_CREDENTIALS) == 400
    assert table.codes_by_status() == {401: ["invalid_credentials"], 400: ["invalid_credentials"]}


def test_a_member_the_table_lacks_is_not_answered_by_another_with_its_code():
    table = ErrorTable([(LoginError.INVALID_CREDENTIALS, (401, "Wrong email or password."))])
    with pytest.raises(KeyError, match=r"ChangePasswordError\.INVALID_CREDENTIALS"):
        table.problem(ChangePasswordError.INVALID_CREDENTIALS)


def test_an_unmapped_error_is_a_programmer_error():
    table = ErrorTable([(LoginError.INVALID_CREDENTIALS, (401, "Wrong email or password."))])
    with pytest.raises(KeyError, match="no entry"):
        table.raise_for(LoginError.LOCKED)
    with pytest.raises(ProblemError):
        table.raise_for(LoginError.INVALID_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})


def test_a_refused_caller_is_challenged_only_on_a_401():
    table = ErrorTable(
        [
            (LoginError.INVALID_CREDENTIALS, (401, "Wrong email or password.")),
            (LoginError.LOCKED, (403, "Locked.")),
        ]
    )
    with pytest.raises(ProblemError) as unauthorized:
        table.raise_for_caller(LoginError.INVALID_CREDENTIALS)
    assert unauthorized.value.headers == {"WWW-Authenticate": 'Bearer realm="api"'}
    with pytest.raises(ProblemError) as forbidden:
        table.raise_for_caller(LoginError.LOCKED)
    assert not forbidden.value.headers


def test_a_field_entry_is_answered_as_a_field_error_of_the_request():
    table = ErrorTable(
        [
            (LoginError.INVALID_CREDENTIALS, (401, "Wrong email or password.")),
            (LoginError.LOCKED, FieldError("email", "This account is locked.")),
        ]
    )
    problem = table.problem(LoginError.LOCKED)
    assert (problem.status_code, problem.problem_code) == (400, "validation_error")
    assert problem.problem_detail == "The request is not valid; see `errors`."
    assert problem.extra == {"errors": {"email": ["This account is locked."]}}
    assert table.status_of(LoginError.LOCKED) == 400
    assert table.codes_by_status() == {401: ["invalid_credentials"], 400: ["validation_error"]}
