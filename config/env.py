"""Typed readers for environment variables.

Each helper fails loudly with `ImproperlyConfigured` naming the variable on bad input, so a
misconfigured deployment stops at start-up instead of misbehaving later.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.domain.shared.rates import parse_rate

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# A rate limit: `count/period`, the period `s`, `m`, `h` or `d`, optionally a multiple (`100/5m`)
# but never of zero: django-ratelimit refuses a 0-second period on every request it limits.
_NO_LIMIT = {"", "0"}


def env_str(name: str, default: str | None = None) -> str:
    """The variable's value, or `default`; raises when neither exists."""
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is None:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return default


def env_secret(name: str) -> str:
    """A secret that must be set and not empty (Django's own refusal of an empty SECRET_KEY
    names no variable)."""
    value = os.environ.get(name)
    if not value:
        state = "it is empty" if value is not None else "it is not set"
        raise ImproperlyConfigured(f"Set the {name} environment variable ({state}).")
    return value


def env_optional(name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    return os.environ.get(name) or None


def env_redis_url(name: str) -> str | None:
    """A Redis URL redis-py can connect with (`redis://`, `rediss://`, `unix://`), or None when
    unset or empty. redis-py refuses another scheme only at the first connection (a worker that
    fails to boot, naming no variable) and reads a database that is no number as 0."""
    raw = env_optional(name)
    if raw is None:
        return None
    # Imported here: settings read this module before anything else, and only a deployment
    # with Redis needs redis-py's parser.
    from urllib.parse import urlsplit

    from redis.connection import parse_url

    usage = f"{name} must be a Redis URL (redis://host:port/db, rediss://… or unix://…)"
    try:
        parse_url(raw)
        parts = urlsplit(raw)
    except ValueError:  # the message never quotes the URL: it may hold a password
        raise ImproperlyConfigured(f"{usage}.") from None
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise ImproperlyConfigured(f"{usage}; its database must be a number.")
    return raw


def env_bool(name: str, default: bool) -> bool:
    """A boolean written as 1/0, true/false, yes/no or on/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {raw!r}.")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer, optionally bounded."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}.")
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """A finite float, optionally bounded (`nan` and `inf` would pass any comparison, or fail
    far from here: in a `poll` timeout, say)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a finite number, not {raw!r}.")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}.")
    return value


def env_choice(name: str, default: str, choices: Iterable[str], *, upper: bool = False) -> str:
    """One of `choices` (compared in upper case when `upper`)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper() if upper else raw.strip()
    allowed = list(choices)
    if value not in allowed:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(allowed)}, not {raw!r}.")
    return value


def env_rate(name: str, default: str) -> str:
    """A rate limit written `count/period` (`10/m`, `100/5m`; period `s`, `m`, `h` or `d`)."""
    value = env_str(name, default).strip()
    if parse_rate(value) is None:
        raise ImproperlyConfigured(f"{name} must look like 10/m (count/period s, m, h or d).")
    return value


def env_optional_rate(name: str, default: str) -> str | None:
    """As `env_rate`, or None (no limit) when set to `0` or empty."""
    if os.environ.get(name, default).strip() in _NO_LIMIT:
        return None
    return env_rate(name, default)


def env_port(name: str, default: int) -> int:
    """A TCP port, 1 to 65535."""
    return env_int(name, default, minimum=1, maximum=65535)


def env_http_url(name: str, default: str) -> str:
    """An absolute http(s) URL with a host and neither query nor fragment (something a path is
    appended to), without its trailing slashes."""
    from urllib.parse import urlsplit

    raw = env_str(name, default).strip()
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises on a port that is no number or out of range
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or raw.endswith(("?", "#"))
    ):
        raise ImproperlyConfigured(
            f"{name} must be an absolute http(s) URL such as https://app.example.com "
            f"(no query or fragment), not {raw!r}."
        )
    return raw.rstrip("/")


def env_import_path(name: str, default: str) -> str:
    """The dotted path of a class or function that imports (`EMAIL_BACKEND`): Django imports
    such a setting only at its first use, so a typo stopped nothing and failed in the middle of
    a request, or in the background."""
    from django.utils.module_loading import import_string

    value = env_str(name, default).strip()
    try:
        import_string(value)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"{name} must be the dotted path of an importable class, not {value!r} ({error})."
        ) from None
    return value


def env_forwarded_allow_ips(name: str, default: str) -> str:
    """gunicorn's list of trusted front ends: comma-separated IP addresses or networks (a
    network with host bits set refused, as gunicorn does), or `*` for any; an empty value is
    none. Checked item by item as gunicorn itself splits it, so what passes here, it takes."""
    raw = env_str(name, default)
    for item in (part.strip() for part in raw.split(",") if part):
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks such as 127.0.0.1,10.0.0.0/8 "
                f"(or be *), not {item!r}."
            ) from None
    return raw


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of IP networks (`10.0.0.0/8`, `2001:db8::/32`; an address alone
    is its own network), in their normal text form; blanks are dropped, an empty value is an
    empty list. A network with host bits set (`10.0.0.1/8`) is refused: it is a typo for one
    of two networks, and guessing which would open or close the wrong one."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(str(ipaddress.ip_network(item)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP networks such as 10.0.0.0/8 or ::1, not {item!r}."
            ) from None
    return networks


def database(name: str, *, sqlite_file: Path, conn_max_age: int, timeout_s: int) -> dict[str, Any]:
    """One `DATABASES` entry: PostgreSQL from the URL in `name`, else an embedded SQLite file.

    PostgreSQL connections get a connect timeout, a statement timeout, and a second more for
    any answer of the server (apps/common/postgresql: one that stopped answering fails the call
    instead of holding it forever), and are health-checked before reuse; django-prometheus'
    backend wrappers count queries per alias.
    """
    url = env_optional(name)
    if url is None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django_prometheus.db.backends.sqlite3",
            "NAME": str(sqlite_file),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {error}") from None
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{name} must be a postgres:// or postgresql:// URL.")
    config["ENGINE"] = "apps.common.postgresql"
    config.setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": timeout_s,
            "options": f"-c statement_timeout={timeout_s * 1000}",
            "answer_timeout": timeout_s + 1,
        }
    )
    return config


def env_max_request_body_bytes() -> int:
    """`MAX_REQUEST_BODY_BYTES`: the largest request body the platform takes (1 MiB by default);
    read here once for the settings and for the gunicorn worker, which buffers bodies up to it."""
    return env_int("MAX_REQUEST_BODY_BYTES", 1024 * 1024, minimum=1024)


def env_gateway_max_body_bytes() -> int | None:
    """`GATEWAY_MAX_BODY_BYTES`: the largest body the proxy forwards; None: the platform's."""
    return env_int("GATEWAY_MAX_BODY_BYTES", 0, minimum=0) or None
