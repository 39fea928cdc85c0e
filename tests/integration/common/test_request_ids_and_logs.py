"""Every response carries X-Request-ID, and every request logs one structured line."""

import re

import pytest

from apps.common.middleware import request_id_from
from tests.factories.tokens import access_token, user_uuid


def test_well_formed_incoming_request_id_is_echoed(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="abc-123.X:y_z")
    assert response["X-Request-ID"] == "abc-123.X:y_z"


@pytest.mark.parametrize("incoming", [None, "", "has space", "x" * 129, "semi;colon", "ünï"])
def test_missing_or_malformed_request_id_is_replaced(incoming):
    generated = request_id_from(incoming)
    assert generated != incoming
    assert re.fullmatch("[0-9a-f]{32}", generated)
    assert request_id_from(incoming) != generated


def test_error_responses_carry_a_request_id_too(client):
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.urls("tests.integration.common.urls")
@pytest.mark.django_db(databases=[])
def test_access_log_line_has_request_fields_and_no_secrets(client, caplog):
    token = access_token(user_id=user_uuid("u-log"))
    with caplog.at_level("INFO", logger="platform.access"):
        client.get("/whoami", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_REQUEST_ID="rid-1")
    events = [r.msg for r in caplog.records if r.name == "platform.access"]
    assert len(events) == 1
    line = events[0]
    assert line["event"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == "/whoami"
    assert line["status"] == 200
    assert line["user_id"] == user_uuid("u-log")
    assert isinstance(line["duration_ms"], float)
    assert token not in str(line)


def _access_lines(caplog):
    return [r.msg for r in caplog.records if r.name == "platform.access"]


@pytest.mark.django_db(databases=["default"])
def test_a_request_signed_in_by_the_admin_session_logs_the_users_id(
    admin_client, admin_user, caplog
):
    """As a bearer token's request does: the id, never the email or the session's key."""
    with caplog.at_level("INFO", logger="platform.access"):
        assert admin_client.get("/admin/").status_code == 200
        assert admin_client.get("/admin/accounts/user/").status_code == 200
    lines = _access_lines(caplog)
    assert [line["user_id"] for line in lines] == [str(admin_user.pk)] * 2
    session_key = admin_client.cookies["sessionid"].value
    for line in lines:
        assert session_key not in str(line)
        assert admin_user.email not in str(line)


@pytest.mark.django_db(databases=["default"])
def test_a_request_without_a_signed_in_session_logs_no_user(client, caplog):
    with caplog.at_level("INFO", logger="platform.access"):
        assert client.get("/admin/").status_code == 302  # to the login page
    assert [line["user_id"] for line in _access_lines(caplog)] == [None]


def test_sensitive_keys_are_masked_before_rendering():
    from apps.common.logging import redact_secrets

    event = redact_secrets(
        None, "info", {"event": "x", "password": "hunter2", "refresh_token": "t"}
    )
    assert event == {"event": "x", "password": "***", "refresh_token": "***"}


def test_keys_naming_a_secret_anywhere_are_masked_at_any_depth():
    from apps.common.logging import redact_secrets

    event = redact_secrets(
        None,
        "info",
        {
            "event": "x",
            "raw_token": "t",
            "EMAIL_HOST_PASSWORD": "p",
            "headers": {"X-Api-Key": "k", "Accept": "*/*", "nested": [{"client_secret": "s"}]},
            "user_id": "u1",
        },
    )
    assert event == {
        "event": "x",
        "raw_token": "***",
        "EMAIL_HOST_PASSWORD": "***",
        "headers": {"X-Api-Key": "***", "Accept": "*/*", "nested": [{"client_secret": "***"}]},
        "user_id": "u1",
    }


def test_structured_lines_render_as_json(capsys, settings):
    import json
    import logging

    from apps.common.logging import configure_logging

    configure_logging()
    logging.getLogger("probe").warning("hello %s", "world")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line)["event"] == "hello world"


def test_a_throttled_warning_renders_its_error_and_detail_as_fields(capsys, settings):
    import json
    import logging
    import sys

    from apps.common.logging import configure_logging

    configure_logging()
    try:
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:1")
    except ConnectionRefusedError:
        logging.getLogger("django_redis.cache").error("Exception ignored", exc_info=sys.exc_info())
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["event"], line["level"]) == ("cache_redis_unavailable", "warning")
    assert (line["error"], line["detail"]) == ("ConnectionRefusedError", "its limits lapse")
    assert "exception" not in line


