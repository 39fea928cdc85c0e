"""Structured JSON logs through structlog, for our code and the standard library alike.

Every line carries the request id bound by `RequestIdMiddleware`, and with tracing on the
current span's `trace_id` and `span_id`. Sensitive keys are masked by
`redact_secrets` before rendering, as a safety net: code must not log secrets in the first place.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import structlog
from django.conf import settings

# A key naming any of these, in any case and anywhere in the name (`raw_token`,
# `email_host_password`, `X-Api-Key`), has its value masked, at any depth of the event.
SENSITIVE_PARTS = (
    "password",
    "passwd",
    "token",
    "secret",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "api-key",
    "signing_key",
    "private_key",
    "credential",
)
MASK = "***"
_verdicts: dict[str, bool] = {}


def _sensitive(key: str) -> bool:
    verdict = _verdicts.get(key)
    if verdict is None:
        lowered = key.lower()
        verdict = any(part in lowered for part in SENSITIVE_PARTS)
        if len(_verdicts) < 4096:  # log keys come from code: a small, fixed set
            _verdicts[key] = verdict
    return verdict


def _masked(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and _sensitive(key) else _masked(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(item, depth + 1) for item in value]
    return value


def redact_secrets(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any sensitive-looking key with a mask, in nested values too."""
    for key, value in event.items():
        if _sensitive(key):
            event[key] = MASK
        elif isinstance(value, dict | list | tuple):
            event[key] = _masked(value)
    return event


