"""Request paths as the proxy matches and forwards them.

A path is normalised once, before matching (RFC 3986 §6.2.2): escapes of unreserved characters
decoded, empty and dot segments removed. The route that matches, the auth that guards it and the
path the upstream receives then all see one path, so `/svc//admin`, `/svc/./admin`,
`/svc/x/../admin` and `/svc/%61dmin` are `/svc/admin` everywhere. Refused, because upstreams
disagree on what they mean: an encoded slash or a backslash (a segment separator to some;
Apache httpd and Tomcat refuse them by default too), and a `;` (a path parameter that
Tomcat, Jetty and Spring strip, so `/svc/admin;x` and `/svc/..;/admin` would reach
`/svc/admin` behind the `/svc` route's back).
"""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_REFUSED = re.compile(r"%(?:2[Ff]|5[Cc])|[\\;]")
_NEEDS_WORK = re.compile(r"%|//|/\.(?:/|\.?$|\./)")


def _unescape_unreserved(escape: re.Match[str]) -> str:
    char = chr(int(escape.group(1), 16))
    return char if char in _UNRESERVED else "%" + escape.group(1).upper()


def normalise_path(raw: str) -> str | None:
    """`raw` in its normal form, or None when it holds an encoded `/`, a `\\` in any form or
    a `;`."""
    if _REFUSED.search(raw):
        return None
    if not _NEEDS_WORK.search(raw):
        return raw  # the common case: already normal
    decoded = _ESCAPE.sub(_unescape_unreserved, raw)
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    path = "/" + "/".join(segments)
    last = decoded.rsplit("/", 1)[-1]
    if segments and last in ("", ".", ".."):
        path += "/"  # `/a/b/`, `/a/b/.` and `/a/b/c/..` all name the directory `/a/b/`
    return path
