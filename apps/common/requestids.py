"""Request ids (`X-Request-ID`): echoed when well-formed, minted otherwise.

Framework-free, so that the gunicorn worker, which refuses some requests before Django sees
them, answers and logs them with an id the same way.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")


def request_id_from(incoming: str | None) -> str:
    """The incoming id when well-formed (1-128 of `A-Za-z0-9._:-`), else 32 new random lowercase
    hex digits (as a UUID4's hex, 128 random bits; `uuid4()` cost 2.6 µs, this 0.8)."""
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return secrets.token_hex(16)


def request_id_of(headers: Iterable[tuple[str, str]]) -> str:
    """`request_id_from` the one `X-Request-ID` among parsed header fields (gunicorn's
    `(NAME, value)` pairs); a new id when it is missing, malformed or sent twice."""
    sent = [value for name, value in headers if name.upper() == "X-REQUEST-ID"]
    return request_id_from(sent[0] if len(sent) == 1 else None)
