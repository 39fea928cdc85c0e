"""The proxy's access-log line: one JSON line per proxied request, with the fields operators
filter on (route, status, user, request id, duration) and nothing secret."""

from __future__ import annotations

import json

import pytest

from core.domain.gateway.route import AuthMode, RateLimitPolicy
from tests.factories.tokens import access_token, user_uuid

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


@pytest.fixture
def access_lines(capsys):
    """The proxy's access-log lines written during the test (it writes to stdout itself)."""
    from apps.gateway.entrypoint import _access_log

    _access_log.cache_clear()  # bound to the stdout of the test that first logged
    capsys.readouterr()

    def read():
        out = capsys.readouterr().out
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("logger") == "platform.access"]

    yield read
    _access_log.cache_clear()


def test_each_proxied_request_is_one_line_with_route_status_user_and_request_id(
    proxy, upstream, add_route, access_lines
):
    add_route(
        upstream_url=upstream.url,
        auth=AuthMode.OPTIONAL,
        rate_limit=RateLimitPolicy(1, 60),
    )
    token = access_token(user_id=user_uuid("u-logged"))
    ok = proxy.get(
        "/orders/7?api_key=s3cret",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "rid-proxy-1"},
    )
    limited = proxy.get("/orders/8")
    unrouted = proxy.get("/nowhere")
    assert [ok.status_code, limited.status_code, unrouted.status_code] == [200, 429, 404]
    first, second, third = access_lines()
    assert first["event"] == "request"
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert {key: first[key] for key in ("method", "path", "status", "route", "user_id")} == {
        "method": "GET",
        "path": "/orders/7",  # the query may carry secrets: not logged
        "status": 200,
        "route": "orders",
        "user_id": user_uuid("u-logged"),
    }
    assert first["request_id"] == "rid-proxy-1" == ok.headers["X-Request-ID"]
    assert isinstance(first["duration_ms"], float)
    assert first["duration_ms"] >= 0
    assert (second["status"], second["route"], second["user_id"]) == (429, "orders", None)
    assert second["request_id"] == limited.headers["X-Request-ID"]
    assert (third["status"], third["route"], third["path"]) == (404, None, "/nowhere")
    assert [line["error"] for line in (first, second, third)] == [
        None,  # the upstream's answer
        "rate_limited",
        "route_not_found",
    ]
    text = json.dumps([first, second, third])
    assert token not in text
    assert "s3cret" not in text


def test_a_502_the_gateway_made_is_told_from_one_the_upstream_sent(
    proxy, upstream, add_route, access_lines
):
    # Both were `status: 502` and nothing else: a refused connection looked like an upstream
    # that answered 502 itself.
    from tests.factories.gateway import refusing_url

    add_route(name="down", path_prefix="/down", upstream_url=refusing_url())
    add_route(name="says", path_prefix="/says", upstream_url=upstream.url + "/status")
    assert proxy.get("/down").status_code == 502
    assert proxy.get("/says?code=502").status_code == 502
    down, says = access_lines()
    assert (down["route"], down["error"]) == ("down", "bad_gateway")
    assert (says["route"], says["error"]) == ("says", None)
