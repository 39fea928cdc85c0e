"""Value objects of the accounts context: `Email`, `UserId`, `PasswordHash` and roles."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

USER_ROLE = "user"
ADMIN_ROLE = "admin"
DEFAULT_ROLES: tuple[str, ...] = (USER_ROLE,)
# What an administrator the platform creates holds (the seeded admin, `createsuperuser`).
ADMIN_ROLES: tuple[str, ...] = (USER_ROLE, ADMIN_ROLE)
ROLE_PATTERN = r"^[a-z][a-z0-9_:.-]{0,49}\Z"
_ROLE = re.compile(ROLE_PATTERN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
# What `Email.parse` accepts, checked on the normalised form: an ASCII dot-atom local part,
# ASCII as sent (no quoted strings: few mail systems take them, and non-ASCII needs SMTPUTF8 end
# to end) and a host name of letters, digits and hyphens, which may be internationalised
# (checked as IDNA and stored as its ASCII A-labels, `xn--...`, the one spelling DNS uses).
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_TOP_LABEL = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})\Z")
# A UUID exactly as RFC 9562 writes it (8-4-4-4-12 hex digits, either letter case): what ids in
# paths must look like. `uuid.UUID` also reads `{...}`, `urn:uuid:...` and hyphen-less forms,
# which would give one resource many addresses.
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
MAX_ROLES = 20


# Control characters, line and paragraph separators, lone surrogates: a name is one line of
# text, shown in the admin, mails and other services' pages (a CR LF in it broke lines there).
_NOT_IN_A_NAME = frozenset({"Cc", "Cs", "Zl", "Zp"})
NAME_MESSAGE = "A name is one line of text: no control characters or line breaks."


def is_valid_full_name(full_name: str) -> bool:
    """A person's name: any text on one line, without control characters."""
    return not any(unicodedata.category(char) in _NOT_IN_A_NAME for char in full_name)


def is_valid_role(role: str) -> bool:
    """Roles are short lowercase slugs (`user`, `admin`, `billing:read`)."""
    return bool(_ROLE.fullmatch(role))


def valid_roles(roles: Iterable[str]) -> tuple[str, ...] | None:
    """`roles` as a user holds them, each once in the order given; None when one is not a
    role (`is_valid_role`)."""
    kept = tuple(dict.fromkeys(roles))
    return kept if all(is_valid_role(role) for role in kept) else None


def parse_roles(raw: object) -> tuple[str, ...] | None:
    """A user's roles from untyped input (a JSON value): a list of at most `MAX_ROLES` roles,
    each a string `is_valid_role` accepts, kept in order with duplicates dropped; None for
    anything else (a bare string, numbers, null, an object), which tokens could not carry."""
    if not isinstance(raw, list | tuple) or len(raw) > MAX_ROLES:
        return None
    if not all(isinstance(role, str) for role in raw):
        return None
    return valid_roles(raw)


@dataclass(frozen=True, slots=True)
class Email:
    """An email address, normalised (trimmed, case-folded, host in ASCII A-labels) so `A@X.io`
    and `a@x.io` are one, and so are `a@bücher.de` and `a@xn--bcher-kva.de`.

    `parse` decides what is accepted; the constructor only insists on a normalised-looking
    value, so rows stored under earlier rules still load.
    """

    value: str

    def __post_init__(self) -> None:
        if not _EMAIL.fullmatch(self.value) or self.value != self.value.strip().casefold():
            raise ValueError("not a normalised email address")

    @classmethod
    def parse(cls, raw: str) -> Email | None:
        """The normalised email, or None when `raw` is not an address.

        Normalise first (`normalise_email`), then validate what would be stored, so every
        accepted address is stored as it was checked. The local part must be ASCII as sent:
        `josé@x.io` is refused, and so are `ß@x.io`, `ﬀ@x.io` and the Kelvin sign's `K@x.io`,
        which case folding would turn into the ASCII mailboxes `ss`, `ff` and `k`. An
        internationalised host is stored as its A-labels (`a@BÜCHER.de` is
        `a@xn--bcher-kva.de`): one mailbox, one stored spelling, one account.
        """
        normalised = normalise_email(raw)
        canonical = None if normalised is None else _canonical_email(normalised)
        return cls(canonical) if canonical is not None and _is_address(canonical) else None

    @classmethod
    def lookup(cls, raw: str) -> Email | None:
        """The normalised email to look an existing account up by (login, reset, resend), or
        None when `raw` cannot name one: not shaped like an address (`is_email_shaped`), or a
        local part outside ASCII that case folding would turn into ASCII (`ß@x.io` is not
        `ss@x.io`). Only the stored shape is checked, not `parse`'s rules, so an account stored
        under earlier, looser rules can still sign in and recover. The host is put in A-labels
        as `parse` stores it whenever it has that form, so either spelling of an
        internationalised host finds the account."""
        normalised = normalise_email(raw) if is_email_shaped(raw) else None
        if normalised is None:
            return None
        value = _canonical_email(normalised) or normalised
        # Rows are stored case-folded: a host folding would change (`straße.de`, which has no
        # A-label form either) names none.
        return cls(value) if value == value.casefold() and _EMAIL.fullmatch(value) else None

    def __str__(self) -> str:
        return self.value


