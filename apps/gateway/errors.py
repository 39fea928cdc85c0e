"""The gateway's one error table: use-case error codes → HTTP status and detail."""

from __future__ import annotations

from apps.common.errors import ErrorTable
from core.usecases.gateway.errors import ProxyError, RouteError

GATEWAY_ERRORS = ErrorTable(
    # A list of pairs: RouteError.NOT_FOUND shares the code `route_not_found` with the proxy.
    [
        (
            ProxyError.MALFORMED_PATH,
            (
                400,
                "The target is not an absolute path, or holds an encoded '/' or a '\\', or "
                "';' parameters that would lead to another route: the gateway does not "
                "forward it.",
            ),
        ),
        (ProxyError.ROUTE_NOT_FOUND, (404, "No route serves this path.")),
        (ProxyError.METHOD_NOT_ALLOWED, (405, "This route does not accept that method.")),
        (ProxyError.NOT_AUTHENTICATED, (401, "This route needs a bearer access token.")),
        (ProxyError.TOKEN_INVALID, (401, "The access token is not valid.")),
        (ProxyError.TOKEN_EXPIRED, (401, "The access token has expired.")),
        (ProxyError.TOKEN_REVOKED, (401, "The access token has been revoked.")),
        (ProxyError.PERMISSION_DENIED, (403, "This route needs a role the token does not carry.")),
        (ProxyError.RATE_LIMITED, (429, "Too many requests; try again later.")),
        (
            ProxyError.UPSTREAM_UNAVAILABLE,
            (
                503,
                "The upstream is failing; the circuit is open. Try again later.",
            ),
        ),
        (ProxyError.UPSTREAM_TIMEOUT, (504, "The upstream did not answer in time.")),
        (
            ProxyError.BAD_GATEWAY,
            (502, "The upstream refused or broke the connection, or its answer was too large."),
        ),
        (RouteError.NOT_FOUND, (404, "No route has this name.")),
        (RouteError.NAME_TAKEN, (409, "A route with this name already exists.")),
        (RouteError.PREFIX_TAKEN, (409, "Another route already serves this path prefix.")),
        (RouteError.INVALID, (400, "The route is not valid; see `errors`.")),
    ]
)
