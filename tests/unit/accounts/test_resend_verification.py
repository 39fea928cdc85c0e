"""ResendVerification."""

from dataclasses import replace

import pytest

from core.domain.accounts.user import UserStatus
from core.usecases.accounts.registration import ResendVerification, VerifyEmail
from tests.fakes.accounts import InMemoryEmailQuota, make_user
from tests.unit.accounts.conftest import unlocked_token_writes


def verify(w):
    return VerifyEmail(users=w.users, tokens=w.tokens, uow=w.uow, clock=w.clock)


def resend(w):
    return ResendVerification(
        users=w.users,
        tokens=w.tokens,
        mailer=w.mailer,
        quota=w.quota,
        uow=w.uow,
        clock=w.clock,
        events=w.events,
    )


def unverified(w, **fields):
    user = make_user(w.clock, email_verified=False, **fields)
    w.users.add(user)
    return user


def test_resend_mails_only_active_unverified_accounts(world, alice):
    unverified(world, email="new@example.com")
    unverified(world, email="gone@example.com", status=UserStatus.SUSPENDED)
    for email in ("new@example.com", "alice@example.com", "gone@example.com", "x@y.io", "bad"):
        assert resend(world).execute(email).is_ok()
    assert [(kind, to) for kind, to, _ in world.mailer.sent] == [("verify", "new@example.com")]


def test_an_address_past_its_budget_is_sent_nothing_and_its_last_token_still_works(world):
    unverified(world, email="new@example.com")
    world.quota.limit = 1
    assert resend(world).execute("new@example.com").is_ok()
    mailed = world.mailer.sent[-1][2]
    assert resend(world).execute("NEW@Example.com").is_ok()
    assert [to for _, to, _ in world.mailer.sent] == ["new@example.com"]
    assert world.quota.taken == {"new@example.com": 2}
    assert world.events.events == ["email_throttled:verification_resend"]
    # No token was issued for the throttled ask, so it voided nothing.
    assert verify(world).execute(mailed).is_ok()


def test_addresses_without_an_email_to_send_spend_no_budget(world, alice):
    unverified(world, email="gone@example.com", status=UserStatus.SUSPENDED)
    for email in ("alice@example.com", "gone@example.com", "x@y.io", "bad"):
        assert resend(world).execute(email).is_ok()
    assert world.quota.taken == {}


def test_issuing_locks_the_user_first(world):
    # Resends of one address run one after the other behind the user's row, so each one's
    # void sees the token the last one issued: one live verification link at a time.
    user = unverified(world, email="new@example.com")
    sending = resend(world)
    assert unlocked_token_writes(world, lambda: sending.execute("new@example.com")) == []
    assert world.users.locked == [user.id.value]


class _ChangedWhileSpending(InMemoryEmailQuota):
    """Spends the budget; meanwhile the account is verified, suspended or removed."""

    def __init__(self, world, user, change) -> None:
        super().__init__()
        self._world, self._user, self._change = world, user, change

    def take(self, to):
        self._change(self._world, self._user)
        return super().take(to)


@pytest.mark.parametrize(
    "change",
    [
        lambda w, u: w.users.save(replace(u, email_verified=True)),
        lambda w, u: w.users.save(replace(u, status=UserStatus.SUSPENDED)),
        lambda w, u: w.users.rows.pop(u.id.value),
    ],
    ids=["verified", "suspended", "removed"],
)
def test_an_account_changed_before_its_row_was_locked_is_mailed_nothing(world, change):
    user = unverified(world, email="new@example.com")
    world.quota = _ChangedWhileSpending(world, user, change)
    assert resend(world).execute("new@example.com").is_ok()
    assert world.mailer.sent == []
    assert world.tokens.rows == {}


def test_an_address_changed_before_the_row_was_locked_is_mailed_nothing(world):
    # The link would go to an address the account no longer has (and verify that one).
    user = unverified(world, email="new@example.com")

    def readdress(users):
        users.save(replace(users.get(user.id), email=type(user.email)("new@elsewhere.example")))

    world.users.concurrently = readdress
    assert resend(world).execute("new@example.com").is_ok()
    assert world.users.concurrently is None, "the change never landed"
    assert world.mailer.sent == []
    assert world.tokens.rows == {}