def normalise_email(raw: str) -> str | None:
    """The form emails are compared and stored in: trimmed, the local part (before the last
    `@`) lowercased, the host NFKC-normalised and lowercased. A local part outside ASCII is
    NFKC case-folded as earlier rules stored it, or None when that folding lands in ASCII
    (`ß`, `ﬀ`, the Kelvin sign: the spelling of another mailbox, which none of them names), as
    when the host's normalisation makes an `@` (a fullwidth at sign). Text without an `@` is
    normalised as a host is (a search for part of an address)."""
    local, at, host = raw.strip().rpartition("@")
    if local.isascii():
        local = local.lower()
    else:
        local = _fold(local)
        if local.isascii():
            return None
    # Lowercased, not case-folded: folding makes `straße.de` the other domain `strasse.de`.
    host = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", host).lower())
    if "@" in host:  # made by NFKC (a fullwidth at sign): what came before it is a local part
        return None
    return f"{local}{at}{host}".strip()


def is_email_shaped(raw: str) -> bool:
    """Whether `raw`, normalised, has an address's shape (`x@y.z`, at most 254 characters),
    whether or not it may name an account: what a lookup's input must look like."""
    folded = _fold(raw).strip()
    canonical = _canonical_email(folded) or folded
    # The length first: `_EMAIL` backtracks quadratically over a long host full of dots, and
    # `raw` is what a client sent (60 KB held a worker's GIL for 13 s).
    return len(canonical) <= MAX_EMAIL_LENGTH and bool(_EMAIL.fullmatch(canonical))


def email_query_spellings(raw: str) -> tuple[str, ...]:
    """What a search for (part of) an address looks for: the text normalised as addresses are,
    and, when its host part (after the last `@`, or all of it without one) has an A-label form,
    that spelling too, so `bücher.de` finds `a@xn--bcher-kva.de` and `josé` still finds an
    older `josé@…` row. Nothing for text that names no mailbox (`normalise_email`)."""
    normalised = normalise_email(raw)
    if normalised is None:
        return ()
    local, at, host = normalised.rpartition("@")
    ascii_host = host if host.isascii() else _idna(host)
    if ascii_host is None or ascii_host == host:
        return (normalised,)
    return (normalised, f"{local}{at}{ascii_host}")


def _fold(text: str) -> str:
    """NFKC case folding (NFKC, case-fold, NFKC again)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _canonical_email(normalised: str) -> str | None:
    """`normalised` with its host in ASCII A-labels, or None when the host has no such form."""
    local, at, host = normalised.rpartition("@")
    if not at or host.isascii():
        return normalised
    ascii_host = _idna(host)
    return None if ascii_host is None else f"{local}@{ascii_host}"


def _is_address(canonical: str) -> bool:
    local, at, host = canonical.rpartition("@")
    if not at or len(canonical) > MAX_EMAIL_LENGTH or len(local) > MAX_LOCAL_PART_LENGTH:
        return False
    # fullmatch: `$` would also match before a final newline ("a\n@x.io").
    return (
        bool(_LOCAL_PART.fullmatch(local))
        and _is_host_name(host)
        and bool(_EMAIL.fullmatch(canonical))
    )


def _is_host_name(ascii_host: str) -> bool:
    labels = ascii_host.split(".")
    if len(labels) < 2 or len(ascii_host) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in labels) and bool(
        _TOP_LABEL.fullmatch(labels[-1])
    )


def _idna(host: str) -> str | None:
    """The ASCII form of an internationalised host name, label by label (labels already in
    ASCII, A-labels included, are kept), None when a label has none or when IDNA would map
    part of it away (soft hyphens...): one host, one stored spelling."""
    labels = []
    for label in host.split("."):
        if not label.isascii():
            try:
                ascii_label = label.encode("idna").decode("ascii")
                if ascii_label.encode("ascii").decode("idna") != label:
                    return None
            except UnicodeError:
                return None
            label = ascii_label
        labels.append(label)
    return ".".join(labels)


def parse_uuid(raw: object) -> str | None:
    """`raw` as a lowercase UUID string when it is one in the canonical 8-4-4-4-12 hex form
    (either letter case), None otherwise: one id, one spelling."""
    if not isinstance(raw, str) or not _CANONICAL_UUID.fullmatch(raw):
        return None
    return raw.lower()


@dataclass(frozen=True, slots=True)
class UserId:
    """A user's identity: a UUID, carried as its canonical string."""

    value: str

    @classmethod
    def new(cls) -> UserId:
        return cls(str(uuid.uuid4()))

    @classmethod
    def parse(cls, raw: str) -> UserId | None:
        """The id in canonical form, or None when `raw` is not a UUID in its canonical
        8-4-4-4-12 form (either letter case)."""
        canonical = parse_uuid(raw)
        return None if canonical is None else cls(canonical)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password hash in Django's `algorithm$...` form; never printed."""

    value: str

    def __repr__(self) -> str:
        return "PasswordHash('********')"

    __str__ = __repr__

    @property
    def usable(self) -> bool:
        """False for Django's unusable marker (accounts created without a password)."""
        return bool(self.value) and not self.value.startswith("!")
