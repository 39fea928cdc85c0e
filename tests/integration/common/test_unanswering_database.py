"""A PostgreSQL that stops answering (a stopped server, a lost network) fails a call in bounded
time: the connection accepts the query and the kernel acknowledges it, so only the client's own
deadline ends the wait. The database sits behind a relay the test freezes."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections
from django.db.utils import ConnectionHandler

from config import env
from tests.factories.relay import TcpRelay

TIMEOUT_S = 1  # DATABASE_TIMEOUT_SECONDS of the relayed alias (its smallest allowed value)
# A call fails within DATABASE_TIMEOUT_SECONDS + 1 s; far more leaves room for a loaded machine,
# and far less than forever, which is what waiting on a frozen server took.
BOUND_S = 10.0


@pytest.fixture
def relay():
    db = connections["default"].settings_dict
    relay = TcpRelay((db["HOST"], int(db["PORT"]))).start()
    yield relay
    relay.cut()


@pytest.fixture
def relayed(relay, monkeypatch, tmp_path):
    """A database connection configured as the settings configure one, through the relay."""
    db = connections["default"].settings_dict
    monkeypatch.setenv(
        "RELAYED_DATABASE_URL", f"postgresql://{db['USER']}@127.0.0.1:{relay.port}/postgres"
    )
    config = env.database(
        "RELAYED_DATABASE_URL", sqlite_file=tmp_path / "x", conn_max_age=60, timeout_s=TIMEOUT_S
    )
    connection = ConnectionHandler({"default": config})["default"]  # a handler of its own
    connection.inc_thread_sharing()  # each call runs on a thread the test can give up on
    yield connection
    connection.close()
    connection.dec_thread_sharing()


def _select_one(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()


def _within_bound(call):
    """`call()`'s outcome (a value or the exception it raised) and how long it took; fails if it
    has not ended within BOUND_S (the thread is left waiting: a daemon)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except Exception as error:  # the outcome under test
            outcome["error"] = error

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), f"still waiting on the frozen database after {BOUND_S} s"
    return outcome, time.monotonic() - started


@pytest.mark.django_db(databases=["default"])
def test_a_query_the_database_never_answers_fails_and_the_connection_is_dropped(relayed, relay):
    assert _select_one(relayed) == (1,)
    relay.freeze()

    outcome, took = _within_bound(lambda: _select_one(relayed))

    assert isinstance(outcome.get("error"), OperationalError), outcome
    assert took >= TIMEOUT_S  # the server's statement timeout had its chance first
    # The answer may yet arrive: a connection left mid-call is never used again.
    assert relayed.connection is None or relayed.connection.closed
    relay.thaw()
    relayed.close()
    assert _select_one(relayed) == (1,)  # the next call connects afresh


@pytest.mark.django_db(databases=["default"])
def test_the_health_check_and_commit_of_a_kept_connection_end_too(relayed, relay):
    assert _select_one(relayed) == (1,)
    relay.freeze()
    outcome, _ = _within_bound(relayed.is_usable)
    assert outcome == {"value": False}

    relay.thaw()
    relayed.close()
    relayed.set_autocommit(False)
    _select_one(relayed)
    relay.freeze()
    outcome, _ = _within_bound(relayed.commit)
    assert isinstance(outcome.get("error"), OperationalError), outcome
