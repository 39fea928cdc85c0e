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
    "FORWARDED_ALLOW_IPS",
    "TRUSTED_PROXY_COUNT",
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
        # gunicorn stopped on these with its own message, naming no variable.
        ("FORWARDED_ALLOW_IPS", "not-an-ip", "FORWARDED_ALLOW_IPS must list IP addresses"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8", "FORWARDED_ALLOW_IPS must list IP addresses"),
        ("FORWARDED_ALLOW_IPS", "127.0.0.1, ,::1", "FORWARDED_ALLOW_IPS must list IP addr"),
    ],
)
def test_a_bad_number_stops_the_start_naming_the_variable(reload, name, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        reload(**{name: value})


@pytest.mark.parametrize("value", ["*", "10.0.0.0/8, 192.0.2.7,2001:db8::/32", ""])
def test_forwarded_allow_ips_takes_what_gunicorn_takes(reload, value):
    from gunicorn.config import validate_string_to_addr_list

    allowed = reload(TRUSTED_PROXY_COUNT="1", FORWARDED_ALLOW_IPS=value).forwarded_allow_ips
    assert allowed == value
    validate_string_to_addr_list(allowed)  # gunicorn's own reading of it


def test_web_concurrency_is_checked_without_redis_too(reload, monkeypatch):
    # gunicorn reads it itself (int(), its `workers` default, as gunicorn.config is imported)
    # even when this file then ignores it: a bare ValueError traceback, naming no variable.
    monkeypatch.delenv("REDIS_URL")
    for value in ("abc", ""):
        with pytest.raises(
            ImproperlyConfigured, match=f"WEB_CONCURRENCY must be an integer, not '{value}'"
        ):
            reload(WEB_CONCURRENCY=value)
    assert reload(WEB_CONCURRENCY="4").workers == 1  # without Redis: one process, always
