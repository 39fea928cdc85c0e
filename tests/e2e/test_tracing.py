"""With OpenTelemetry on, one trace runs from the client through the platform to the upstreams.

The server exports over OTLP/HTTP to a collector stand-in on loopback, as it would to a real
collector; the upstreams report the `traceparent` they received.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.aggregation.test_embedded_demo import admin_token
from tests.e2e.servers import serve
from tests.factories.gateway import UpstreamServer
from tests.tracing import CLIENT_SPAN, CLIENT_TRACE, CLIENT_TRACEPARENT

pytestmark = pytest.mark.e2e


class Collector(ThreadingHTTPServer):
    """Receives OTLP/HTTP protobuf exports; `spans` maps span id (hex) to (parent id, kind)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        self.spans: dict[str, tuple[str, str, int]] = {}
        self.names: dict[str, str] = {}  # span id → name
        self.attributes: dict[str, dict[str, object]] = {}  # span id → string/int attributes
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def span(self, span_id: str) -> tuple[str, str, int]:
        """(trace id, parent span id, kind) of an exported span, waiting for its batch."""
        deadline = time.monotonic() + 10
        while span_id not in self.spans:
            assert time.monotonic() < deadline, f"span {span_id} never exported"
            time.sleep(0.05)
        return self.spans[span_id]


class _CollectorHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        export = ExportTraceServiceRequest()
        export.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.server.spans[span.span_id.hex()] = (  # type: ignore[attr-defined]
                        span.trace_id.hex(),
                        span.parent_span_id.hex(),
                        span.kind,
                    )
                    self.server.names[span.span_id.hex()] = span.name  # type: ignore[attr-defined]
                    self.server.attributes[span.span_id.hex()] = {  # type: ignore[attr-defined]
                        a.key: a.value.string_value or a.value.int_value for a in span.attributes
                    }
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


SERVER, CLIENT = 2, 3  # OTLP's SpanKind values


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    collector = Collector()
    upstream = UpstreamServer().start()
    with _traced_server(
        tmp_path_factory.mktemp("var-tracing"), collector, OTEL_SERVICE_NAME="platform-e2e"
    ) as (http, server):
        yield http, collector, upstream, server.var_dir / "server.log"
    upstream.stop()


@contextlib.contextmanager
def _traced_server(var_dir, collector, **env):
    """A platform server exporting its spans to `collector`, and an admin's client of it."""
    with serve(
        var_dir, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_BSP_SCHEDULE_DELAY="50", **env
    ) as server:
        secrets = json.loads((server.var_dir / "local-secrets.json").read_text())
        admin = {"Authorization": f"Bearer {admin_token(secrets['JWT_SIGNING_KEY'])}"}
        with httpx.Client(base_url=server.url, timeout=10, headers=admin) as http:
            yield http, server
    collector.shutdown()
    collector.server_close()


def _parent_of_upstream_call(traceparent: str) -> str:
    version, trace_id, parent_id, _flags = traceparent.split("-")
    assert (version, trace_id) == ("00", CLIENT_TRACE), traceparent
    return parent_id


def test_a_proxied_call_continues_the_clients_trace_through_the_gateways_spans(traced):
    http, collector, upstream, log = traced
    _add_route(http, "traced", upstream)
    answer = _first_routed(http, "/traced/x", headers={"traceparent": CLIENT_TRACEPARENT})
    assert answer.status_code == 200, answer.text

    attempt = _parent_of_upstream_call(answer.json()["headers"]["traceparent"])
    trace_id, server_span, kind = collector.span(attempt)
    assert (trace_id, kind) == (CLIENT_TRACE, CLIENT)
    assert collector.span(server_span) == (CLIENT_TRACE, CLIENT_SPAN, SERVER)
    request_id = answer.headers["X-Request-ID"]
    deadline = time.monotonic() + 10
    while not (lines := _log_lines(log, request_id)):  # written once the answer is sent
        assert time.monotonic() < deadline, "no access-log line"
        time.sleep(0.05)
    assert (lines[0]["trace_id"], lines[0]["span_id"]) == (CLIENT_TRACE, server_span)


