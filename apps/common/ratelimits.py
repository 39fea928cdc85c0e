"""What the platform's rate limits share: how a rate setting (`10/m`, `100/5m`) reads.

The settings check every rate at start-up (`config.env.env_rate`); this reads one checked there.
"""

from __future__ import annotations

import re

_PERIODS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}
_RATE = re.compile(r"(\d+)/(\d*)([smhd])\Z")


def split_rate(rate: str) -> tuple[int, int]:
    """`10/m` as (10, 60), `100/5m` as (100, 300): how many per how many seconds."""
    match = _RATE.fullmatch(rate)
    if match is None:
        raise ValueError(f"not a rate: {rate!r}")
    count, multiple, period = match.groups()
    return int(count), int(multiple or 1) * _PERIODS[period]
