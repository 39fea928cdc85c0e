"""A per-worker memo of verified access tokens, in front of the platform's verifier.

On the proxy path the verifier checks only the token itself (signature, algorithm, `kid`, type,
expiry, audience, issuer, the claims the accounts issue): revocation facts are read with the
rate limit. That check is a pure
function of the token and the time, so a token that verified once stays valid until its `exp`;
clients send the same token for up to 30 minutes, and re-verifying it (PyJWT) cost ~100 µs a
request. Refusals are not remembered; the memo is bounded (oldest entries go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from core.domain.shared.identity import Principal, TokenError
from core.domain.shared.result import Ok, Result
from core.usecases.shared.ports import AccessTokenVerifier, Clock


class MemoizingAccessTokenVerifier:
    """`AccessTokenVerifier` that remembers successful verifications until the token expires."""

    def __init__(self, inner: AccessTokenVerifier, clock: Clock, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._clock = clock
        self._max = max_entries
        self._known: OrderedDict[str, Principal] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, raw_token: str) -> Result[Principal, TokenError]:
        known = self._known.get(raw_token)
        if known is not None and self._clock.now() < known.expires_at:
            return Ok(known)
        result = self._inner.verify(raw_token)
        if isinstance(result, Ok):
            with self._lock:
                self._known[raw_token] = result.value
                while len(self._known) > self._max:
                    self._known.popitem(last=False)
        elif known is not None:
            with self._lock:
                self._known.pop(raw_token, None)
        return result
