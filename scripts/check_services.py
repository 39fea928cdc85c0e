"""Before the suite: make sure PostgreSQL and Redis answer, and the base databases exist.

Stops with a message on how to start a missing service instead of a stack trace. pytest-django
then creates its own `test_*` databases beside these.
"""

from __future__ import annotations

import os
import sys

import psycopg
import redis
from psycopg import sql

PG_URL = os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = os.environ.get("DB_PREFIX", "platform")
DATABASES = [f"{PREFIX}_accounts", f"{PREFIX}_gateway", f"{PREFIX}_aggregation"]

START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def fail(what: str, error: Exception, how: str) -> None:
    print(f"\n{what} is not reachable ({type(error).__name__}: {error}).", file=sys.stderr)
    print(f"Start it with:\n    {how}\nthen run `make test` again.\n", file=sys.stderr)
    sys.exit(2)


def ensure_postgres() -> None:
    try:
        with psycopg.connect(f"{PG_URL}/postgres", connect_timeout=3, autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    print(f"created database {name}")
    except psycopg.OperationalError as error:
        fail(f"PostgreSQL at {PG_URL}", error, START_PG)


def ensure_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:
        fail(f"Redis at {REDIS_URL}", error, START_REDIS)


if __name__ == "__main__":
    ensure_postgres()
    ensure_redis()
    print(f"PostgreSQL and Redis are up; databases: {', '.join(DATABASES)}")
