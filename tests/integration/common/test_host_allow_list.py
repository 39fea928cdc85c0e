"""`HostAllowList`: Django's ALLOWED_HOSTS rule, remembered per host in a bounded memo."""

import pytest
from django.http.request import split_domain_port, validate_host

from apps.common.hosts import HostAllowList

HOSTS = [
    "localhost",
    "localhost:8000",
    "LOCALHOST",
    "127.0.0.1:80",
    "[::1]:8000",
    "api.example",
    "a.api.example",
    "api.example.",
    "evil.example",
    "",
    "local host",
    "localhost:",
    "[::1",
]


def _django_verdict(host, allowed_hosts):
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


@pytest.mark.parametrize("allowed_hosts", [["localhost", "127.0.0.1", "[::1]"], [".api.example"]])
def test_each_verdict_is_djangos_first_time_and_remembered(settings, allowed_hosts):
    settings.ALLOWED_HOSTS = allowed_hosts
    hosts = HostAllowList()
    expected = [_django_verdict(host, allowed_hosts) for host in HOSTS]
    assert any(expected)
    assert not all(expected)
    assert [hosts.allows(host) for host in HOSTS] == expected
    assert [hosts.allows(host) for host in HOSTS] == expected  # from the memo
    assert len(hosts) == len(HOSTS)


def test_the_memo_never_holds_more_than_its_size(settings):
    settings.ALLOWED_HOSTS = [".api.example"]
    hosts = HostAllowList(size=8)
    for n in range(100):  # a client sending a new host each time
        assert hosts.allows(f"h{n}.api.example")
        assert not hosts.allows(f"h{n}.evil.example")
        assert len(hosts) <= 8
    assert hosts.allows("api.example")
    assert not hosts.allows("evil.example")


def test_verdicts_belong_to_the_allowed_hosts_they_were_judged_under(settings):
    hosts = HostAllowList()
    settings.ALLOWED_HOSTS = ["localhost"]
    assert hosts.allows("localhost:8000")
    assert not hosts.allows("api.example")
    settings.ALLOWED_HOSTS = ["api.example"]
    assert not hosts.allows("localhost:8000")
    assert hosts.allows("api.example")
    assert len(hosts) == 2
