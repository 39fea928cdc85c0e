"""Hop-by-hop removal, X-Forwarded-For chains and W3C traceparent continuation."""

from core.domain.gateway.headers import (
    end_to_end,
    forwarded_for,
    header_value,
    without_cookies,
)
from core.domain.shared.tracing import trace_context


def test_hop_by_hop_and_connection_named_headers_are_dropped():
    headers = (
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "1"),
        ("Keep-Alive", "5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Accept", "json"),
    )
    assert end_to_end(headers) == (("Accept", "json"),)
    # An h2c upgrade's settings are for this connection alone (RFC 7540 §3.2.1), named in
    # `Connection` or not.
    assert end_to_end((("HTTP2-Settings", "AAMAAABkAAQAAP__"), ("Accept", "json"))) == (
        ("Accept", "json"),
    )
    assert end_to_end((("X-User-Id", "x"),), also_drop=frozenset({"x-user-id"})) == ()


def test_forwarded_for_trusts_the_incoming_chain_only_when_told():
    assert forwarded_for("1.1.1.1", "10.0.0.1", trust_existing=False) == "10.0.0.1"
    assert forwarded_for("1.1.1.1", "10.0.0.1", trust_existing=True) == "1.1.1.1, 10.0.0.1"
    assert forwarded_for(" ", "10.0.0.1", trust_existing=True) == "10.0.0.1"


def test_valid_traceparent_is_continued_with_a_new_span_and_its_tracestate():
    incoming = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    continued = "00-" + "1" * 32 + "-" + "b" * 16 + "-01"
    ids = {"trace_id": "a" * 32, "span_id": "b" * 16}
    assert trace_context(incoming, None, **ids) == (("traceparent", continued),)
    assert trace_context(incoming, "v=1", **ids) == (
        ("traceparent", continued),
        ("tracestate", "v=1"),
    )
    unsampled = "00-" + "1" * 32 + "-" + "2" * 16 + "-00"
    assert trace_context(unsampled, None, **ids) == (("traceparent", continued[:-2] + "00"),)


def test_a_tracestate_past_the_w3c_limits_is_dropped_and_the_trace_continued():
    # W3C Trace Context: 512 characters and 32 list members are what a hop must pass on.
    incoming = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    continued = (("traceparent", "00-" + "1" * 32 + "-" + "b" * 16 + "-01"),)
    ids = {"trace_id": "a" * 32, "span_id": "b" * 16}
    longest = "v=" + "x" * 510
    assert trace_context(incoming, longest, **ids) == (*continued, ("tracestate", longest))
    assert trace_context(incoming, longest + "x", **ids) == continued
    assert trace_context(incoming, "v=" + "x" * 3998, **ids) == continued
    most = ",".join(f"v{n}=1" for n in range(32))
    assert trace_context(incoming, most + ", ,", **ids) == (
        *continued,
        ("tracestate", most + ", ,"),
    )
    assert trace_context(incoming, most + ",v32=1", **ids) == continued


def test_missing_or_invalid_traceparent_starts_a_new_trace_without_tracestate():
    # Not sampled (`00`): without OpenTelemetry nothing records the trace this starts.
    fresh = (("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-00"),)
    ids = {"trace_id": "a" * 32, "span_id": "b" * 16}
    assert trace_context(None, "v=1", **ids) == fresh
    assert trace_context("garbage", "v=1", **ids) == fresh
    zeros = "00-" + "0" * 32 + "-" + "2" * 16 + "-01"
    assert trace_context(zeros, None, **ids) == fresh
    no_parent = "00-" + "1" * 32 + "-" + "0" * 16 + "-01"  # an all-zero parent-id: invalid too
    assert trace_context(no_parent, "v=1", **ids) == fresh
    # W3C Trace Context: ids are lowercase hex, and a header with other characters is ignored
    # (as OpenTelemetry's propagator ignores it when tracing is on).
    upper = "00-" + "A1" * 16 + "-" + "2B" * 8 + "-01"
    assert trace_context(upper, "v=1", **ids) == fresh
    assert trace_context(upper.replace("00-", "0A-", 1), None, **ids) == fresh


def test_header_lookup_is_case_insensitive():
    assert header_value((("X-A", "1"),), "x-a") == "1"
    assert header_value((), "x-a") is None


def test_an_upstream_may_not_set_the_platforms_own_cookies():
    headers = (
        ("Set-Cookie", "sessionid=stolen; Path=/admin/; HttpOnly"),
        ("set-cookie", " csrftoken = fixed; Path=/admin/"),
        ("Set-Cookie", "SessionID=other-app; Path=/"),  # names are case-sensitive
        ("Set-Cookie", "theme=dark; Path=/"),
        ("X-Note", "sessionid=not-a-cookie"),
    )
    assert without_cookies(headers, frozenset({"sessionid", "csrftoken"})) == (
        ("Set-Cookie", "SessionID=other-app; Path=/"),
        ("Set-Cookie", "theme=dark; Path=/"),
        ("X-Note", "sessionid=not-a-cookie"),
    )
    assert without_cookies(headers, frozenset()) is headers
