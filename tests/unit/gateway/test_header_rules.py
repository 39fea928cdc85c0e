"""Hop-by-hop removal, X-Forwarded-For chains and W3C traceparent continuation."""

from core.domain.gateway.headers import end_to_end, forwarded_for, header_value, traceparent_for


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
    assert end_to_end((("X-User-Id", "x"),), also_drop=frozenset({"x-user-id"})) == ()


def test_forwarded_for_trusts_the_incoming_chain_only_when_told():
    assert forwarded_for("1.1.1.1", "10.0.0.1", trust_existing=False) == "10.0.0.1"
    assert forwarded_for("1.1.1.1", "10.0.0.1", trust_existing=True) == "1.1.1.1, 10.0.0.1"
    assert forwarded_for(" ", "10.0.0.1", trust_existing=True) == "10.0.0.1"


def test_valid_traceparent_is_continued_with_a_new_span():
    incoming = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    assert traceparent_for(incoming, trace_id="a" * 32, span_id="b" * 16) == (
        "00-" + "1" * 32 + "-" + "b" * 16 + "-01"
    )


def test_missing_or_invalid_traceparent_starts_a_new_trace():
    fresh = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert traceparent_for(None, trace_id="a" * 32, span_id="b" * 16) == fresh
    assert traceparent_for("garbage", trace_id="a" * 32, span_id="b" * 16) == fresh
    zeros = "00-" + "0" * 32 + "-" + "2" * 16 + "-01"
    assert traceparent_for(zeros, trace_id="a" * 32, span_id="b" * 16) == fresh


def test_header_lookup_is_case_insensitive():
    assert header_value((("X-A", "1"),), "x-a") == "1"
    assert header_value((), "x-a") is None
