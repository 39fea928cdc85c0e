"""ResendVerification."""

from core.domain.accounts.user import UserStatus
from core.usecases.accounts.registration import ResendVerification, VerifyEmail
from tests.fakes.accounts import make_user


def verify(w):
    return VerifyEmail(users=w.users, tokens=w.tokens, uow=w.uow, clock=w.clock)


def resend(w):
    return ResendVerification(
        users=w.users, tokens=w.tokens, mailer=w.mailer, uow=w.uow, clock=w.clock
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
