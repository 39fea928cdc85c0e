"""JWT at the edge: required/optional/none, roles, revocation facts from the accounts context."""

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings

from apps.common.tokens import CacheTokenRevocations
from core.domain.gateway.route import AuthMode
from tests.factories.tokens import NOT_COMPACT, access_token, refresh_token, user_uuid

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_required_auth_needs_a_valid_token(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED)
    assert proxy.get("/orders").json()["code"] == "not_authenticated"
    assert proxy.get("/orders", headers=bearer("nonsense")).json()["code"] == "token_invalid"
    assert proxy.get("/orders", headers=bearer(refresh_token())).status_code == 401
    expired = access_token(lifetime=timedelta(seconds=-5))
    assert proxy.get("/orders", headers=bearer(expired)).json()["code"] == "token_expired"
    assert upstream.calls == {}
    token = access_token(user_id=user_uuid("u-1"), roles=("user", "ops"))
    sent = proxy.get("/orders", headers=bearer(token)).json()["headers"]
    assert sent["x-user-id"] == user_uuid("u-1")
    assert sent["x-user-roles"] == "ops,user"
    assert sent["authorization"] == f"Bearer {token}"


def test_every_401_carries_the_bearer_challenge_and_a_403_does_not(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED)
    add_route(
        name="admin",
        path_prefix="/orders/admin",
        upstream_url=upstream.url,
        auth=AuthMode.REQUIRED,
        required_roles=frozenset({"admin"}),
    )
    CacheTokenRevocations().revoke_token("jti-gone", datetime.now(UTC) + timedelta(minutes=5))
    refusals = [
        proxy.get("/orders"),
        proxy.get("/orders", headers=bearer("nonsense")),
        proxy.get("/orders", headers=bearer(access_token(lifetime=timedelta(seconds=-5)))),
        proxy.get("/orders", headers=bearer(access_token(jti="jti-gone"))),
    ]
    assert [r.json()["code"] for r in refusals] == [
        "not_authenticated",
        "token_invalid",
        "token_expired",
        "token_revoked",
    ]
    # RFC 9110 §15.5.2, and what the platform's own API answers (RFC 6750's scheme)
    assert {r.headers.get("www-authenticate") for r in refusals} == {'Bearer realm="api"'}
    denied = proxy.get("/orders/admin", headers=bearer(access_token(roles=("user",))))
    assert denied.status_code == 403
    assert "www-authenticate" not in denied.headers


def _forged(**overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": user_uuid("u-1"),
        "type": "access",
        "roles": ["user"],
        "jti": "j-1",
        "sid": "s-1",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "aud": settings.SIMPLE_JWT["AUDIENCE"],
        "iss": settings.SIMPLE_JWT["ISSUER"],
        **overrides,
    }
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def test_foreign_audience_issuer_or_key_is_refused(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED)
    assert proxy.get("/orders", headers=bearer(_forged())).status_code == 200
    for token in (
        _forged(aud="someone-else"),
        _forged(iss="someone-else"),
        jwt.encode({"sub": "u"}, "another-key-that-is-long-enough-for-hs256!!", algorithm="HS256"),
    ):
        response = proxy.get("/orders", headers=bearer(token))
        assert response.status_code == 401


def test_a_signed_token_whose_subject_is_no_user_id_is_refused_at_the_edge_as_by_the_api(
    proxy, upstream, add_route, api_client
):
    # The API refused it (no such user), the gateway passed it on with `X-User-Id: u-1`.
    add_route(upstream_url=upstream.url, auth=AuthMode.OPTIONAL)
    token = _forged(sub="u-1")
    refused = proxy.get("/orders", headers=bearer(token))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    assert upstream.calls == {}
    api = api_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (api.status_code, api.json()["code"]) == (401, "token_invalid")


def _through_gunicorn(head):
    """The gateway's answer to a request `head` as gunicorn hands it over: its own parser and
    environ (repeated field lines joined with ","), then the WSGI application."""
    from gunicorn.config import Config
    from gunicorn.http import wsgi
    from gunicorn.http.message import Request
    from gunicorn.http.unreader import IterUnreader

    from apps.gateway.entrypoint import GatewayApplication

    cfg, peer = Config(), ("127.0.0.1", 40000)
    request = Request(cfg, IterUnreader([head]), peer)
    _, environ = wsgi.create(request, None, peer, ("127.0.0.1", 80), cfg)
    answered = []
    body = b"".join(GatewayApplication()(environ, lambda *status: answered.append(status)))
    status, headers = answered[0][:2]
    return int(status.split()[0]), dict(headers), body


