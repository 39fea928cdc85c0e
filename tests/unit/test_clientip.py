"""The client IP comes from X-Forwarded-For only through trusted proxies."""

import pytest

from apps.common.clientip import client_ip_from


@pytest.mark.parametrize(
    ("remote", "xff", "trusted", "expected"),
    [
        ("10.0.0.1", None, 0, "10.0.0.1"),
        ("10.0.0.1", "6.6.6.6", 0, "10.0.0.1"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.9", 2, "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4", 2, "10.0.0.1"),
        ("10.0.0.1", " , ", 1, "10.0.0.1"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4:5678", 1, "1.2.3.4"),  # proxies that add the port
        ("10.0.0.1", "[2001:db8::1]:5678", 1, "2001:db8::1"),
        ("10.0.0.1", "2001:db8::1", 1, "2001:db8::1"),
        ("10.0.0.1", "1.2.3.4, garbage", 1, "10.0.0.1"),  # no address: the peer's
        ("10.0.0.1", "unknown:80", 1, "10.0.0.1"),
        # An IPv4 client of a dual-stack listener, or as a proxy wrote it: the IPv4 address,
        # not an IPv6 one whose /64 (`::`) every IPv4 client shares.
        ("::ffff:203.0.113.7", None, 0, "203.0.113.7"),
        ("::FFFF:CB00:7107", None, 0, "203.0.113.7"),
        ("::ffff:203.0.113.7", "6.6.6.6", 0, "203.0.113.7"),
        ("10.0.0.1", "::ffff:1.2.3.4", 1, "1.2.3.4"),
        ("10.0.0.1", "[::ffff:1.2.3.4]:5678", 1, "1.2.3.4"),
        ("::ffff:10.0.0.1", "1.2.3.4", 2, "10.0.0.1"),
        ("2001:db8::1", None, 0, "2001:db8::1"),
    ],
)
def test_client_ip(remote, xff, trusted, expected):
    assert client_ip_from(remote, xff, trusted) == expected
