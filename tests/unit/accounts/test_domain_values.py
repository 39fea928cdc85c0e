"""Value objects: Email, UserId, PasswordHash, roles; password rules."""

import time

import pytest

from core.domain.accounts.passwords import (
    PasswordRejected,
    is_blank,
    looks_like_email,
    normalise_password,
)
from core.domain.accounts.sessions import parse_session_id
from core.domain.accounts.values import (
    Email,
    PasswordHash,
    UserId,
    email_query_spellings,
    is_email_shaped,
    is_valid_full_name,
    is_valid_role,
    parse_roles,
)


def fullwidth(text):
    """`text` in fullwidth forms (U+FF01..U+FF5E), which NFKC maps back to ASCII."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def test_email_is_trimmed_and_case_folded():
    assert Email.parse("  A.B@X.IO ") == Email("a.b@x.io")
    assert str(Email.parse("a@x.io")) == "a@x.io"


@pytest.mark.parametrize("raw", ["", "plain", "a@b", "a b@c.io", "a@@b.io", "x" * 250 + "@b.io"])
def test_bad_emails_do_not_parse(raw):
    assert Email.parse(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "xİ@example.com",  # folds to "xi" + U+0307: as non-ASCII as josé once normalised
        "josé@example.com",
        "Xİ@EXAMPLE.COM",
        "a\u200b@example.com",  # zero-width space
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        '"a b"@example.com',
        "a@[127.0.0.1]",
        "a@127.0.0.1",
        "a@example.c",
        "a@-example.com",
        "a@example..com",
        "a@exa_mple.com",
        "a@bü\u00adcher.de",  # a soft hyphen IDNA would drop: two spellings of one host
        "a@bü..de",  # IDNA refuses an empty label
        "a@bücher\u3002de",  # a full stop IDNA reads as a dot, so two spellings of a host
        "a@" + "ü" * 70 + ".de",  # and a label past 63 characters
        "x" * 65 + "@example.com",
    ],
)
def test_what_fails_once_normalised_does_not_parse(raw):
    assert Email.parse(raw) is None


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("alice@" + fullwidth("EXAMPLE.COM"), "alice@example.com"),  # NFKC first, in the host
        ("Bob+Tag@Sub.Example.Org", "bob+tag@sub.example.org"),
        ("a@BÜCHER.de", "a@xn--bcher-kva.de"),  # an internationalised host, in A-labels
        ("a@xn--bcher-kva.de", "a@xn--bcher-kva.de"),
    ],
)
def test_emails_are_normalised_before_they_are_validated(raw, stored):
    assert Email.parse(raw) == Email(stored)


@pytest.mark.parametrize(
    "raw",
    ["  A.B@X.IO ", "ab@" + fullwidth("X.IO"), "a@BÜCHER.de", "a@\u212aelvin.example"],
)
def test_a_parsed_email_parses_to_itself(raw):
    parsed = Email.parse(raw)
    assert parsed is not None
    assert Email.parse(parsed.value) == parsed
    assert parsed.value.isascii()


# Local parts outside ASCII that Unicode case folding or NFKC would turn into ASCII ones: the
# spelling of another mailbox (`ß` is not `ss`), so they name none, as `josé` names none.
FOLDS_INTO_ASCII = [
    "ß@example.com",
    "Straße@example.com",
    "\ufb00@example.com",  # the ligature ﬀ
    "\u212a@example.com",  # the Kelvin sign
    fullwidth("AB") + "@example.com",
    fullwidth("ALICE@EXAMPLE.COM"),  # a fullwidth @ too
]


@pytest.mark.parametrize("raw", FOLDS_INTO_ASCII)
def test_a_local_part_outside_ascii_is_refused_before_it_is_folded(raw):
    assert Email.parse(raw) is None


@pytest.mark.parametrize("raw", FOLDS_INTO_ASCII)
def test_a_local_part_folding_into_ascii_names_no_account_to_look_up(raw):
    assert is_email_shaped(raw)  # a lookup's input as good as an unknown address
    assert Email.lookup(raw) is None
    assert email_query_spellings(raw) == ()


def test_a_host_case_folding_would_change_is_refused():
    # Folded, `straße.de` was `strasse.de`, another domain; IDNA 2003 maps it there too.
    assert Email.parse("a@straße.de") is None
    assert Email.lookup("a@straße.de") is None


def test_lookup_still_folds_a_local_part_outside_ascii_that_stays_outside():
    # A row stored under earlier, looser rules is still found.
    assert Email.lookup(" JOSÉ@Older.Example") == Email("josé@older.example")


@pytest.mark.parametrize("raw", ["plain", "a@b", "a b@c.io", "a@x.io@"])
def test_text_not_shaped_like_an_address_is_not(raw):
    assert not is_email_shaped(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "n1@bücher.example",
        "n1@xn--bcher-kva.example",
        "N1@BÜCHER.EXAMPLE",
        "n1@XN--BCHER-KVA.example",
        "n1@bu\u0308cher.example",  # u + combining diaeresis: NFKC composes it to ü
    ],
)
def test_both_spellings_of_an_internationalised_host_are_one_address(raw):
    assert Email.parse(raw) == Email("n1@xn--bcher-kva.example")
    assert Email.lookup(raw) == Email("n1@xn--bcher-kva.example")


def test_only_the_host_of_an_address_is_put_in_a_labels():
    assert Email.parse("a.b@sub.bücher.xn--p1ai") == Email("a.b@sub.xn--bcher-kva.xn--p1ai")


def test_an_address_whose_a_label_form_is_too_long_does_not_parse():
    label = "abcdefghij" * 4 + "ü" * 4  # 44 characters, 51 as an A-label
    raw = "a@" + ".".join([label] * 5) + ".de"  # 229 characters, 264 in A-labels
    assert len(raw) <= 254
    assert Email.parse(raw) is None


def test_lookup_keeps_a_host_that_has_no_a_label_form_as_normalised():
    # A row stored under earlier, looser rules is still found by its stored spelling.
    assert Email.lookup("A@Bü\u00adcher.de") == Email("a@bü\u00adcher.de")


@pytest.mark.parametrize(
    ("raw", "searched"),
    [
        ("Bücher.example", ("bücher.example", "xn--bcher-kva.example")),
        ("N1@BÜCHER.example", ("n1@bücher.example", "n1@xn--bcher-kva.example")),
        (fullwidth("ALICE"), ("alice",)),
        ("bü\u00adcher", ("bü\u00adcher",)),  # no A-label form: searched as normalised
    ],
)
def test_a_search_for_part_of_an_address_is_normalised_as_addresses_are(raw, searched):
    assert email_query_spellings(raw) == searched


def test_email_refuses_a_non_normalised_value():
    with pytest.raises(ValueError, match="normalised"):
        Email("A@x.io")


def test_user_ids_are_canonical_uuids():
    new = UserId.new()
    assert UserId.parse(new.value.upper()) == new
    assert str(new) == new.value
    assert UserId.parse("nope") is None


ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.mark.parametrize("raw", [ID, ID.upper(), "0A1b2C3d-4E5f-4A6b-8C7d-9E0f1A2b3C4d"])
def test_an_id_in_its_canonical_form_parses_in_either_letter_case(raw):
    assert UserId.parse(raw) == UserId(ID)
    assert parse_session_id(raw) == ID


@pytest.mark.parametrize(
    "raw",
    [
        ID.replace("-", ""),  # hyphen-less
        "{" + ID + "}",  # braces
        "urn:uuid:" + ID,
        " " + ID,
        ID + "\n",
        ID[:-1],
        ID + "0",
        "0a1b2c3d4-e5f-4a6b-8c7d-9e0f1a2b3c4d",  # hyphens in the wrong places
        ID.replace("0", "\uff10"),  # fullwidth digits
        ID.replace("0", "\u0660"),  # Arabic-Indic digits
        "g" + ID[1:],
        "",
        None,
        42,
    ],
)
def test_any_other_spelling_of_an_id_does_not_parse(raw):
    assert UserId.parse(raw) is None
    assert parse_session_id(raw) is None


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


def test_roles_are_a_list_of_slugs_kept_once_each():
    assert parse_roles(["user", "admin", "user"]) == ("user", "admin")
    assert parse_roles([]) == ()
    assert parse_roles(["r" + str(n) for n in range(20)]) is not None


@pytest.mark.parametrize(
    "raw",
    [
        "admin",  # a bare string: tokens would carry its letters as roles
        [1, None],
        {"a": 1},
        None,
        ["ADMIN"],
        ["a" * 300],
        ["admin\r\nX-Injected: 1"],
        ["ad\u0000min"],
        ["r" + str(n) for n in range(21)],
    ],
)
def test_anything_but_a_short_list_of_slugs_is_no_roles(raw):
    assert parse_roles(raw) is None


def test_email_like_passwords_are_spotted():
    assert looks_like_email("someone@example.org")
    assert not looks_like_email("correct horse battery")


def test_password_rejection_is_a_validation_error_on_a_field():
    rejected = PasswordRejected(("too short",))
    assert (rejected.field, rejected.value) == ("password", "validation_error")


@pytest.mark.parametrize(
    "password", [" " * 20, "\t\n \r" * 5, "\u3000" * 10, "\u00a0" * 12, "\u200b" * 10 + " "]
)
def test_a_password_of_whitespace_alone_is_blank(password):
    assert is_blank(password)


@pytest.mark.parametrize(
    "char",
    [
        "\u3164",  # Hangul filler: a letter (Lo) that renders as nothing
        "\u2800",  # Braille pattern blank: a symbol (So) drawn as an empty cell
        "\u115f",  # Hangul choseong filler
        "\u1160",  # Hangul jungseong filler
        "\uffa0",  # halfwidth Hangul filler
        "\u180e",  # Mongolian vowel separator
        "\u17b4",  # Khmer inherent vowels
        "\u17b5",
        "\u034f",  # combining grapheme joiner
        "\u2065",  # reserved, default ignorable
        "\U0001d159",  # musical null notehead
        *(chr(code) for code in range(0xFE00, 0xFE10)),  # variation selectors
        *(chr(code) for code in range(0xE0000, 0xE0080)),  # tags
        "\U000e0100",  # variation selector 17
        "\U000e0fff",  # the last reserved default-ignorable code point
    ],
)
def test_a_password_of_invisible_characters_alone_is_blank(char):
    assert is_blank(char * 12)
    assert is_blank(f" {char} " * 4)


@pytest.mark.parametrize(
    "password",
    [
        "  a  " * 4,
        "correct horse battery",
        "\u200bx" * 8,
        "\u3164" * 11 + "a",
        "\u2800" * 11 + "\u2801",  # one raised dot is visible
        "\ufe0f" * 11 + "\u263a",  # an emoji with its presentation selector
        "\U000e1000" * 12,  # past the default-ignorable block: unassigned, not ignorable
    ],
)
def test_a_password_with_anything_visible_is_not_blank(password):
    assert not is_blank(password)


@pytest.mark.parametrize("raw", ["a\n@x.io", "a@x\n.io", "a@x.io\nb", "a@x.io\n\n\nq"])
def test_a_newline_inside_an_email_does_not_parse(raw):
    assert Email.parse(raw) is None


def test_a_role_with_a_trailing_newline_is_not_a_slug():
    assert not is_valid_role("admin\n")


def test_a_long_address_is_refused_before_the_pattern_looks_at_it():
    # `^[^@\s]+@[^@\s]+\.[^@\s]+` backtracks quadratically over a host of many dots: this
    # address took 13 s of one worker's GIL through reset and resend before the length check.
    raw = "a@" + "a." * 30_000 + "@"
    started = time.perf_counter()
    assert Email.lookup(raw) is None
    assert Email.parse(raw) is None
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("name", ["Ada Lovelace", "", "José Ñúñez", "李小龍", "O'Brien-Smith"])
def test_a_name_is_any_text_on_one_line(name):
    assert is_valid_full_name(name)


@pytest.mark.parametrize("name", ["a\r\nb", "a\nb", "bell\u0007", "\x00", "a\u2028b", "\ud800"])
def test_a_name_holds_no_control_characters_or_line_breaks(name):
    assert not is_valid_full_name(name)


@pytest.mark.parametrize(
    ("typed", "compared"),
    [
        ("cafe\u0301-strong-pass-1", "caf\u00e9-strong-pass-1"),  # NFD: composed
        ("caf\u00e9-strong-pass-1", "caf\u00e9-strong-pass-1"),  # NFC: as it is
        ("".join(chr(ord(c) + 0xFEE0) for c in "password123"), "password123"),  # fullwidth
        ("  spaced  ", "  spaced  "),  # never trimmed
    ],
)
def test_a_password_is_compared_in_its_nfkc_form(typed, compared):
    assert normalise_password(typed) == compared
