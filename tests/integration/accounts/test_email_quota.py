"""CacheEmailQuota: per-address budgets of reset and verification emails, in the real Redis."""

import pytest
from django.core.cache import caches

from apps.accounts.ratelimits import CacheEmailQuota
from core.domain.accounts.values import Email
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.django_db(databases=["default"])
ALICE = Email("alice@example.com")


def test_an_address_gets_its_budget_per_window_and_no_more():
    clock = FakeClock()
    quota = CacheEmailQuota("password_reset", "2/h", clock=clock)
    assert [quota.take(ALICE) for _ in range(4)] == [True, True, False, False]
    assert quota.take(Email("bob@example.com"))
    assert CacheEmailQuota("verification_resend", "2/h", clock=clock).take(ALICE)
    clock.advance(hours=1)
    assert [quota.take(ALICE) for _ in range(3)] == [True, True, False]


def test_the_cache_holds_a_hash_of_the_address_never_the_address():
    CacheEmailQuota("password_reset", "2/h", clock=FakeClock()).take(ALICE)
    keys = caches["ratelimit"].keys("accounts:email-quota:*")
    assert len(keys) == 1
    assert "alice" not in keys[0]


def test_without_a_rate_there_is_no_budget():
    quota = CacheEmailQuota("password_reset", None, clock=FakeClock())
    assert all(quota.take(ALICE) for _ in range(20))
    assert caches["ratelimit"].keys("accounts:email-quota:*") == []


def test_an_unreachable_cache_lets_the_email_go(redis_down):
    quota = CacheEmailQuota("password_reset", "1/h", clock=FakeClock())
    assert [quota.take(ALICE) for _ in range(3)] == [True, True, True]
