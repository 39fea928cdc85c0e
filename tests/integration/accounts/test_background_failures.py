"""The accounts' background pool logs what fails there, in the request's context."""

import pytest

from apps.accounts.background import InBackground
from tests.fakes.accounts import FakeEmailUseCase


class Outage:
    def execute(self, email):
        from django.db import OperationalError

        raise OperationalError("connection to server at 127.0.0.1 failed")


@pytest.mark.django_db(databases=["default"])
def test_an_outage_in_the_background_is_a_warning_of_the_request_without_a_traceback(caplog):
    # A database outage was logged with log.exception (a 6 KB traceback per request), with no
    # request id: the pool's thread did not carry the request's log context.
    import structlog

    structlog.contextvars.bind_contextvars(request_id="rid-bg")
    try:
        with caplog.at_level("INFO", logger="apps.accounts.background"):
            future = InBackground(Outage, enabled=True).execute("d@example.com")
            assert future.result(timeout=10) is None
    finally:
        structlog.contextvars.clear_contextvars()
    [record] = [r for r in caplog.records if r.name == "apps.accounts.background"]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert record.msg["event"] == "account_email_use_case_failed"
    assert record.msg["error"] == "OperationalError"
    assert record.msg["reason"] == "database_unavailable"
    assert record.msg["request_id"] == "rid-bg"
    assert "d@example.com" not in str(record.msg)


class Deadlock:
    """Loses a deadlock, as a use case taking row locks on this pool can."""

    def execute(self, email):
        from django.db import connections
        from psycopg.errors import DeadlockDetected

        with connections["default"].wrap_database_errors:  # as Django wraps the driver's error
            raise DeadlockDetected("deadlock detected")


@pytest.mark.django_db(databases=["default"])
def test_a_deadlock_in_the_background_is_a_conflict_not_an_outage(caplog):
    with caplog.at_level("INFO", logger="apps.accounts.background"):
        assert InBackground(Deadlock, enabled=True).execute("f@example.com").result(10) is None
    [record] = [r for r in caplog.records if r.name == "apps.accounts.background"]
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert record.msg["event"] == "account_email_use_case_failed"
    assert (record.msg["reason"], record.msg["sqlstate"]) == ("database_conflict", "40P01")
    assert "f@example.com" not in str(record.msg)


@pytest.mark.django_db(databases=["default"])
def test_a_bug_in_the_background_keeps_its_traceback(caplog):
    with caplog.at_level("INFO", logger="apps.accounts.background"):
        InBackground(lambda: FakeEmailUseCase(fail=True), enabled=True).execute("e@x.io").result(10)
    [record] = [r for r in caplog.records if r.name == "apps.accounts.background"]
    assert (record.levelname, record.exc_info is not None) == ("ERROR", True)
