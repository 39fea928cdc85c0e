"""Rates written `count/period`, as the platform's rate-limit settings are: `10/m`, `100/5m`
(period `s`, `m`, `h` or `d`, optionally a whole multiple of it). One rule for the settings
that check them at start-up and the adapters that count with them."""

from __future__ import annotations

import re

_PERIODS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}
_RATE = re.compile(r"(\d+)/([1-9]\d*)?([smhd])")


def parse_rate(rate: str) -> tuple[int, int] | None:
    """`10/m` as (10, 60), `100/5m` as (100, 300): how many per how many seconds; None for
    anything else (a zero-length period included)."""
    match = _RATE.fullmatch(rate)
    if match is None:
        return None
    count, multiple, period = match.groups()
    return int(count), int(multiple or 1) * _PERIODS[period]