@pytest.mark.parametrize("auth", [AuthMode.OPTIONAL, AuthMode.REQUIRED])
@pytest.mark.parametrize(
    "lines",
    [("Basic dTpw", "Bearer {token}"), ("Bearer {token}", "Basic dTpw")],
    ids=["basic-first", "bearer-first"],
)
def test_two_authorization_lines_around_a_bearer_token_are_refused(
    upstream, add_route, auth, lines
):
    """gunicorn joins them into one `Basic …,Bearer …`: read as the first line's scheme, an
    `optional` route passed the call on as anonymous, the valid token with it."""
    add_route(upstream_url=upstream.url, auth=auth)
    token = access_token()
    fields = "".join(f"Authorization: {line.format(token=token)}\r\n" for line in lines)
    head = f"GET /orders HTTP/1.1\r\nHost: testserver\r\n{fields}\r\n".encode()
    status, headers, body = _through_gunicorn(head)
    assert (status, json.loads(body)["code"]) == (401, "token_invalid")
    assert headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert upstream.calls == {}


def test_two_authorization_lines_pass_unread_on_a_route_without_auth(upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.NONE)
    token = access_token()
    head = (
        "GET /orders HTTP/1.1\r\nHost: testserver\r\n"
        f"Authorization: Basic dTpw\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    status, _, body = _through_gunicorn(head)
    sent = json.loads(body)["headers"]
    assert status == 200
    assert sent["authorization"] == f"Basic dTpw,Bearer {token}"
    assert "x-user-id" not in sent


@pytest.mark.parametrize(
    "exp", ["4102444800", 1e20, [4102444800], {"at": 1}], ids=["text", "past-9999", "list", "map"]
)
def test_a_signed_token_whose_expiry_is_no_time_is_invalid_not_a_500(
    proxy, upstream, add_route, api_client, exp
):
    # Only the signing key makes one, but such a token was a 500 (TypeError, OverflowError from
    # simplejwt's `exp` check) on the proxy and on the platform's own API.
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED)
    token = _forged(exp=exp)
    refused = proxy.get("/orders", headers=bearer(token))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    assert upstream.calls == {}
    api = api_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (api.status_code, api.json()["code"]) == (401, "token_invalid")


@pytest.mark.parametrize("variant", NOT_COMPACT, ids=list(NOT_COMPACT))
def test_a_valid_token_in_another_text_than_its_compact_form_is_refused(
    proxy, upstream, add_route, variant
):
    # The valid token is verified (and remembered by the worker) first: its variant is not it.
    add_route(upstream_url=upstream.url, auth=AuthMode.OPTIONAL)
    user = user_uuid("u-1")
    token = access_token(user_id=user)
    assert proxy.get("/orders", headers=bearer(token)).json()["headers"]["x-user-id"] == user
    refused = proxy.get("/orders", headers=bearer(NOT_COMPACT[variant](token)))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    assert refused.headers["www-authenticate"] == 'Bearer realm="api"'
    assert sum(upstream.calls.values()) == 1


def test_roles_are_checked_per_route(proxy, upstream, add_route):
    add_route(
        upstream_url=upstream.url, auth=AuthMode.REQUIRED, required_roles=frozenset({"admin"})
    )
    denied = proxy.get("/orders", headers=bearer(access_token(roles=("user",))))
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    allowed = proxy.get("/orders", headers=bearer(access_token(roles=("admin",))))
    assert allowed.status_code == 200


def test_optional_auth_passes_anonymous_but_refuses_bad_tokens(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.OPTIONAL)
    anonymous = proxy.get("/orders", headers={"X-User-Id": "spoof"})
    assert anonymous.status_code == 200
    assert "x-user-id" not in anonymous.json()["headers"]
    assert proxy.get("/orders", headers=bearer("forged")).status_code == 401


def test_tokens_are_ignored_on_open_routes(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.NONE)
    response = proxy.get("/orders", headers=bearer("forged"))
    assert response.status_code == 200
    assert "x-user-id" not in response.json()["headers"]


def test_logged_out_or_cut_off_users_are_refused_at_the_edge(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED)
    revocations = CacheTokenRevocations()
    token = access_token(user_id=user_uuid("u-out"), jti="jti-out")
    assert proxy.get("/orders", headers=bearer(token)).status_code == 200
    revocations.revoke_token("jti-out", datetime.now(UTC) + timedelta(minutes=5))
    assert proxy.get("/orders", headers=bearer(token)).json()["code"] == "token_revoked"
    other = access_token(user_id=user_uuid("u-cut"))
    revocations.revoke_user_tokens(user_uuid("u-cut"), datetime.now(UTC) + timedelta(seconds=2))
    assert proxy.get("/orders", headers=bearer(other)).json()["code"] == "token_revoked"


def test_a_logged_out_token_lacking_the_role_is_refused_as_revoked(proxy, upstream, add_route):
    add_route(
        upstream_url=upstream.url, auth=AuthMode.REQUIRED, required_roles=frozenset({"admin"})
    )
    token = access_token(user_id=user_uuid("u-out"), jti="jti-role", roles=("user",))
    assert proxy.get("/orders", headers=bearer(token)).json()["code"] == "permission_denied"
    CacheTokenRevocations().revoke_token("jti-role", datetime.now(UTC) + timedelta(minutes=5))
    refused = proxy.get("/orders", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_revoked"
    assert upstream.calls == {}


def test_revoked_tokens_are_not_counted_against_the_limit(proxy, upstream, add_route):
    from core.domain.gateway.route import LimitKey

    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED, rate_limit=(1, 60, LimitKey.USER))
    revoked = access_token(user_id=user_uuid("u-same"), jti="jti-gone")
    CacheTokenRevocations().revoke_token("jti-gone", datetime.now(UTC) + timedelta(minutes=5))
    for _ in range(3):
        assert proxy.get("/orders", headers=bearer(revoked)).json()["code"] == "token_revoked"
    fresh = access_token(user_id=user_uuid("u-same"))
    assert proxy.get("/orders", headers=bearer(fresh)).status_code == 200
    assert proxy.get("/orders", headers=bearer(fresh)).status_code == 429


