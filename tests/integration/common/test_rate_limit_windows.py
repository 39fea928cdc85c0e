"""How long a refusal of `apps.common.ratelimits.enforce` asks the client to wait (its
`retry_after`, the 429's Retry-After), on django-ratelimit's fixed windows in the real
`ratelimit` cache (Redis), with django-ratelimit's clock set by the test (`ratelimit_clock`).

A window includes its last whole second: a client that waits `retry_after` seconds from its
refused request must be counted in a new window, and one that comes back a second sooner must
still be refused."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django_ratelimit.core import _get_window
from django_ratelimit.exceptions import Ratelimited

from apps.common.ratelimits import enforce

pytestmark = pytest.mark.django_db(databases=[])  # no database; the cache starts empty

CALLER = "caller-1"


def count(rate: str) -> int | None:
    """One request of `CALLER` at django-ratelimit's clock: None when let through, else the
    refusal's `retry_after`."""
    try:
        enforce(
            RequestFactory().get("/"),
            group="test.windows",
            rate=rate,
            key=lambda group, request: CALLER,
            refused=lambda: None,
        )
    except Ratelimited as error:
        return error.retry_after  # type: ignore[attr-defined]
    return None


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0.0, 60),  # the window's first second, at its very start: the whole window
        (30.5, 30),  # halfway: 29.5 s left, rounded up
        (59.999, 1),  # its last second: the next window starts within it
    ],
)
def test_a_refusal_asks_to_wait_until_the_next_window_starts(ratelimit_clock, offset, expected):
    last = _get_window(CALLER, 60)  # the last whole second of the window the clock stands in
    refused_at = last - 59 + offset
    ratelimit_clock.now = refused_at
    assert [count("5/m") for _ in range(5)] == [None] * 5
    retry_after = count("5/m")
    assert retry_after == expected
    ratelimit_clock.now = refused_at + retry_after - 1  # a second sooner: the same window
    assert count("5/m") == 1
    ratelimit_clock.now = refused_at + retry_after
    assert count("5/m") is None


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.999])
def test_a_refusal_of_a_per_second_rate_asks_for_one_second(ratelimit_clock, fraction):
    refused_at = int(ratelimit_clock.now) + fraction
    ratelimit_clock.now = refused_at
    assert [count("2/s") for _ in range(3)] == [None, None, 1]
    ratelimit_clock.now = refused_at + 1
    assert count("2/s") is None
