"""django-prometheus' PostgreSQL backend, with a deadline on every wait for the server.

libpq waits for an answer as long as the connection stands: a server that stopped answering (a
stopped or frozen process, a network that drops packets without a reset) keeps a request's thread
forever, since the kernel still acknowledges the query and `statement_timeout` is the server's
own. Each connection here stops waiting `OPTIONS["answer_timeout"]` seconds into any call (a
query, the health check's `SELECT 1`, a commit), closes itself and raises `OperationalError`,
which the API answers 503 (apps/common/exceptions.py).
"""

from __future__ import annotations

from typing import Any

import psycopg
from django_prometheus.db.backends.postgresql import base
from psycopg import errors


class AnsweringConnection(psycopg.Connection):
    """psycopg's connection whose every wait for the server ends by `answer_timeout`."""

    answer_timeout: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        # `interval` as psycopg's own default: how often a wait wakes to notice a signal.
        try:
            return super().wait(gen, interval, self.answer_timeout if timeout is None else timeout)
        except errors._WaitTimeout:  # psycopg's own deadline ran out (its internal error)
            if timeout is not None:
                raise  # a caller's own deadline (psycopg's cancel, notifies): its handling
            # The answer may still come: a connection left mid-call is never used again.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"PostgreSQL did not answer within {self.answer_timeout:g} s"
            ) from None


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        self._answer_timeout = params.pop("answer_timeout", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        # Django connects with psycopg.connect (no class to choose); the subclass only adds the
        # deadline to `wait`, so the connection becomes one as it is.
        connection.__class__ = AnsweringConnection
        connection.answer_timeout = self._answer_timeout
        return connection
