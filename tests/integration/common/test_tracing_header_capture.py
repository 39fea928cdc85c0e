"""Headers an operator captures in server spans (`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`)
keep no credential: `redact_credential_headers` (config/telemetry.py) is the default list of
headers whose values are redacted."""

from __future__ import annotations

from wsgiref.util import setup_testing_defaults

import pytest
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from config.telemetry import SANITIZE_FIELDS, redact_credential_headers
from tests.tracing import recorded_spans

SENT = {
    "Authorization": "Bearer eyJ.secret.sig",
    "Proxy-Authorization": "Basic dTpw",
    "Cookie": "sessionid=s3cr3t",
    "X-API-Key": "TenantAKey",
    "Apikey": "TenantAKey",
    "Api-Key": "TenantAKey",
    "X-Goog-Api-Key": "TenantAKey",
    "Ocp-Apim-Subscription-Key": "TenantAKey",
    "X-Functions-Key": "TenantAKey",
    "X-Auth-Token": "t0k3n",
    "X-Amz-Security-Token": "t0k3n",
    "X-Client-Secret": "s3cr3t",
    "Accept": "application/json",
}


def _answer(environ, start_response):
    start_response(
        "200 OK", [("Set-Cookie", "sessionid=s3cr3t; Path=/"), ("Content-Type", "text/plain")]
    )
    return [b"ok"]


@pytest.fixture
def captured(monkeypatch):
    """The attributes of the server span of one request sending `SENT`, with every request and
    response header captured and the default list of headers to redact."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", ".*")
    monkeypatch.delenv(SANITIZE_FIELDS, raising=False)
    environ: dict[str, str] = {}
    redact_credential_headers(environ)
    monkeypatch.setenv(SANITIZE_FIELDS, environ[SANITIZE_FIELDS])
    request = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in SENT.items()}
    setup_testing_defaults(request)
    with recorded_spans() as (provider, exporter):
        app = OpenTelemetryMiddleware(_answer, tracer_provider=provider)
        body = app(request, lambda status, headers, exc_info=None: None)
        assert b"".join(body) == b"ok"
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes or {})


def test_captured_credentials_are_redacted_and_other_headers_kept(captured):
    redacted = {
        name: value
        for name, value in captured.items()
        if name.startswith(("http.request.header.", "http.response.header."))
        and value == ("[REDACTED]",)
    }
    expected = {
        f"http.request.header.{name.lower().replace('-', '_')}" for name in SENT if name != "Accept"
    } | {"http.response.header.set_cookie"}
    assert set(redacted) == expected
    assert captured["http.request.header.accept"] == ("application/json",)
    for secret in ("s3cr3t", "TenantAKey", "t0k3n", "dTpw", "eyJ"):
        assert secret not in repr(captured), secret