def test_proxied_server_spans_are_named_without_the_clients_path(traced):
    """Trace backends index span names: a proxied request's server span is named by its method
    (OpenTelemetry's HTTP conventions: the URI path must not be the default name), so paths a
    client makes up add no names; the route it matched is an attribute."""
    http, collector, upstream, _log = traced
    _add_route(http, "named", upstream)
    _first_routed(http, "/named/warm")
    servers = []
    for path in ("/named/orders/1", "/named/orders/2?page=3", "/unrouted/4"):
        answer = http.get(path, headers={"traceparent": CLIENT_TRACEPARENT})
        if path.startswith("/named"):
            attempt = _parent_of_upstream_call(answer.json()["headers"]["traceparent"])
            servers.append(collector.span(attempt)[1])
    assert answer.status_code == 404
    deadline = time.monotonic() + 10
    while not (
        unrouted := [
            span
            for span, (trace_id, parent, kind) in list(collector.spans.items())
            if (trace_id, parent, kind) == (CLIENT_TRACE, CLIENT_SPAN, SERVER)
            and span not in servers
            and collector.attributes[span].get("http.status_code") == 404
        ]
    ):
        assert time.monotonic() < deadline, "the unrouted request's span never came"
        time.sleep(0.05)
    for span in servers:
        assert collector.span(span)[2] == SERVER
        assert collector.names[span] == "GET", collector.names[span]
        assert collector.attributes[span]["gateway.route"] == "named"
    assert [collector.names[span] for span in unrouted] == ["GET"]
    assert "gateway.route" not in collector.attributes[unrouted[0]]


def _add_route(http, name, upstream):
    created = http.post(
        "/api/v1/gateway/routes",
        json={"name": name, "path_prefix": f"/{name}", "upstream_url": upstream.url},
    )
    assert created.status_code == 201, created.text


def _first_routed(http, path, **options):
    """The first answer to `path` that a route served (workers load a new route within a
    second; another server process, so it is polled)."""
    deadline = time.monotonic() + 10
    while (answer := http.get(path, **options)).status_code == 404:
        assert time.monotonic() < deadline, "the route never took effect"
        time.sleep(0.05)
    return answer


def _log_lines(log, request_id):
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and request_id in line:
            found.append(json.loads(line))
    return found


def test_a_composite_runs_sources_inside_the_clients_trace(traced):
    http, collector, upstream, _log = traced
    created = http.post(
        "/api/v1/aggregation/composites",
        json={"name": "traced", "auth": "none", "sources": [{"key": "a", "url": upstream.url}]},
    )
    assert created.status_code == 201, created.text

    run = http.get(
        "/api/v1/aggregation/composites/traced/run", headers={"traceparent": CLIENT_TRACEPARENT}
    )
    assert run.status_code == 200, run.text

    source_call = _parent_of_upstream_call(run.json()["data"]["a"]["headers"]["traceparent"])
    trace_id, run_span, kind = collector.span(source_call)
    assert (trace_id, kind) == (CLIENT_TRACE, CLIENT)
    assert collector.span(run_span)[0] == CLIENT_TRACE


@pytest.mark.parametrize(
    ("name", "tracestate", "expected"),
    [("kept-state", "vendor=client", "vendor=client"), ("refused-state", "Not A Member", None)],
)
def test_a_source_gets_the_tracestate_of_its_calls_span_and_no_other(
    traced, name, tracestate, expected
):
    """The run continues the client's trace without OpenTelemetry too; with it, the context of
    the source call's own span goes out, `tracestate` included: a client's state that
    OpenTelemetry did not keep (not a W3C list) must not ride along with its `traceparent`."""
    http, collector, upstream, _log = traced
    created = http.post(
        "/api/v1/aggregation/composites",
        json={"name": name, "auth": "none", "sources": [{"key": "a", "url": upstream.url}]},
    )
    assert created.status_code == 201, created.text

    run = http.get(
        f"/api/v1/aggregation/composites/{name}/run",
        headers={"traceparent": CLIENT_TRACEPARENT, "tracestate": tracestate},
    )
    assert run.status_code == 200, run.text

    received = run.json()["data"]["a"]["headers"]
    source_call = _parent_of_upstream_call(received["traceparent"])
    assert collector.span(source_call)[::2] == (CLIENT_TRACE, CLIENT)
    assert received.get("tracestate") == expected


