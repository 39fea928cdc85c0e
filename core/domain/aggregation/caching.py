"""Cache keys of per-source answers: one user's forwarded-token answer is never another's."""

from __future__ import annotations

import hashlib
import json

from core.domain.aggregation.composite import Source


def source_cache_key(composite: str, source: Source, url: str, user_id: str | None) -> str:
    """A key that changes with the resolved URL, the shaping rules and, when the caller's
    token is forwarded, the caller; anonymous callers share one entry."""
    owner = user_id if source.forward_auth and user_id else "-"
    material = json.dumps(
        [source.method, url, source.fields, sorted(source.rename.items()), owner],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:32]
    return f"aggregation:source:{composite}:{source.key}:{digest}"
