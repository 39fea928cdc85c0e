"""The host a request is for when its target is in absolute form, for Django and the gateway.

RFC 9112 §3.2.2: a request whose target is an absolute URI (`GET http://host/path`) is for that
URI's authority, and its Host header is ignored. Django and the proxy read the host each in
their own place; both take it from here, so they agree on it. Checking it against
ALLOWED_HOSTS stays with them (Django's `get_host`, the proxy's handler through `HostAllowList`,
Django's own rule remembered per host).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

# The one wording of the 400 `bad_request` for a host outside ALLOWED_HOSTS, on both sides.
HOST_NOT_ALLOWED = "The host the request is for is not allowed."


def absolute_form(target: str) -> SplitResult | None:
    """The parts of an absolute-form request target; None for the origin form (`/path`), which
    is tested first and costs one comparison, and for the asterisk and authority forms."""
    if target.startswith("/") or "://" not in target:
        return None
    return urlsplit(target)


def absolute_target_host(authority: str, host_header: str | None) -> str | None:
    """The host an absolute-form request is for: its target's authority, not the Host header.

    None (refuse it) when the Host header sent beside it is not a well-formed host: ignored as
    the request's host, it is still a field RFC 9112 §3.2 refuses when invalid, as nginx does.
    An empty or ill-formed authority is returned as it is, for the allow-list to refuse.
    """
    if host_header is not None and not split_domain_port(host_header)[0]:
        return None
    return authority


class HostAllowList:
    """Whether ALLOWED_HOSTS lets a request for a host in, by Django's rule (`get_host`: the
    name without its port, matched by `validate_host`; an empty or ill-formed host never).

    The verdict is remembered per host string (Django's parsing and matching cost ~4 µs a
    proxied request; clients send a handful of hosts). The memo holds at most `size` hosts, and
    is emptied when full, since a client can send any number of them. It belongs to the
    ALLOWED_HOSTS list it was judged under: another list (an override in tests) starts anew.
    Settings are never changed in place at run time, so that list's identity is enough.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._judged: tuple[Any, dict[str, bool]] = (None, {})

    def allows(self, host: str) -> bool:
        """Whether a request for `host` (a Host value: name and optional port) may be served."""
        allowed_hosts = settings.ALLOWED_HOSTS
        judged_under, verdicts = self._judged
        if judged_under is not allowed_hosts:
            verdicts = {}
            self._judged = (allowed_hosts, verdicts)
        verdict = verdicts.get(host)
        if verdict is None:
            domain, _ = split_domain_port(host)
            verdict = bool(domain) and validate_host(domain, allowed_hosts)
            if len(verdicts) >= self._size:
                verdicts.clear()
            verdicts[host] = verdict
        return verdict

    def __len__(self) -> int:
        """How many hosts are remembered."""
        return len(self._judged[1])
