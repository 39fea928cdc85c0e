"""Use cases whose answer must not depend on whether an email address has an account.

Password reset and verification resend answer "202, if this address has an account, an email
is on its way". Done in the request, a known address costs a lookup, a token written to the
database and an email, an unknown one only the lookup: measured 7.4 vs 5.0 ms, a timing oracle
for account enumeration. `InBackground` hands the whole use case to a small pool of threads, so
the request does the same thing for every address: validate, hand over, answer.

Login is the same: a wrong password for a known address was counted (the lockout) in the
request, a locked transaction more than for an unknown address (measured 5.7 vs 1.9 ms with
the tests' cheap hasher). `BackgroundLoginFailures` counts it on a pool of its own, so a slow
mail server never delays a lockout.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import cache
from typing import Any, Protocol

import structlog
from django.db import InterfaceError, OperationalError, connections

from apps.common.exceptions import conflict_sqlstate
from core.domain.accounts.values import UserId

log = structlog.get_logger(__name__)


class _EmailUseCase(Protocol):
    def execute(self, email: str) -> Any: ...


@cache
def _pool() -> ThreadPoolExecutor:
    # Two threads: these requests are rate limited per IP, and an email that waits a moment in
    # the queue changes nothing for its reader.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="account-email")


@cache
def _lockout_pool() -> ThreadPoolExecutor:
    # One thread: the counts of one account lock its row one after the other anyway.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="account-lockout")


def submit(work: Callable[..., Any], *args: Any) -> Future[Any]:
    """Run `work(*args)` on the accounts' background pool (emails, email use cases), in the
    submitting request's context: its log lines carry the request's id, its spans its trace."""
    return _pool().submit(contextvars.copy_context().run, work, *args)


def _logged(event: str, make: Callable[[], Any], *args: Any) -> None:
    """`make().execute(*args)` on a pool thread. Nobody waits for its answer, so a failure is
    logged as `event` (never the address): a deadlock or serialization failure lost to another
    transaction (these use cases take row locks) as a warning with `reason` database_conflict
    and its sqlstate, a database outage as one with `reason` database_unavailable naming the
    error, as the request path logs them, anything else with its traceback. The thread's own
    database connections are closed."""
    try:
        make().execute(*args)
    except (OperationalError, InterfaceError) as error:
        sqlstate = conflict_sqlstate(error)
        if sqlstate is not None:
            log.warning(event, reason="database_conflict", sqlstate=sqlstate)
        else:  # a database is unreachable
            log.warning(event, reason="database_unavailable", error=type(error).__name__)
    except Exception:
        log.exception(event)
    finally:
        connections.close_all()


class InBackground:
    """Runs `make().execute(email)` on the background pool and returns at once (or, when not
    `enabled`, in the request, as the tests and `ACCOUNTS_EMAIL_IN_BACKGROUND=false` want)."""

    def __init__(self, make: Callable[[], _EmailUseCase], *, enabled: bool) -> None:
        self._make = make
        self._enabled = enabled

    def execute(self, email: str) -> Future[None] | None:
        if not self._enabled:
            self._make().execute(email)
            return None
        return submit(_logged, "account_email_use_case_failed", self._make, email)


class _RecordsFailures(Protocol):
    def execute(self, user_id: UserId, at: datetime) -> Any: ...


class BackgroundLoginFailures:
    """`LoginFailures` that counts on the lockout pool and returns at once (or, when not
    `enabled`, in the request). A count lands a few milliseconds after its answer; a login
    with the right password re-reads the lock under its row lock, so one counted meanwhile
    still holds."""

    def __init__(self, make: Callable[[], _RecordsFailures], *, enabled: bool) -> None:
        self._make = make
        self._enabled = enabled

    def record(self, user_id: UserId, at: datetime) -> Future[None] | None:
        if not self._enabled:
            self._make().execute(user_id, at)
            return None
        return _lockout_pool().submit(_logged, "failed_login_count_failed", self._make, user_id, at)
