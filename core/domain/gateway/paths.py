"""Request paths as the proxy matches and forwards them.

A path is normalised once, before matching (RFC 3986 §6.2.2): escapes of unreserved characters
decoded, empty and dot segments removed. The route that matches, the auth that guards it and the
path the upstream receives then all see one path, so `/svc//admin`, `/svc/./admin`,
`/svc/x/../admin` and `/svc/%61dmin` are `/svc/admin` everywhere. An encoded slash or a
backslash is refused: upstreams disagree on whether it separates segments (Apache httpd and
Tomcat refuse them by default too). So is an encoded NUL (`%00`), where an upstream in C ends
the path, and a `%` that starts no escape: the normal form must be normal (`%%32%65` decoded
once is `%2e`, which the upstream would read as `.` where the gateway had read a name). Path
parameters (`;jsessionid=…`, matrix parameters) are forwarded, but Tomcat, Jetty and Spring
strip them (some after decoding `%3B`), so `/svc/admin;x` and `/svc/..;/admin` mean
`/svc/admin` there: `without_parameters` gives the path such an upstream sees, and the proxy
refuses a path whose two readings belong to different routes. So it does for trimmed segments:
Windows and IIS drop a segment's trailing dots and spaces, and Spring's old AntPathMatcher
trimmed whitespace (CVE-2016-5007), so `/svc/admin./users` and `/svc/admin%20/users` mean
`/svc/admin/users` there: `trimmed` gives that reading.
"""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# An encoded `/` or `\`, a `\`, an encoded NUL (where an upstream written in C or reading files
# ends the path: `/svc/admin%00` would be `/svc/admin` there, past that route), and a `%` that
# starts no escape (RFC 3986 §2.1): before escapes of unreserved characters one made the normal
# form produce new escapes (`%%32%65` → `%2e`).
_REFUSED = re.compile(r"%(?:2[Ff]|5[Cc]|00|(?![0-9A-Fa-f]{2}))|\\")
_NEEDS_WORK = re.compile(r"%|//|/\.(?:/|\.?\Z|\./)")
_PARAMETERS = re.compile(r"(?:;|%3[Bb])[^/]*")
# What an upstream may trim from a segment: trailing dots, spaces and tabs (IIS, Windows), and
# leading spaces and tabs (Spring trimmed both ends). In a normal path a space or tab is `%20`
# or `%09` (a request line cannot hold them raw); the raw forms are read the same all the same.
_WHITESPACE = r"(?:%20|%09|[ \t])"
_TRIMMABLE = re.compile(rf"(?:\.|{_WHITESPACE})(?:/|\Z)|/{_WHITESPACE}")
_TRIMMED_TAIL = re.compile(rf"(?:\.|{_WHITESPACE})+\Z")
_TRIMMED_HEAD = re.compile(rf"\A{_WHITESPACE}+")


def _unescape_unreserved(escape: re.Match[str]) -> str:
    char = chr(int(escape.group(1), 16))
    return char if char in _UNRESERVED else "%" + escape.group(1).upper()


def normalise_path(raw: str) -> str | None:
    """`raw` in its normal form, or None when it holds an encoded `/`, or a `\\` in any form,
    or is not an absolute path at all (`OPTIONS *`, `CONNECT host:port`)."""
    if not raw.startswith("/") or _REFUSED.search(raw):
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


def has_parameters(path: str) -> bool:
    """Whether a path carries path parameters (`;…`, also written `%3B…`)."""
    return ";" in path or "%3b" in path.lower()


def without_parameters(normal: str) -> str:
    """The path a parameter-stripping upstream sees: each segment's `;…` dropped, then
    normalised again (`/svc/..;/admin` is `/admin` there)."""
    return normalise_path(_PARAMETERS.sub("", normal)) or normal


def parameters_move_the_path(normal: str) -> bool:
    """Whether dropping the `;…` parameters changes more than the parameters: a `..;` or `.;`
    segment, which a parameter-stripping upstream reads as a step up or nothing, so the path
    could leave the route's upstream base path (`/svc/..;/svc/internal`)."""
    bare = _PARAMETERS.sub("", normal)
    return normalise_path(bare) != bare


def has_trimmable_segments(normal: str) -> bool:
    """Whether a segment of a normal path ends in a dot, space or tab, or starts with a space
    or tab (also written `%20`, `%09`): an upstream that trims segments reads it otherwise."""
    return _TRIMMABLE.search(normal) is not None


def trimmed(normal: str) -> str | None:
    """The path an upstream that trims segments sees (`/svc/admin./users` is
    `/svc/admin/users` there); None when a segment is nothing but dots, spaces and tabs
    (`..%20`, `...`), which upstreams read as `.`, `..` or nothing, so the path could climb
    out of the route's upstream base path."""
    segments = []
    for segment in normal.split("/"):
        bare = _TRIMMED_HEAD.sub("", _TRIMMED_TAIL.sub("", segment))
        if segment and not bare:
            return None
        segments.append(bare)
    return "/".join(segments)
