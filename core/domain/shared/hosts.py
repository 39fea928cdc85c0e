"""What counts as a host and a port in the URLs the platform calls out to: a gateway route's
upstream and an aggregation source. One rule for both contexts, so a URL one of them refuses is
not taken by the other."""

from __future__ import annotations

import re
from urllib.parse import SplitResult

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def is_host(host: str) -> bool:
    """A DNS name written in ASCII (labels of 1 to 63 characters, 253 in all; an IDN in its
    `xn--` form) or an IP literal."""
    if ":" in host:  # an IPv6 literal, already bracket-checked by urlsplit
        return True
    name = host[:-1] if host.endswith(".") else host  # one trailing dot: the root, allowed
    labels = name.split(".")
    return len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def has_valid_port(parts: SplitResult) -> bool:
    """No port, or one from 1 to 65535 (urlsplit refuses what is not a number up to 65535)."""
    try:
        port = parts.port
    except ValueError:
        return False
    return port != 0
