"""InBackground: the use case runs off the request's thread, or in it when switched off."""

import threading

from apps.accounts.background import InBackground
from tests.fakes.accounts import FakeEmailUseCase


def test_switched_off_it_runs_in_the_request():
    recorder = FakeEmailUseCase()
    assert InBackground(lambda: recorder, enabled=False).execute("a@example.com") is None
    assert recorder.seen == [("a@example.com", threading.current_thread().name)]


def test_switched_on_it_answers_at_once_and_runs_on_the_pool():
    recorder = FakeEmailUseCase()
    started = threading.Event()
    release = threading.Event()

    def make():
        started.set()
        release.wait(10)
        return recorder

    future = InBackground(make, enabled=True).execute("b@example.com")
    assert started.wait(10)
    assert recorder.seen == []  # the caller got its answer while the work waits
    release.set()
    future.result(timeout=10)
    [(email, thread)] = recorder.seen
    assert email == "b@example.com"
    assert thread.startswith("account-email")


def test_a_failure_in_the_background_is_logged_not_raised(caplog):
    with caplog.at_level("INFO", logger="apps.accounts.background"):
        failing = InBackground(lambda: FakeEmailUseCase(fail=True), enabled=True)
        future = failing.execute("c@example.com")
        assert future.result(timeout=10) is None
    logged = [r for r in caplog.records if r.name == "apps.accounts.background"]
    assert len(logged) == 1, f"the failure was not logged once: {logged}"
    [record] = logged
    assert record.levelname == "ERROR"
    assert record.msg["event"] == "account_email_use_case_failed"
    assert record.exc_info is not None, "a bug keeps its traceback"
    assert record.exc_info[1].args == ("mail server down",)
    assert "c@example.com" not in str(record.msg)  # never the address
