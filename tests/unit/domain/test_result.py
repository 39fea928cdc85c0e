from datetime import UTC, datetime

import pytest

from core.domain.shared.identity import Principal
from core.domain.shared.result import Err, Ok, Result, UnwrapError


def parse_int(text: str) -> Result[int, str]:
    return Ok(int(text)) if text.isdigit() else Err("not_a_number")


def test_ok_reports_success_and_unwraps():
    result = parse_int("42")
    assert result.is_ok()
    assert not result.is_err()
    assert result.unwrap() == 42
    assert result.unwrap_or(0) == 42


def test_err_reports_failure_and_unwraps_the_error():
    result = parse_int("x")
    assert result.is_err()
    assert not result.is_ok()
    assert result.unwrap_err() == "not_a_number"
    assert result.unwrap_or(0) == 0


def test_unwrap_on_err_and_unwrap_err_on_ok_are_programmer_errors():
    with pytest.raises(UnwrapError, match="not_a_number"):
        Err("not_a_number").unwrap()
    with pytest.raises(UnwrapError, match="42"):
        Ok(42).unwrap_err()


def test_map_transforms_only_ok_and_map_err_only_err():
    assert Ok(2).map(lambda v: v * 10) == Ok(20)
    assert Err("e").map(lambda v: v * 10) == Err("e")
    assert Err("e").map_err(str.upper) == Err("E")
    assert Ok(2).map_err(str.upper) == Ok(2)


def test_and_then_chains_until_the_first_err():
    assert parse_int("7").and_then(lambda v: Ok(v + 1)) == Ok(8)
    assert parse_int("7").and_then(lambda v: Err("too_small")) == Err("too_small")
    assert parse_int("x").and_then(lambda v: Ok(v + 1)) == Err("not_a_number")


@pytest.mark.parametrize(("text", "expected"), [("5", "value 5"), ("y", "error not_a_number")])
def test_results_support_structural_pattern_matching(text, expected):
    match parse_int(text):
        case Ok(value):
            outcome = f"value {value}"
        case Err(error):
            outcome = f"error {error}"
    assert outcome == expected


def test_principal_checks_roles():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    principal = Principal("u1", frozenset({"user", "admin"}), "j1", now, now)
    assert principal.has_roles({"admin"})
    assert principal.has_roles(())
    assert not principal.has_roles(("billing",))
    assert principal.is_admin
    assert not Principal("u2", frozenset({"user"}), "j2", now, now).is_admin
