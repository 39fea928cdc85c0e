"""Upstream HTTP clients: pooled keep-alive HTTP/1.1 connections per upstream host.

`HttpClientUpstream` (the default) keeps `http.client` connections in a small per-host pool:
measured on the proxy path it costs about half the CPU of urllib3 and a third of httpx per call
(docs/gateway.md), which is most of the gateway's added latency. `Urllib3Upstream` is the
same port on urllib3, kept for comparison (GATEWAY_UPSTREAM_CLIENT=urllib3). Neither follows
redirects or decodes bodies; retries are the use case's business.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections import deque
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.ports import StoredResponse, UpstreamFailure, UpstreamRequest

_Origin = tuple[str, str, int]
# Errors that mean a kept-alive connection was closed by the upstream before it read our
# request: safe to resend once on a fresh connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class HttpClientUpstream:
    """`Upstream` on `http.client` with a LIFO pool of idle connections per origin."""

    def __init__(self, pool_size: int = 16) -> None:
        self._pool_size = pool_size
        self._idle: dict[_Origin, deque[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]:
        parts = urlsplit(request.url)
        origin = (parts.scheme, parts.hostname or "", parts.port or _default_port(parts.scheme))
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = dict(_joined(request.headers))
        for _ in range(2):
            connection, reused = self._checkout(origin, timeout_seconds)
            try:
                connection.request(request.method, target, body=request.body, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except _STALE:
                connection.close()
                if reused:
                    continue  # the upstream closed an idle connection: one fresh attempt
                return Err(UpstreamFailure.CONNECTION)
            except TimeoutError:
                connection.close()
                return Err(UpstreamFailure.TIMEOUT)
            except (OSError, http.client.HTTPException):
                connection.close()
                return Err(UpstreamFailure.CONNECTION)
            if response.will_close:
                connection.close()
            else:
                self._checkin(origin, connection)
            return Ok(StoredResponse(response.status, tuple(response.getheaders()), body))
        return Err(UpstreamFailure.CONNECTION)

    def _checkout(self, origin: _Origin, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(origin)
            connection = idle.pop() if idle else None
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(timeout)
            return connection, True
        scheme, host, port = origin
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._tls
            ), False
        fresh = http.client.HTTPConnection(host, port, timeout=timeout)
        return fresh, False

    def _checkin(self, origin: _Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, deque())
            if len(idle) < self._pool_size:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            for connection in idle:
                connection.close()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _joined(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Request headers with repeated names folded into one comma-separated value."""
    merged: dict[str, tuple[str, str]] = {}
    for name, value in headers:
        key = name.lower()
        if key in merged:
            merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
        else:
            merged[key] = (name, value)
    return list(merged.values())


class Urllib3Upstream:
    """`Upstream` over a urllib3 `PoolManager`; thread-safe, shared by a worker's threads."""

    def __init__(self, pool_size: int = 16) -> None:
        self._pools = urllib3.PoolManager(num_pools=64, maxsize=pool_size, block=False)

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]:
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers:
            headers.add(name, value)
        try:
            response = self._pools.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=headers,
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(total=timeout_seconds),
                preload_content=True,
                decode_content=False,
            )
        except NewConnectionError:
            return Err(UpstreamFailure.CONNECTION)
        except Urllib3Timeout:
            return Err(UpstreamFailure.TIMEOUT)
        except (HTTPError, OSError):
            return Err(UpstreamFailure.CONNECTION)
        return Ok(
            StoredResponse(response.status, tuple(response.headers.iteritems()), response.data)
        )

    def close(self) -> None:
        self._pools.clear()
