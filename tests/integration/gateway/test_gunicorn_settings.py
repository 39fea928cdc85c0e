"""config/gunicorn.py reads its settings through config.env: a bad value stops the start with
the variable's name instead of a bare ValueError (or a nonsensical server)."""

import importlib

import pytest
from django.core.exceptions import ImproperlyConfigured

NUMBERS = (
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_TIMEOUT",
    "GUNICORN_MAX_REQUESTS",
    "PORT",
    "LOG_LEVEL",
    "GUNICORN_REUSE_PORT",
)


@pytest.fixture
def reload(monkeypatch, tmp_path):
    """Reloads config/gunicorn.py with Redis on (so WEB_CONCURRENCY counts), metrics in
    tmp_path and none of NUMBERS set but what the test sets; a clean reload comes after."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the module sets a default
    for name in NUMBERS:
        monkeypatch.delenv(name, raising=False)
    import config.gunicorn

    def reload(**environ):
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(config.gunicorn)

    yield reload
    for name in NUMBERS:
        monkeypatch.delenv(name, raising=False)
    importlib.reload(config.gunicorn)  # not left half-executed by a refused value


def test_numbers_come_from_the_environment_with_defaults(reload):
    module = reload(WEB_CONCURRENCY="3", GUNICORN_TIMEOUT="0")  # 0: gunicorn's "no timeout"
    assert (module.workers, module.threads, module.keepalive) == (3, 8, 75)
    assert (module.timeout, module.max_requests) == (0, 0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_CONCURRENCY", "two", "WEB_CONCURRENCY must be an integer, not 'two'"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1, not 0"),
        ("GUNICORN_THREADS", "0", "GUNICORN_THREADS must be at least 1, not 0"),
        ("GUNICORN_KEEPALIVE", "-1", "GUNICORN_KEEPALIVE must be at least 0, not -1"),
        ("GUNICORN_TIMEOUT", "30s", "GUNICORN_TIMEOUT must be an integer, not '30s'"),
        ("GUNICORN_MAX_REQUESTS", "1e3", "GUNICORN_MAX_REQUESTS must be an integer"),
        ("PORT", "http", "PORT must be an integer, not 'http'"),
        ("PORT", "70000", "PORT must be at most 65535, not 70000"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO"),
        ("GUNICORN_REUSE_PORT", "maybe", "GUNICORN_REUSE_PORT must be a boolean"),
    ],
)
def test_a_bad_number_stops_the_start_naming_the_variable(reload, name, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        reload(**{name: value})