def test_embedded_mode_reads_the_same_revocation_facts():
    from apps.common.tokens import SimpleJWTAccessTokenVerifier
    from apps.gateway.limiter import InProcessEdgeChecks
    from core.domain.gateway.route import LimitKey, RateLimitPolicy

    principal = (
        SimpleJWTAccessTokenVerifier()
        .verify(access_token(user_id=user_uuid("u-e"), jti="j-e"))
        .unwrap()
    )
    edge = InProcessEdgeChecks()
    policy = RateLimitPolicy(1, 60, LimitKey.USER)
    assert edge.check("r", principal, "r:user:u-e", policy, 0.0).decision.allowed
    assert not edge.check("r", principal, "r:user:u-e", policy, 1.0).decision.allowed
    assert edge.check("r", None, None, None, 1.0).revoked is False
    CacheTokenRevocations().revoke_token("j-e", datetime.now(UTC) + timedelta(minutes=5))
    assert edge.check("r", principal, None, None, 2.0).revoked is True


def test_every_token_of_a_revoked_session_is_refused_at_the_edge(proxy, upstream, add_route):
    from apps.common.tokens import SimpleJWTAccessTokenVerifier
    from apps.gateway.limiter import InProcessEdgeChecks

    add_route(upstream_url=upstream.url, auth=AuthMode.REQUIRED)
    earlier = access_token(user_id=user_uuid("u-sid"), jti="j-sid-1", sid="s-ended")
    latest = access_token(user_id=user_uuid("u-sid"), jti="j-sid-2", sid="s-ended")
    elsewhere = access_token(user_id=user_uuid("u-sid"), sid="s-alive")
    for token in (earlier, latest, elsewhere):
        assert proxy.get("/orders", headers=bearer(token)).status_code == 200
    CacheTokenRevocations().revoke_session("s-ended", datetime.now(UTC) + timedelta(minutes=5))
    for token in (earlier, latest):
        refused = proxy.get("/orders", headers=bearer(token))
        assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    assert proxy.get("/orders", headers=bearer(elsewhere)).status_code == 200
    # The embedded edge reads the same fact.
    verify = SimpleJWTAccessTokenVerifier().verify
    edge = InProcessEdgeChecks()
    assert edge.check("r", verify(elsewhere).unwrap(), None, None, 0.0).revoked is False
    # A token verified before its session ended (the proxy's memo keeps such principals).
    remembered = verify(access_token(user_id=user_uuid("u-sid"), sid="s-later")).unwrap()
    assert remembered.session_id == "s-later"
    CacheTokenRevocations().revoke_session("s-later", datetime.now(UTC) + timedelta(minutes=5))
    assert edge.check("r", remembered, None, None, 1.0).revoked is True


def test_the_edge_reads_the_revocation_keys_the_accounts_write_whatever_the_cache_prefix(
    settings,
):
    # The Redis edge makes the revocation keys with the default cache's own key function, bound
    # once per limiter: the keys the accounts write through the cache, prefix and version too.
    import copy

    from django.core.cache import caches

    from apps.common.tokens import SimpleJWTAccessTokenVerifier
    from apps.gateway import wiring

    configured = copy.deepcopy(settings.CACHES)
    configured["default"] |= {"KEY_PREFIX": "elsewhere", "VERSION": 7}
    settings.CACHES = configured
    wiring.reset_state()
    assert caches["default"].make_key("k") == "elsewhere:7:k"
    edge = wiring.state().edge
    verify = SimpleJWTAccessTokenVerifier().verify
    by_jti = verify(access_token(user_id=user_uuid("u-k1"), jti="j-k1")).unwrap()
    by_session = verify(access_token(user_id=user_uuid("u-k2"), sid="s-k2")).unwrap()
    by_cutoff = verify(access_token(user_id=user_uuid("u-k3"))).unwrap()
    principals = (by_jti, by_session, by_cutoff)
    assert [edge.check("r", p, None, None, 1.0).revoked for p in principals] == [False] * 3
    revocations = CacheTokenRevocations()
    later = datetime.now(UTC) + timedelta(minutes=5)
    revocations.revoke_token("j-k1", later)
    revocations.revoke_session("s-k2", later)
    revocations.revoke_user_tokens(user_uuid("u-k3"), datetime.now(UTC) + timedelta(seconds=2))
    assert [edge.check("r", p, None, None, 2.0).revoked for p in principals] == [True] * 3
