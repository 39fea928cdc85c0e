"""Which headers cross the gateway, in either direction, and which the gateway sets itself."""

from __future__ import annotations

from collections.abc import Iterable

Headers = tuple[tuple[str, str], ...]

# RFC 9110 §7.6.1 hop-by-hop headers, plus the proxy's own connection headers, and the
# settings of an h2c upgrade: for this one connection (RFC 7540 §3.2.1, which has the client
# name it in `Connection`; RFC 9113 §3.1 and §11.1 retire the upgrade and the field), so dropped
# even when the client leaves it out of `Connection`.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "http2-settings",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway from what it verified; whatever a client sends in these is dropped.
IDENTITY_HEADERS = frozenset({"x-user-id", "x-user-roles"})
# Recomputed on every hop.
RECOMPUTED = frozenset(
    {
        "host",
        "content-length",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "traceparent",
        "tracestate",
    }
)
# Answered at this hop: the server answers `Expect: 100-continue` and the gateway reads the
# whole body before it calls the upstream, which then has nothing left to expect (forwarded,
# it only draws an interim 100, or a 417 from an upstream that knows no expectations).
ANSWERED_HERE = frozenset({"expect"})
# What a client might claim about its address, the URL or the method, besides the
# `X-Forwarded-*` headers the gateway sets (`X-Forwarded-For` hop-counted through
# TRUSTED_PROXY_COUNT). Proxies in front commonly pass a client's copies on unchanged, and
# frameworks act on them: Symfony/IIS route by `X-Original-URL`/`X-Rewrite-URL` (another path
# than the one the route checked), Rack and Express turn a POST into the method an override
# header names (past the route's `methods`). They are never forwarded.
FORWARDING_CLAIMS = frozenset(
    {
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-server",
        "x-forwarded-ssl",
        "x-forwarded-scheme",
        "x-forwarded-uri",
        "x-original-url",
        "x-original-uri",
        "x-original-host",
        "x-rewrite-url",
        "front-end-https",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        # What CDNs and load balancers in front put the client's address in, and what
        # client-IP libraries read it from (Express's `request-ip`, PHP's `HTTP_CLIENT_IP`):
        # Akamai's and Cloudflare's `True-Client-IP`, Cloudflare's `CF-Connecting-IP`,
        # Fastly's `Fastly-Client-IP`, Envoy's `X-Envoy-External-Address`, ingress-nginx's
        # `X-Original-Forwarded-For`, load balancers' `X-Cluster-Client-IP`.
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "client-ip",
        "x-forwarded",
        "forwarded-for",
        "x-envoy-external-address",
    }
)

# What an authenticating proxy in front (oauth2-proxy, Apache's and nginx's auth modules,
# Grafana's auth proxy) tells its upstream about the user it signed in, and what frameworks
# configured behind one take as the caller (Django's `RemoteUserMiddleware` on
# `HTTP_REMOTE_USER`, Grafana on `X-WEBAUTH-USER`). Here the gateway verifies the caller itself
# and says so in `X-User-Id`/`X-User-Roles`; a client's copies are never forwarded.
IDENTITY_CLAIMS = frozenset(
    {
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-preferred-username",
        "x-forwarded-groups",
        "x-forwarded-access-token",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-preferred-username",
        "x-auth-request-groups",
        "x-auth-request-access-token",
        "x-remote-user",
        "remote-user",
        "x-webauth-user",
        # Kong's authentication and ACL plugins (and its OpenID Connect plugin's userinfo).
        "x-consumer-id",
        "x-consumer-username",
        "x-consumer-custom-id",
        "x-consumer-groups",
        "x-authenticated-userid",
        "x-authenticated-scope",
        "x-credential-identifier",
        "x-anonymous-consumer",
        "x-userinfo",
        # AWS Application Load Balancer's OIDC authentication.
        "x-amzn-oidc-identity",
        "x-amzn-oidc-data",
        "x-amzn-oidc-accesstoken",
        # Azure App Service authentication ("Easy Auth").
        "x-ms-client-principal",
        "x-ms-client-principal-name",
        "x-ms-client-principal-id",
        "x-ms-client-principal-idp",
        # Google Cloud Identity-Aware Proxy.
        "x-goog-authenticated-user-email",
        "x-goog-authenticated-user-id",
        "x-goog-iap-jwt-assertion",
        # Names home-made auth proxies and their upstreams commonly agree on.
        "x-auth-user",
        "x-user",
        "x-roles",
    }
)


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(token.strip().lower() for token in value.split(",") if token.strip())
    return tokens


def end_to_end(
    headers: Iterable[tuple[str, str]], *, also_drop: frozenset[str] = frozenset()
) -> Headers:
    """`headers` without hop-by-hop ones (including those named in `Connection`)."""
    items = tuple(headers)
    drop = HOP_BY_HOP | _connection_tokens(items) | also_drop
    return tuple((name, value) for name, value in items if name.lower() not in drop)


def without_cookies(headers: Headers, names: frozenset[str]) -> Headers:
    """`headers` without the `Set-Cookie` lines that set a cookie named in `names` (names are
    case-sensitive, RFC 6265 §4.1.1): an upstream shares the platform's origin, so it could
    otherwise set the platform's own cookies (the admin's session, its CSRF token)."""
    if not names:
        return headers
    return tuple(
        (name, value)
        for name, value in headers
        if name.lower() != "set-cookie" or value.partition("=")[0].strip() not in names
    )


def forwarded_for(existing: str | None, client_ip: str, *, trust_existing: bool) -> str:
    """The `X-Forwarded-For` chain to send upstream, ending with the address that called us."""
    if trust_existing and existing and existing.strip():
        return f"{existing.strip()}, {client_ip}"
    return client_ip


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header `name` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None
