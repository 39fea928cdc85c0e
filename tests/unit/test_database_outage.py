"""A database that cannot be reached is a 503 with Retry-After, never a 500."""


def test_an_unreachable_database_is_a_503_with_retry_after():
    from django.db import InterfaceError, OperationalError

    from apps.common.exceptions import problem_exception_handler

    for error in (OperationalError("connection refused"), InterfaceError("connection closed")):
        response = problem_exception_handler(error, {})
        assert response.status_code == 503
        assert response.data["code"] == "service_unavailable"
        assert response.headers["Retry-After"] == "5"
