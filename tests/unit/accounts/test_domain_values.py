"""Value objects: Email, UserId, PasswordHash, roles; password rules."""

import pytest

from core.domain.accounts.passwords import PasswordRejected, looks_like_email
from core.domain.accounts.values import Email, PasswordHash, UserId, is_valid_role


def test_email_is_trimmed_and_case_folded():
    assert Email.parse("  A.B@X.IO ") == Email("a.b@x.io")
    assert str(Email.parse("a@x.io")) == "a@x.io"


@pytest.mark.parametrize("raw", ["", "plain", "a@b", "a b@c.io", "a@@b.io", "x" * 250 + "@b.io"])
def test_bad_emails_do_not_parse(raw):
    assert Email.parse(raw) is None


def test_email_refuses_a_non_normalised_value():
    with pytest.raises(ValueError, match="normalised"):
        Email("A@x.io")


def test_user_ids_are_canonical_uuids():
    new = UserId.new()
    assert UserId.parse(new.value.upper()) == new
    assert str(new) == new.value
    assert UserId.parse("nope") is None


def test_password_hash_never_prints():
    hashed = PasswordHash("bcrypt_sha256$secret")
    assert "secret" not in repr(hashed)
    assert "secret" not in str(hashed)
    assert hashed.usable
    assert not PasswordHash("!unusable").usable


def test_roles_are_slugs():
    assert is_valid_role("admin")
    assert is_valid_role("billing:read")
    assert not is_valid_role("Admin")
    assert not is_valid_role("")


def test_email_like_passwords_are_spotted():
    assert looks_like_email("someone@example.org")
    assert not looks_like_email("correct horse battery")


def test_password_rejection_is_a_validation_error_on_a_field():
    rejected = PasswordRejected(("too short",))
    assert (rejected.field, rejected.value) == ("password", "validation_error")
