"""The platform's password hasher: Django's bcrypt-SHA256 over the password's normalised form.

Every path that hashes or checks a password goes through Django's configured hasher: the API's
`DjangoPasswordHasher`, Django admin's sign-in (`ModelBackend`) and password forms,
`changepassword` and `createsuperuser`. Normalising here (`normalise_password`, NFKC) makes
them all take `café` typed composed or decomposed as one password, with one bcrypt run each.
Imported by the settings: nothing here may load models.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

from core.domain.accounts.passwords import normalise_password


class NormalisingBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """`bcrypt_sha256` of the NFKC form of the password. Its algorithm keeps Django's name, so
    its hashes are Django's own (hashes made before it was configured verify when their
    password was typed in its NFKC form, as ASCII passwords are). Only `encode` normalises:
    Django's `verify` encodes the password it is given with the stored salt and compares."""

    def encode(self, password: str, salt: Any) -> str:
        return str(super().encode(normalise_password(password), salt))
