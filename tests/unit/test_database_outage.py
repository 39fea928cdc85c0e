"""A database that cannot be reached is a 503 with Retry-After, never a 500."""

import pytest
from psycopg.errors import DeadlockDetected, SerializationFailure


def test_an_unreachable_database_is_a_503_with_retry_after():
    from django.db import InterfaceError, OperationalError

    from apps.common.exceptions import problem_exception_handler

    for error in (OperationalError("connection refused"), InterfaceError("connection closed")):
        response = problem_exception_handler(error, {})
        assert response.status_code == 503
        assert response.data["code"] == "service_unavailable"
        assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("raised", [DeadlockDetected, SerializationFailure])
def test_a_request_the_database_undid_for_another_says_so(raised, caplog):
    """A deadlock or a serialization failure is no outage: the database undid the request
    because it conflicted with another at the same time, and run again it runs anew."""
    from django.db import OperationalError, connections

    from apps.common.exceptions import problem_exception_handler

    with pytest.raises(OperationalError) as wrapped, connections["default"].wrap_database_errors:
        raise raised("undone")  # as the driver raises it, wrapped as Django wraps it
    with caplog.at_level("INFO", logger="apps.common.exceptions"):
        response = problem_exception_handler(wrapped.value, {})
    assert (response.status_code, response.data["code"]) == (503, "service_unavailable")
    assert "unreachable" not in response.data["detail"]
    assert "conflicted with another" in response.data["detail"]
    assert response.headers["Retry-After"] == "1"
    [record] = [r for r in caplog.records if r.name == "apps.common.exceptions"]
    assert (record.levelname, record.msg["event"]) == ("WARNING", "database_conflict")
    assert record.msg["sqlstate"] == raised.sqlstate


def _wrapped(raised):
    """`raised` as the driver raises it, wrapped as Django wraps it (an `OperationalError`)."""
    from django.db import OperationalError, connections

    with pytest.raises(OperationalError) as wrapped, connections["default"].wrap_database_errors:
        raise raised("undone")
    return wrapped.value


@pytest.mark.parametrize("raised", [DeadlockDetected, SerializationFailure])
def test_a_conflict_is_told_by_its_sqlstate(raised):
    from apps.common.exceptions import conflict_sqlstate

    assert conflict_sqlstate(_wrapped(raised)) == raised.sqlstate


def test_an_outage_or_any_other_error_is_no_conflict():
    from django.db import InterfaceError, OperationalError
    from psycopg.errors import ConnectionTimeout

    from apps.common.exceptions import conflict_sqlstate

    for error in (
        OperationalError("connection refused"),
        InterfaceError("connection closed"),
        _wrapped(ConnectionTimeout),
        RuntimeError("40P01"),
    ):
        assert conflict_sqlstate(error) is None, error
