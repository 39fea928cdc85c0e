"""The alternative fan-out measured against the chosen one: an event loop per run.

Sync WSGI views cannot share an `httpx.AsyncClient` across runs (its pool belongs to one loop),
so each run makes a loop and a client; `asyncio.wait_for` enforces each deadline.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Mapping, Sequence

import httpx

from core.domain.aggregation.runs import SourceFailure
from core.usecases.aggregation.ports import Fetched, FetchFailed, FetchResult, SourceRequest

_SSL = ssl.create_default_context()  # built once: creating it per client costs milliseconds


class AsyncioPerRunFetcher:
    def fetch_all(self, requests: Sequence[SourceRequest]) -> Mapping[str, FetchResult]:
        return asyncio.run(self._all(requests))

    async def _all(self, requests: Sequence[SourceRequest]) -> dict[str, FetchResult]:
        async with httpx.AsyncClient(verify=_SSL, trust_env=False) as client:
            started = time.monotonic()
            results = await asyncio.gather(*(self._one(client, r, started) for r in requests))
        return {r.key: result for r, result in zip(requests, results, strict=True)}

    async def _one(
        self, client: httpx.AsyncClient, request: SourceRequest, started: float
    ) -> FetchResult:
        try:
            response = await asyncio.wait_for(
                client.request(request.method, request.url, headers=dict(request.headers)),
                timeout=request.timeout_ms / 1000,
            )
        except (TimeoutError, httpx.TimeoutException):
            return FetchFailed(SourceFailure.TIMEOUT, "timeout", _ms(started))
        except httpx.TransportError:
            return FetchFailed(SourceFailure.UNREACHABLE, "unreachable", _ms(started))
        try:
            return Fetched(response.status_code, json.loads(response.content), _ms(started))
        except ValueError:
            return FetchFailed(SourceFailure.INVALID_JSON, "not json", _ms(started))


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
