"""URL templates with `{placeholders}`, filled only from a run's query string.

Placeholders may stand only in the path or the query of a source URL, never in the scheme, host
or port, and every value is percent-encoded with no safe characters, so a caller can change
neither the origin a source is fetched from nor the shape of its path or query.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from urllib.parse import quote, urlsplit

from core.domain.shared.hosts import IPV4_RULE, has_valid_port, is_ambiguous_ipv4, is_host
from core.domain.shared.result import Err, Ok, Result
from core.domain.shared.url_paths import ENCODED_NUL_RULE, has_encoded_nul

MAX_URL_LENGTH = 2048
MAX_VALUE_LENGTH = 1024
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_FORBIDDEN_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")
_DOT_SEGMENTS = frozenset({".", ".."})
# A % that starts no %XX escape: a value filled in right after it would complete one of the
# caller's choosing (`%{x}` with x = 2e is `%2e`, a dot to servers that decode first).
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

ParameterErrors = dict[str, list[str]]


def template_problems(template: str) -> list[str]:
    """Why `template` is not a usable source URL (empty list: it is)."""
    if len(template) > MAX_URL_LENGTH:
        return [f"Ensure this URL has at most {MAX_URL_LENGTH} characters."]
    if _FORBIDDEN_CHARACTERS.search(template):
        return ["A URL may not contain whitespace or control characters."]
    problems: list[str] = []
    try:
        split = urlsplit(_PLACEHOLDER.sub("x", template))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ["Enter a well-formed URL."]
    if split.scheme not in {"http", "https"} or not split.hostname or not has_valid_port(split):
        problems.append("Enter an absolute http:// or https:// URL with a host (and valid port).")
    elif is_ambiguous_ipv4(split.hostname):
        problems.append(IPV4_RULE)
    elif not is_host(split.hostname):
        problems.append("The host is not a valid name or address (write an IDN as xn--…).")
    if has_encoded_nul(split.path):  # as in a gateway route's upstream URL
        problems.append(ENCODED_NUL_RULE)
    if "#" in template:  # even an empty one: a placeholder value after it would be dropped
        problems.append("A source URL may not have a #fragment.")
    if "@" in template[: _origin_length(template)]:
        # Credentials would sit in the stored definition and every log of the URL; a source
        # that needs them gets the caller's token (`forward_auth`), as gateway routes do.
        problems.append("Leave credentials (user:password@) out of the URL.")
    origin_end = _origin_length(template)
    if "{" in template[:origin_end] or "}" in template[:origin_end]:
        problems.append("Placeholders may stand only in the path or the query, not the host.")
    if _BARE_PERCENT.search(template):
        problems.append("Write % only as part of a %XX escape (a literal % is %25).")
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        problems.append(
            "Write placeholders as {name}: a letter or underscore, then letters, digits or "
            "underscores."
        )
    return problems


def fill(
    template: str, values: Mapping[str, str], repeated: Collection[str] = ()
) -> Result[str, ParameterErrors]:
    """`template` with each placeholder replaced by its percent-encoded value from `values`.

    Every placeholder must have one non-empty value: a name in `repeated` (given more than
    once) has none, for which of its values to use would be a guess that a filter in front
    of the platform may make differently. A value in the path may not be a `.` or `..`
    segment, nor hold a slash or a backslash: encoded, `..%2Fx` is still `../x` to the many
    servers that decode `%2F` before they resolve dot segments (the gateway refuses `%2F` for
    the same reason); either would move the request to another path. Nor may it hold a NUL
    character: encoded it is `%00`, where an upstream written in C ends the path (refused in
    a template for the same reason). Only the path and the
    query are filled: a placeholder in the origin, which `template_problems` refuses but a
    row written straight into the database may hold, stays as written, so no value can pick
    the host.
    """
    origin_end = _origin_length(template)
    query_start = _query_start(template)
    errors: ParameterErrors = {}
    for match in _PLACEHOLDER.finditer(template, origin_end):
        name = match.group(1)
        value = values.get(name, "")
        if name in repeated:
            errors.setdefault(name, ["Give this query parameter once."])
        elif not value:
            errors.setdefault(name, ["This query parameter is required."])
        elif len(value) > MAX_VALUE_LENGTH:
            errors.setdefault(
                name, [f"Ensure this value has at most {MAX_VALUE_LENGTH} characters."]
            )
        elif match.start() < query_start and value in _DOT_SEGMENTS:
            errors.setdefault(name, ["This value may not be a relative path segment."])
        elif match.start() < query_start and ("/" in value or "\\" in value):
            errors.setdefault(name, ["A value in the path may not contain / or \\."])
        elif match.start() < query_start and "\x00" in value:
            # Encoded, a NUL character is `%00`, which the source URL itself may not hold.
            errors.setdefault(name, ["A value in the path may not contain a NUL character."])
    if errors:
        return Err(errors)
    rest = _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)], safe=""), template[origin_end:])
    return Ok(template[:origin_end] + rest)


def _origin_length(template: str) -> int:
    """Length of `scheme://authority`, the part placeholders may never touch."""
    scheme_end = template.find("://")
    if scheme_end < 0:
        return len(template)
    start = scheme_end + 3
    ends = [i for i in (template.find(c, start) for c in "/?#") if i >= 0]
    return min(ends) if ends else len(template)


def _query_start(template: str) -> int:
    index = template.find("?")
    return len(template) if index < 0 else index