def test_configuring_logging_again_keeps_one_filter_per_logger(settings):
    # dictConfig adds to a logger's filters: a second throttled warning on one logger rewrote
    # what the first had rewritten, and each throttled on its own clock.
    import logging

    from apps.common.logging import (
        SUSPICIOUS_REQUEST_LOGGERS,
        IgnoredCacheErrors,
        RefusedHosts,
        SuspiciousRequests,
        UnhandledOnly,
        configure_logging,
    )

    filtered = {
        "django.request": UnhandledOnly,
        "django.security.DisallowedHost": RefusedHosts,
        "django_redis.cache": IgnoredCacheErrors,
        **dict.fromkeys(SUSPICIOUS_REQUEST_LOGGERS, SuspiciousRequests),
    }
    configure_logging()
    configure_logging()
    installed = {name: [type(f) for f in logging.getLogger(name).filters] for name in filtered}
    assert installed == {name: [kind] for name, kind in filtered.items()}


def test_direct_logger_writes_the_same_json_lines_itself(settings):
    import io
    import json

    import structlog

    from apps.common.logging import direct_logger

    settings.LOG_LEVEL = "INFO"
    stream = io.StringIO()
    logger = direct_logger("platform.access", stream)
    structlog.contextvars.bind_contextvars(request_id="rid-1")
    try:
        logger.info("request", path="/x", status=200, token="secret-value")
        logger.debug("not written at INFO")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["event"] == "request"
    assert line["logger"] == "platform.access"
    assert line["level"] == "info"
    assert line["request_id"] == "rid-1"
    assert line["token"] == "***"
    assert line["timestamp"].endswith("Z")


@pytest.mark.parametrize("tracing", [True, False])
def test_with_tracing_on_a_line_names_the_current_span(settings, tracing):
    import io
    import json

    import structlog
    from opentelemetry.sdk.trace import TracerProvider

    from apps.common.logging import bind_request, direct_logger

    settings.TRACING = tracing
    stream = io.StringIO()
    logger = direct_logger("platform.access", stream)
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("loose") as loose:
            logger.info("inside a span")
        logger.info("outside")
        with tracer.start_as_current_span("request") as request:
            bind_request("rid-2")
            with tracer.start_as_current_span("query"):
                logger.info("nested")
        logger.info("the access line, after the request's span ended")
    finally:
        structlog.contextvars.clear_contextvars()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ids = [(line.get("trace_id"), line.get("span_id")) for line in lines]

    def of(span):
        context = span.get_span_context()
        return (format(context.trace_id, "032x"), format(context.span_id, "016x"))

    if tracing:
        assert ids == [of(loose), (None, None), of(request), of(request)]
    else:
        assert ids == [(None, None)] * 4
    assert lines[-1]["request_id"] == "rid-2"


def test_an_ignored_cache_error_is_one_warning_without_a_traceback_every_few_seconds():
    import logging

    from apps.common.logging import IgnoredCacheErrors

    now = [100.0]
    errors = IgnoredCacheErrors(every=5.0, clock=lambda: now[0])

    def record():
        try:
            raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:1")
        except ConnectionRefusedError:
            import sys

            return logging.LogRecord(
                "django_redis.cache", logging.ERROR, __file__, 1, "Exception ignored", (),
                sys.exc_info(),
            )  # fmt: skip

    first = record()
    assert errors.filter(first)
    assert (first.levelname, first.exc_info, first.exc_text) == ("WARNING", None, None)
    # The event is the name docs/operations.md gives (a log query matches it); what varies is
    # in fields of its own.
    assert first.getMessage() == "cache_redis_unavailable"
    assert (first.error, first.detail) == ("ConnectionRefusedError", "its limits lapse")
    now[0] += 4.9
    assert not errors.filter(record())
    now[0] += 0.2
    assert errors.filter(record())


