"""RequestPasswordReset."""

from dataclasses import replace

from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.password_reset import ResetPasswordError
from tests.unit.accounts.conftest import request_password_reset, reset_password


def test_request_mails_real_accounts_only(world, alice):
    world.users.add(replace(alice, id=type(alice.id).new(), email=type(alice.email)("d@x.io")))
    deleted = world.users.by_email(type(alice.email)("d@x.io"))
    deleted.status = UserStatus.DELETED
    world.users.save(deleted)
    for email in ("ALICE@example.com", "nobody@x.io", "d@x.io", "junk"):
        assert request_password_reset(world).execute(email).is_ok()
    assert [(k, to) for k, to, _ in world.mailer.sent] == [("reset", "alice@example.com")]
    assert world.quota.taken == {"alice@example.com": 1}


def test_an_address_past_its_budget_is_sent_nothing_and_its_last_token_still_works(world, alice):
    world.quota.limit = 1
    assert request_password_reset(world).execute("alice@example.com").is_ok()
    mailed = world.mailer.sent[-1][2]
    assert request_password_reset(world).execute(" ALICE@Example.COM").is_ok()
    assert [to for _, to, _ in world.mailer.sent] == ["alice@example.com"]
    assert world.quota.taken == {"alice@example.com": 2}
    assert world.events.events == ["email_throttled:password_reset"]
    # No token was issued for the throttled ask, so the one mailed still resets the password.
    assert reset_password(world).execute(mailed, "brand-new-secret-9").is_ok()
    assert reset_password(world).execute(mailed, "brand-new-secret-9") == Err(
        ResetPasswordError.INVALID
    )
