"""How a rate setting reads (apps.common.ratelimits.split_rate)."""

import pytest

from apps.common.ratelimits import split_rate


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("10/m", (10, 60)), ("100/5m", (100, 300)), ("5/h", (5, 3600)), ("0/2d", (0, 172_800))],
)
def test_a_rate_is_a_count_per_seconds(rate, expected):
    assert split_rate(rate) == expected


def test_anything_else_is_a_programmer_error():
    with pytest.raises(ValueError, match="not a rate"):
        split_rate("often")
