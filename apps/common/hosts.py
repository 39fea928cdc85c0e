"""The host a request is for when its target is in absolute form, for Django and the gateway.

RFC 9112 §3.2.2: a request whose target is an absolute URI (`GET http://host/path`) is for that
URI's authority, and its Host header is ignored. Django and the proxy read the host each in
their own place; both take it from here, so they agree on it. Checking it against
ALLOWED_HOSTS stays with them (Django's `get_host`, the proxy's handler).
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from django.http.request import split_domain_port

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
