"""CacheEmailQuota: per-address budgets of reset and verification emails, in the real Redis."""

import hashlib

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


def test_the_key_holds_an_hmac_under_the_secret_key_not_a_plain_hash(settings):
    """Anyone who reads Redis could hash a guessed address and find it among plain hashes."""
    quota = CacheEmailQuota("password_reset", "5/h", clock=FakeClock())
    quota.take(ALICE)
    quota.take(ALICE)
    [key] = caches["ratelimit"].keys("accounts:email-quota:*")
    assert hashlib.sha256(ALICE.value.encode()).hexdigest() not in key
    quota.take(Email("bob@example.com"))
    assert len(caches["ratelimit"].keys("accounts:email-quota:*")) == 2
    settings.SECRET_KEY = "another-secret-key-" * 3  # another deployment's key
    quota.take(ALICE)
    assert len(caches["ratelimit"].keys("accounts:email-quota:*")) == 3


def test_without_a_rate_there_is_no_budget():
    quota = CacheEmailQuota("password_reset", None, clock=FakeClock())
    assert all(quota.take(ALICE) for _ in range(20))
    assert caches["ratelimit"].keys("accounts:email-quota:*") == []


def test_an_unreachable_cache_lets_the_email_go(redis_down):
    quota = CacheEmailQuota("password_reset", "1/h", clock=FakeClock())
    assert [quota.take(ALICE) for _ in range(3)] == [True, True, True]


def test_an_unreachable_cache_is_counted_every_time_and_warned_of_every_few_seconds_per_kind(
    redis_down, caplog
):
    # Each email asked for logged its own `email_quota_unavailable` line, and none was counted.
    from prometheus_client import REGISTRY

    from apps.common.logging import EveryFewSeconds

    now = [100.0]
    reset = CacheEmailQuota(
        "password_reset",
        "1/h",
        clock=FakeClock(),
        log_failure=EveryFewSeconds(5.0, lambda: now[0]),
    )
    name = "platform_accounts_email_budget_unavailable_total"
    labels = {"kind": "password_reset"}
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    with caplog.at_level("INFO", logger="apps.accounts.ratelimits"):
        for at in (100.0, 101.0, 104.9, 105.1):
            now[0] = at
            assert reset.take(ALICE)  # the budget lapses: the email goes
    lines = [r for r in caplog.records if r.name == "apps.accounts.ratelimits"]
    assert [(r.levelname, r.exc_info, r.msg["kind"]) for r in lines] == [
        ("WARNING", None, "password_reset")
    ] * 2  # at 100 and at 105.1
    assert REGISTRY.get_sample_value(name, labels) == before + 4


def test_each_kind_of_email_is_warned_of_on_its_own_by_default():
    from apps.accounts.ratelimits import email_quota_logged

    assert email_quota_logged("password_reset") is email_quota_logged("password_reset")
    assert email_quota_logged("password_reset") is not email_quota_logged("verification_resend")
