"""What counts as a host and a port in the URLs the platform calls out to: a gateway route's
upstream and an aggregation source. One rule for both contexts, so a URL one of them refuses is
not taken by the other."""

from __future__ import annotations

import re
from urllib.parse import SplitResult

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
# A label the WHATWG URL parser reads as a number when it ends a host: decimal, or `0x` hex.
_NUMBER_LABEL = re.compile(r"[0-9]+|0[Xx][0-9A-Fa-f]*")
_DOTTED_QUAD_PART = re.compile(r"0|[1-9][0-9]{0,2}")
IPV4_RULE = (
    "Write an IPv4 address as four decimal numbers from 0 to 255 without leading zeros "
    "(127.0.0.1): hex, octal, shortened or single-number forms (0x7f.1, 0177.0.0.1, "
    "2130706433) and a name ending in a number are read differently by HTTP clients and "
    "resolvers."
)


def is_host(host: str) -> bool:
    """A DNS name written in ASCII (labels of 1 to 63 characters, 253 in all; an IDN in its
    `xn--` form) or an IP literal, an IPv4 one only as a canonical dotted quad."""
    if ":" in host:  # an IPv6 literal, already bracket-checked by urlsplit
        return True
    if is_ambiguous_ipv4(host):
        return False
    name = host[:-1] if host.endswith(".") else host  # one trailing dot: the root, allowed
    labels = name.split(".")
    return len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def is_ambiguous_ipv4(host: str) -> bool:
    """Whether a URL parser may read `host` as an IPv4 address other than as it is written:
    its last label (before one trailing dot) is a number, so the WHATWG URL parser takes it
    for an IPv4 address (`0x7f.1`, `0177.0.0.1`, `2130706433` are all 127.0.0.1 there, as
    for `inet_aton`), while RFC 3986 parsers (http.client, libcurl's defaults) pass it on as a
    name; anything but a canonical dotted quad (`127.0.0.1`)."""
    name = host[:-1] if host.endswith(".") else host
    if not _NUMBER_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        return False
    parts = host.split(".")
    canonical = len(parts) == 4 and all(
        _DOTTED_QUAD_PART.fullmatch(part) and int(part) <= 255 for part in parts
    )
    return not canonical


def has_valid_port(parts: SplitResult) -> bool:
    """No port, or one from 1 to 65535 (urlsplit refuses what is not a number up to 65535)."""
    try:
        port = parts.port
    except ValueError:
        return False
    return port != 0
