"""InBackground: the use case runs off the request's thread, or in it when switched off."""

import threading

import pytest

from apps.accounts.background import InBackground


class Recorder:
    def __init__(self, fail=False):
        self.seen = []
        self.fail = fail

    def execute(self, email):
        self.seen.append((email, threading.current_thread().name))
        if self.fail:
            raise RuntimeError("mail server down")


def test_switched_off_it_runs_in_the_request():
    recorder = Recorder()
    assert InBackground(lambda: recorder, enabled=False).execute("a@example.com") is None
    assert recorder.seen == [("a@example.com", threading.current_thread().name)]


@pytest.mark.django_db(databases=["default"])
def test_switched_on_it_answers_at_once_and_runs_on_the_pool():
    recorder = Recorder()
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


@pytest.mark.django_db(databases=["default"])
def test_a_failure_in_the_background_is_logged_not_raised():
    future = InBackground(lambda: Recorder(fail=True), enabled=True).execute("c@example.com")
    assert future.result(timeout=10) is None