@pytest.mark.django_db(databases=[])
def test_the_rate_limit_cache_logs_no_traceback_while_redis_is_unreachable(settings, caplog):
    # django-redis logged "Exception ignored" with a traceback at error level on every call.
    import logging

    from django.core.cache import caches

    from apps.common.logging import IgnoredCacheErrors
    from tests.conftest import UNREACHABLE_REDIS

    [ignored_errors] = [
        f
        for f in logging.getLogger("django_redis.cache").filters
        if isinstance(f, IgnoredCacheErrors)
    ]
    ignored_errors.allowed = type(ignored_errors.allowed)(5.0)  # as if none was logged yet
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {**settings.CACHES["ratelimit"], "LOCATION": UNREACHABLE_REDIS},
    }
    with caplog.at_level(logging.DEBUG, logger="django_redis.cache"):
        assert [caches["ratelimit"].get("k") for _ in range(3)] == [None] * 3
    ignored = [r for r in caplog.records if r.name == "django_redis.cache"]
    [line] = ignored  # one every 5 s, not one per call
    assert (line.exc_info, line.levelno) == (None, logging.WARNING)


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
@pytest.mark.urls("tests.integration.common.urls")
def test_a_5xx_the_platform_chose_is_no_error_line_and_an_unhandled_one_is(
    client, redis_down, caplog
):
    # Django logged "Service Unavailable: /health/ready" at ERROR for every 503 a view answers
    # on purpose (a readiness probe, a database outage, a failed composite): a third line
    # beside the cause's warning and the access line, paging whoever alerts on errors.
    client.raise_request_exception = False
    with caplog.at_level("INFO"):
        assert client.get("/health/ready").status_code == 503
        assert not [r for r in caplog.records if r.name == "django.request"]
        failed = [r.msg for r in caplog.records if r.name == "apps.common.views"]
        assert [(line["check"], line["error"]) for line in failed] == [("cache", "ConnectionError")]
        assert client.get("/broken").status_code == 500
    errors = [r for r in caplog.records if r.name == "django.request"]
    assert len(errors) == 1
    assert errors[0].levelname == "ERROR"
    assert errors[0].exc_info is not None  # the traceback of what nobody handled


@pytest.mark.django_db(databases=[])
def test_a_refused_host_is_one_warning_without_a_traceback_every_few_seconds(client, caplog):
    # Django's security logger wrote a ~1.2 KB traceback at ERROR for each request naming a
    # host not allowed: any client could fill the log with them.
    import logging

    from apps.common.logging import RefusedHosts

    [refused_hosts] = [
        f
        for f in logging.getLogger("django.security.DisallowedHost").filters
        if isinstance(f, RefusedHosts)
    ]
    refused_hosts.allowed = type(refused_hosts.allowed)(5.0)  # as if none was logged yet
    with caplog.at_level("INFO"):
        for n in range(3):
            assert client.get("/health/ready", HTTP_HOST=f"evil-{n}.example").status_code == 400
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert (record.levelname, record.exc_info, record.exc_text) == ("WARNING", None, None)
    assert record.getMessage() == "request_host_refused"
    assert (record.error, record.detail) == (
        "DisallowedHost",
        "a Host not in ALLOWED_HOSTS, answered 400",
    )


@pytest.mark.django_db(databases=["default"])
def test_a_request_over_djangos_field_limit_is_one_warning_without_a_traceback(client, caplog):
    # Django's security logger wrote a traceback at ERROR for each query of over 1 000 fields,
    # answered 400: any client could fill the log and page whoever watches its errors.
    import logging

    from apps.common.logging import SUSPICIOUS_REQUEST_LOGGERS, SuspiciousRequests

    [suspicious] = {
        f
        for name in SUSPICIOUS_REQUEST_LOGGERS
        for f in logging.getLogger(name).filters
        if isinstance(f, SuspiciousRequests)
    }
    suspicious.allowed = type(suspicious.allowed)(5.0)  # as if none was logged yet
    fields = "&".join(["a"] * 1500)
    with caplog.at_level("INFO"):
        for _ in range(3):
            assert client.get(f"/api/v1/auth/login?{fields}").status_code == 400
    [record] = [r for r in caplog.records if r.name.startswith("django.security.")]
    assert record.name == "django.security.TooManyFieldsSent"
    assert (record.levelname, record.exc_info, record.exc_text) == ("WARNING", None, None)
    assert record.getMessage() == "request_refused_as_suspicious"
    assert (record.error, record.detail) == (
        "TooManyFieldsSent",
        "Django's request limits, answered 400",
    )