SECRET = "s3cret-t0ken-in-the-query"


@pytest.fixture(scope="module")
def traced_new_conventions(tmp_path_factory):
    """A server whose instrumentation records both the old and the new HTTP conventions."""
    collector = Collector()
    with _traced_server(
        tmp_path_factory.mktemp("var-tracing-dup"),
        collector,
        OTEL_SEMCONV_STABILITY_OPT_IN="http/dup",
    ) as (http, _server):
        yield http, collector
    collector.shutdown()
    collector.server_close()


@pytest.mark.parametrize("conventions", ["old", "both"])
def test_server_spans_keep_the_path_but_not_the_query(traced, traced_new_conventions, conventions):
    """A query may carry a token: the access log leaves it out, and so do the server spans of
    Django's paths and of proxied ones."""
    if conventions == "old":
        http, collector, upstream, _log = traced
    else:
        (http, collector), upstream = traced_new_conventions, traced[2]
    route = f"quiet{conventions}"
    _add_route(http, route, upstream)
    _first_routed(http, f"/{route}/warm")
    for number, (path, status) in enumerate(
        [("/api/v1/auth/me", 401), (f"/{route}/orders", 200)], start=1
    ):
        trace_id = f"{number:02d}{'a' if conventions == 'old' else 'b'}0{CLIENT_TRACE[4:]}"
        answer = http.get(
            f"{path}?access_token={SECRET}&page=2",
            headers={"traceparent": f"00-{trace_id}-{CLIENT_SPAN}-01", "Authorization": ""},
        )
        assert answer.status_code == status, answer.text
        attributes = collector.attributes[_server_span(collector, trace_id)]
        assert path in (attributes.get("http.target"), attributes.get("url.path")), attributes
        if conventions == "both":
            assert attributes.get("url.path") == path, attributes
        leaked = _attributes_holding(collector, trace_id, SECRET)
        assert not leaked, leaked


def _attributes_holding(collector, trace_id, text):
    """{(span name, attribute): value} of every exported span of the trace that holds `text`."""
    return {
        (collector.names[span], key): value
        for span, (trace, _parent, _kind) in list(collector.spans.items())
        if trace == trace_id
        for key, value in collector.attributes[span].items()
        if text in str(value)
    }


def _server_span(collector, trace_id):
    deadline = time.monotonic() + 10
    while not (
        found := [
            span
            for span, (trace, parent, kind) in list(collector.spans.items())
            if (trace, parent, kind) == (trace_id, CLIENT_SPAN, SERVER)
        ]
    ):
        assert time.monotonic() < deadline, f"no server span in trace {trace_id}"
        time.sleep(0.05)
    return found[0]


@pytest.mark.parametrize("conventions", ["old", "both"])
def test_source_call_spans_keep_the_url_but_not_the_query(
    traced, traced_new_conventions, conventions
):
    """A source's configured URL may carry a credential in its query (`?api_key=…`): the client
    span of the call records the URL without it, in both conventions."""
    if conventions == "old":
        http, collector, upstream, _log = traced
    else:
        (http, collector), upstream = traced_new_conventions, traced[2]
    name = f"keyed{conventions}"
    created = http.post(
        "/api/v1/aggregation/composites",
        json={
            "name": name,
            "auth": "none",
            "sources": [{"key": "a", "url": f"{upstream.url}/items?api_key={SECRET}&page=2"}],
        },
    )
    assert created.status_code == 201, created.text
    run = http.get(
        f"/api/v1/aggregation/composites/{name}/run", headers={"traceparent": CLIENT_TRACEPARENT}
    )
    assert run.status_code == 200, run.text
    source_call = _parent_of_upstream_call(run.json()["data"]["a"]["headers"]["traceparent"])
    assert collector.span(source_call)[2] == CLIENT
    attributes = collector.attributes[source_call]
    assert f"{upstream.url}/items" in (attributes.get("http.url"), attributes.get("url.full"))
    _server_span(collector, CLIENT_TRACE)  # the run's own span, exported after the call's
    leaked = _attributes_holding(collector, CLIENT_TRACE, SECRET)
    assert not leaked, leaked