def add_trace_ids(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The current OpenTelemetry span's `trace_id` and `span_id`, unless the request bound its
    own (`bind_request`), so a line leads to its trace."""
    if "trace_id" not in event:
        event.update(_current_trace_ids())
    return event


def _current_trace_ids() -> dict[str, str]:
    from opentelemetry import trace  # only ever called with tracing on (settings.TRACING)

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def _tracing_processors() -> list[Any]:
    """`add_trace_ids` when tracing is on (settings.TRACING); nothing otherwise."""
    return [add_trace_ids] if settings.TRACING else []


def bind_request(request_id: str) -> None:
    """Start a request's log context: its id and, with tracing on, its span's ids, which every
    line of the request carries, the access-log line written after the span ended included."""
    structlog.contextvars.clear_contextvars()
    if settings.TRACING:
        structlog.contextvars.bind_contextvars(request_id=request_id, **_current_trace_ids())
    else:
        structlog.contextvars.bind_contextvars(request_id=request_id)


def _renderer() -> Any:
    if settings.LOG_FORMAT == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer()


class CountedEveryFewSeconds:
    """Counts what happens and says, at most once every `seconds` (shared by the threads of a
    process), how many times it happened since it last said so: for a line that an outage would
    repeat on every request but whose every occurrence matters (a loss), so the line that is
    written tells how many it stands for. A call answers 0 (stay quiet) or that number, this
    occurrence included."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds, self._clock = seconds, clock
        self._last: float | None = None
        self._untold = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._untold += 1
            now = self._clock()
            if self._last is not None and now - self._last < self._seconds:
                return 0
            self._last = now
            told, self._untold = self._untold, 0
            return told


class EveryFewSeconds(CountedEveryFewSeconds):
    """Says yes at most once every `seconds` (shared by the threads of a process): for a line
    that an outage, or any client, would otherwise repeat on every request."""

    def __call__(self) -> bool:
        return super().__call__() > 0


class EveryFewSecondsEach:
    """One `EveryFewSeconds` per key (a component, a kind of email), made at its first use."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._each: dict[str, EveryFewSeconds] = {}

    def __getitem__(self, key: str) -> EveryFewSeconds:
        return self._each.get(key) or self._each.setdefault(key, EveryFewSeconds(self._seconds))


class _ThrottledWarning(logging.Filter):
    """A record logged at error level with its traceback, for a condition that is no fault of
    ours and that anyone can repeat: one warning line without the traceback instead, at most
    every `every` seconds per process. Its event is the constant `event` (what a log query
    matches); the error's type and the `detail` are fields of their own (`THROTTLED_FIELDS`)."""

    event = ""
    detail = ""

    def __init__(self, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.allowed = EveryFewSeconds(every, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.allowed():
            return False
        error = record.exc_info[1] if record.exc_info else None
        record.msg, record.args = self.event, ()
        record.error, record.detail = type(error).__name__, self.detail
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


# The record attributes a `_ThrottledWarning` sets, rendered as fields of the line.
THROTTLED_FIELDS = ("error", "detail")


class IgnoredCacheErrors(_ThrottledWarning):
    """django-redis' "Exception ignored" record, logged with its traceback at error level on
    every call of a cache alias with `IGNORE_EXCEPTIONS` (the rate limits' `ratelimit` alias)
    while Redis is unreachable."""

    event = "cache_redis_unavailable"
    detail = "its limits lapse"


class RefusedHosts(_ThrottledWarning):
    """Django's security record for a request whose host is not allowed (a 400 the access line
    shows): a traceback at error level per request, which any client could repeat. The host
    itself is not repeated (the client chose it)."""

    event = "request_host_refused"
    detail = "a Host not in ALLOWED_HOSTS, answered 400"


class SuspiciousRequests(_ThrottledWarning):
    """Django's security records for a request it refuses as malformed (too many query or form
    fields, too many files, a broken multipart body; a 400 the access line shows): a traceback
    at error level per request, which any client could repeat."""

    event = "request_refused_as_suspicious"
    detail = "Django's request limits, answered 400"


# The `django.security.<exception>` loggers of what a client's request alone can raise while
# Django reads it. A logger's filters apply only to its own records, so each is named.
SUSPICIOUS_REQUEST_LOGGERS = tuple(
    f"django.security.{name}"
    for name in (
        "TooManyFieldsSent",
        "TooManyFilesSent",
        "SuspiciousMultipartForm",
        "RequestDataTooBig",
    )
)


class UnhandledOnly(logging.Filter):
    """`django.request` records of exceptions nobody handled (a 500, with its traceback) only:
    Django also logs every 5xx a view answers on purpose (a readiness 503, a database outage's
    503, a composite's 502) at error level, beside the line naming its cause and the access
    line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is not None


def configure_logging() -> None:
    """Route structlog and stdlib logging to one JSON (or console) stream on stdout."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        *_tracing_processors(),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer = _renderer()
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    loggers: dict[str, dict[str, Any]] = {
        # Our access log line replaces Django's per-request warnings for 4xx.
        "django.request": {"level": "ERROR", "filters": ["unhandled_only"]},
        "django.security.DisallowedHost": {"filters": ["refused_hosts"]},
        **{name: {"filters": ["suspicious_requests"]} for name in SUSPICIOUS_REQUEST_LOGGERS},
        "django.server": {"level": "ERROR"},
        "django.db.backends": {"level": "INFO"},
        # One line per outgoing call is noise; our own lines name the source or route.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django_redis.cache": {"filters": ["ignored_cache_errors"]},
    }
    # dictConfig adds a logger's filters to those it has: called again (tests do), each logger
    # had two throttled warnings, the second rewriting what the first had already rewritten.
    for name in loggers:
        for installed in logging.getLogger(name).filters[:]:
            if isinstance(installed, _ThrottledWarning | UnhandledOnly):
                logging.getLogger(name).removeFilter(installed)
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structured": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        renderer,
                    ],
                    # A standard-library record's own fields: a throttled warning's.
                    "foreign_pre_chain": [
                        structlog.stdlib.ExtraAdder(allow=THROTTLED_FIELDS),
                        *shared,
                    ],
                }
            },
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": sys.stdout,
                    "formatter": "structured",
                }
            },
            "root": {"handlers": ["stdout"], "level": settings.LOG_LEVEL},
            "loggers": loggers,
            "filters": {
                "ignored_cache_errors": {"()": IgnoredCacheErrors},
                "refused_hosts": {"()": RefusedHosts},
                "suspicious_requests": {"()": SuspiciousRequests},
                "unhandled_only": {"()": UnhandledOnly},
            },
        }
    )


def direct_logger(name: str, stream: TextIO | None = None) -> Any:
    """A structlog logger that renders and writes its own lines, one `write` each.

    Same fields, masking, renderer and level as every other line, without the standard
    library's record, handler and formatter machinery: for a line written on every request
    of a hot path (the gateway's access log; measured ~85 µs a line through logging, ~25 µs
    here, docs/gateway.md). It writes to stdout, not to other handlers a deployment may add.
    """

    def add_logger_name(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event["logger"] = name
        return event

    level = logging.getLevelNamesMapping().get(settings.LOG_LEVEL, logging.INFO)
    return structlog.wrap_logger(
        structlog.WriteLogger(stream or sys.stdout),
        processors=[
            structlog.contextvars.merge_contextvars,
            *_tracing_processors(),
            structlog.processors.add_log_level,
            add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            _renderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )


def bind_user(request: Any, user_id: str) -> None:
    """Record the authenticated user on the request and in every later log line."""
    request.platform_user_id = user_id
    structlog.contextvars.bind_contextvars(user_id=user_id)
