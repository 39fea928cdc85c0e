"""HttpxSourceFetcher against a real upstream: deadlines, sizes, bodies, connection errors."""

from __future__ import annotations

import ssl
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import ANY
from urllib.parse import quote

import httpcore
import httpx
import pytest

from apps.aggregation.fetching import (
    MAX_CONTENT_CODINGS,
    MAX_JSON_CONTAINERS,
    HttpxSourceFetcher,
    _call_deadline,
    _DeadlineBackend,
    _Progress,
    shared_fetcher,
    source_client,
)
from core.domain.aggregation.budget import RunBudget
from core.domain.aggregation.runs import SourceFailure
from core.usecases.aggregation.ports import Fetched, FetchFailed, SourceRequest
from tests.integration.aggregation.upstream import Upstream, encoded, layered


@pytest.fixture
def fetcher():
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=4) as executor:
        yield HttpxSourceFetcher(client, executor, max_body_bytes=10_000)


def request(key, url, timeout_ms=2000, **headers):
    return SourceRequest(key=key, method="GET", url=url, timeout_ms=timeout_ms, headers=headers)


def test_answers_are_parsed_json_with_status_and_latency(fetcher, upstream):
    result = fetcher.fetch_all([request("a", upstream.url("/json?delay_ms=50"))])["a"]
    assert isinstance(result, Fetched)
    assert result.status == 200
    assert result.body["delay_ms"] == 50
    assert result.took_ms >= 45


def test_the_coordinator_stops_waiting_at_the_deadline(fetcher, upstream):
    started = time.perf_counter()
    results = fetcher.fetch_all(
        [request("hang", upstream.url("/hang"), 200), request("ok", upstream.url("/json"))]
    )
    assert time.perf_counter() - started < 1.5  # /hang never answers; margin for a loaded box
    assert results["hang"].failure is SourceFailure.TIMEOUT
    assert isinstance(results["ok"], Fetched)


def test_a_slow_drip_is_cut_at_the_deadline(fetcher, upstream):
    started = time.perf_counter()
    # The drip lasts 3 s; being cut at the 250 ms deadline leaves a wide margin for a loaded box.
    result = fetcher.fetch_all([request("d", upstream.url("/drip?chunks=150&every_ms=20"), 250)])
    assert time.perf_counter() - started < 1.5
    assert result["d"].failure is SourceFailure.TIMEOUT
    assert result["d"].status == 200  # its headers were in: the source did answer


def test_a_body_cut_by_a_reset_is_unreachable_with_the_status_the_source_gave(fetcher, upstream):
    result = fetcher.fetch_all([request("c", upstream.url("/cut?length=1000"))])["c"]
    assert result.failure is SourceFailure.UNREACHABLE, result
    assert result.status == 200


def test_a_source_that_never_answered_has_no_status(fetcher, upstream):
    result = fetcher.fetch_all([request("h", upstream.url("/hang"), 200)])["h"]
    assert (result.failure, result.status) == (SourceFailure.TIMEOUT, None)


def test_a_source_dripping_its_headers_frees_the_call_thread_at_the_deadline(upstream):
    # The headers never end, each line well within a socket timeout: only a deadline on the
    # whole call frees the thread. Held, it would be one of the process's call threads lost
    # for as long as the source drips (64 such calls and no source is called any more).
    url = upstream.url("/drip-headers?every_ms=20")
    with (
        source_client(max_connections=2) as client,
        ThreadPoolExecutor(max_workers=1) as executor,
    ):
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1000)
        result = fetcher.fetch_all([request("d", url, 200)])["d"]
        assert result.failure is SourceFailure.TIMEOUT
        executor.submit(lambda: None).result(timeout=5)  # the drip alone would last 30 s


def test_declared_and_streamed_oversize_are_refused(fetcher, upstream):
    results = fetcher.fetch_all(
        [
            request("declared", upstream.url("/big?bytes=20000")),
            request("streamed", upstream.url("/big-chunked?bytes=20000")),
        ]
    )
    assert results["declared"].failure is SourceFailure.TOO_LARGE
    assert results["streamed"].failure is SourceFailure.TOO_LARGE
    assert results["declared"].status == 200


def test_non_2xx_and_non_json_are_failures(fetcher, upstream):
    results = fetcher.fetch_all(
        [request("err", upstream.url("/json?status=404")), request("txt", upstream.url("/text"))]
    )
    assert results["err"] == FetchFailed(
        SourceFailure.HTTP_ERROR, "The source answered 404.", results["err"].took_ms, 404
    )
    assert results["txt"].failure is SourceFailure.INVALID_JSON


def test_json_nested_past_the_depth_limit_is_not_json(fetcher, upstream):
    results = fetcher.fetch_all(
        [
            request("ok", upstream.url("/deep?levels=100")),
            request("deep", upstream.url("/deep?levels=101")),
            request("abyss", upstream.url("/deep?levels=5000")),  # past the recursion limit
        ]
    )
    assert results["ok"].status == 200
    assert results["deep"].failure is SourceFailure.INVALID_JSON
    assert results["abyss"].failure is SourceFailure.INVALID_JSON


def test_refused_connections_are_unreachable(fetcher):
    result = fetcher.fetch_all([request("x", "http://127.0.0.1:9/")])["x"]
    assert result.failure is SourceFailure.UNREACHABLE


def test_a_request_that_starts_after_its_deadline_is_not_made(upstream):
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1000)
        before = upstream.calls["/json"]
        results = fetcher.fetch_all(
            [
                request("first", upstream.url("/json?delay_ms=300"), 1000),
                request("queued", upstream.url("/json"), 100),
            ]
        )
    # Leaving the block shut the executor down and waited for its worker: had the queued call
    # been made after "first", the upstream would have counted it by now.
    assert results["queued"].failure is SourceFailure.TIMEOUT
    assert upstream.calls["/json"] - before == 1


def test_the_worker_side_timeout_applies_when_the_thread_runs(upstream):
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1000)
        started = time.monotonic()
        result = fetcher._fetch_one(
            request("h", upstream.url("/hang")),
            started,
            started + 0.1,
            _Progress(),
            RunBudget(None),
        )
    assert result.failure is SourceFailure.TIMEOUT


def test_the_shared_fetcher_is_one_per_process():
    one = shared_fetcher(threads=2, max_connections=2, max_body_bytes=10, max_calls_per_origin=2)
    again = shared_fetcher(threads=9, max_connections=9, max_body_bytes=99, max_calls_per_origin=9)
    assert again is one


def test_an_unexpected_client_error_is_that_sources_failure(fetcher):
    result = fetcher.fetch_all([request("x", "http://[::1/")])["x"]
    assert result.failure is SourceFailure.UNREACHABLE
    assert "InvalidURL" in result.detail


def test_each_source_call_is_a_child_of_the_runs_span_and_carries_its_trace(upstream):
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=2) as executor:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=10_000)
        with provider.get_tracer("test").start_as_current_span("run") as run:
            results = fetcher.fetch_all(
                [request("a", upstream.url("/echo/a")), request("b", upstream.url("/echo/b"))]
            )
    provider.shutdown()

    run_context = run.get_span_context()
    calls = [span for span in exporter.get_finished_spans() if span.name != "run"]
    assert len(calls) == 2
    assert {span.parent.span_id for span in calls} == {run_context.span_id}
    for key in ("a", "b"):
        traceparent = results[key].body["headers"]["traceparent"]
        assert traceparent.split("-")[1] == format(run_context.trace_id, "032x")


@pytest.mark.parametrize("codings", ["gzip", "deflate", "raw-deflate", "gzip, gzip"])
def test_content_coded_answers_are_decoded(fetcher, upstream, codings):
    url = upstream.url(f"/gzip?bytes=5000&codings={quote(codings)}")
    result = fetcher.fetch_all([request("z", url)])["z"]
    assert isinstance(result, Fetched), result
    assert result.body == "x" * 5000


@pytest.mark.parametrize("codings", ["gzip", "deflate", "gzip, gzip"])
def test_a_small_compressed_answer_never_expands_past_the_limit_in_memory(upstream, codings):
    # ~50 KB of gzip that decodes to 50 MB ("a zip bomb"): refused as too large, and decoded
    # no further than the limit. Decoding a whole network read at once (httpx's decoders)
    # would hold tens of MB here for a 1 MB limit, two thousand times more with `gzip, gzip`.
    limit, size = 1_000_000, 50_000_000
    assert len(encoded(size, codings)) < limit  # built before measuring; the server reuses it
    url = upstream.url(f"/gzip?bytes={size}&codings={quote(codings)}")
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=limit)
        tracemalloc.start()
        try:
            result = fetcher.fetch_all([request("bomb", url, 10_000)])["bomb"]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.failure is SourceFailure.TOO_LARGE, result
    assert result.status == 200
    assert peak < 4 * limit, f"decoding held {peak / 1e6:.1f} MB for a {limit / 1e6:.0f} MB limit"


def test_an_answer_its_coding_cannot_decode_is_not_usable(fetcher, upstream):
    # The source did answer (200): its body is what is wrong, not the way to it.
    url = upstream.url("/raw?encoding=gzip&body=" + quote('"not gzip"'))
    result = fetcher.fetch_all([request("z", url)])["z"]
    assert result.failure is SourceFailure.INVALID_JSON, result
    assert result.status == 200
    assert "content coding" in result.detail


def test_thousands_of_listed_codings_are_refused_before_any_is_decoded(upstream):
    # `{"x":1}` gzipped 3000 times, each layer listed: an inflater per layer took 75 MB and
    # ~95 ms of CPU per source before the cap. Refused at the headers, the body never read.
    layered(3000)  # built before measuring; the server reuses it
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1_000_000)
        tracemalloc.start()
        try:
            result = fetcher.fetch_all([request("l", upstream.url("/layers?n=3000"))])["l"]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.failure is SourceFailure.INVALID_JSON, result
    assert result.status == 200
    assert f"more than {MAX_CONTENT_CODINGS} content codings" in result.detail
    assert peak < 5_000_000, f"the call held {peak / 1e6:.1f} MB"


def test_one_coding_past_the_cap_is_refused(fetcher, upstream):
    codings = ", ".join(["gzip"] * (MAX_CONTENT_CODINGS + 1))
    url = upstream.url(f"/gzip?bytes=100&codings={quote(codings)}")
    result = fetcher.fetch_all([request("z", url)])["z"]
    assert (result.failure, result.status) == (SourceFailure.INVALID_JSON, 200)


def test_three_listed_codings_are_refused(fetcher, upstream):
    # The cap itself, not only its constant: one coding asked for, one more for a proxy.
    url = upstream.url(f"/gzip?bytes=100&codings={quote('gzip, gzip, gzip')}")
    result = fetcher.fetch_all([request("z", url)])["z"]
    assert (result.failure, result.status) == (SourceFailure.INVALID_JSON, 200)
    assert "more than 2 content codings" in result.detail


@pytest.mark.parametrize("coding", ["br", "compress", "zstd"])
def test_a_coding_that_was_not_asked_for_is_refused(fetcher, upstream, coding):
    # Even over a body that happens to be plain JSON: the label says it is not.
    url = upstream.url(f"/raw?encoding={coding}&body=" + quote('{"a": 1}'))
    result = fetcher.fetch_all([request("z", url)])["z"]
    assert (result.failure, result.status) == (SourceFailure.INVALID_JSON, 200), result
    assert f"not asked for ({coding})" in result.detail


def test_the_identity_coding_is_no_coding(fetcher, upstream):
    url = upstream.url("/raw?encoding=identity&body=" + quote('{"a": 1}'))
    assert fetcher.fetch_all([request("z", url)])["z"] == Fetched(200, {"a": 1}, ANY)


def test_an_https_source_must_present_a_certificate_it_trusts():
    # The upstream's certificate is self-signed: the call stops at the TLS handshake.
    upstream = Upstream.start(tls=True)
    try:
        with (
            source_client(max_connections=2) as client,
            ThreadPoolExecutor(max_workers=1) as executor,
        ):
            fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1000)
            result = fetcher.fetch_all([request("tls", upstream.url("/json"))])["tls"]
        trusting = ssl.create_default_context(cadata=upstream.certificate)
        with httpx.Client(verify=trusting) as client:  # the server itself is fine
            assert client.get(upstream.url("/json")).status_code == 200
    finally:
        upstream.stop()
    assert result.failure is SourceFailure.UNREACHABLE
    assert "ConnectError" in result.detail
    assert upstream.calls["/json"] == 1  # the trusting client's call only


def test_no_socket_operation_starts_once_the_calls_time_is_up(upstream):
    # The answer is waiting in the socket, but the call's deadline has passed: the read is
    # not made (nor is a connection opened).
    backend = _DeadlineBackend()
    token = _call_deadline.set(time.monotonic() + 5)
    try:
        stream = backend.connect_tcp("127.0.0.1", upstream.port, timeout=1)
        stream.write(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n", timeout=1)
        assert stream.read(10, timeout=1).startswith(b"HTTP/1.1")  # while time is left
        _call_deadline.set(time.monotonic() - 0.001)
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=1)
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"x", timeout=1)
        with pytest.raises(httpcore.ConnectTimeout):
            backend.connect_tcp("127.0.0.1", upstream.port, timeout=1)
        stream.close()
    finally:
        _call_deadline.reset(token)


def test_only_the_codings_the_fetcher_decodes_are_asked_for(fetcher, upstream):
    result = fetcher.fetch_all([request("e", upstream.url("/echo/codings"))])["e"]
    assert result.body["headers"]["accept-encoding"] == "gzip, deflate"


def test_an_answer_of_many_small_objects_is_refused_before_it_is_parsed(upstream):
    # 1 048 573 bytes of `[{},{},…]`, under the 1 MiB limit: 349 524 objects, 45 MB parsed.
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1024 * 1024)
        url = upstream.url("/objects?bytes=1048573")
        result = fetcher.fetch_all([request("o", url, 10_000)])["o"]
    assert (result.failure, result.status) == (SourceFailure.TOO_LARGE, 200), result
    assert f"more than {MAX_JSON_CONTAINERS} arrays and objects" in result.detail


def test_an_answer_of_as_many_objects_as_allowed_is_parsed(fetcher, upstream):
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=1024 * 1024)
        url = upstream.url(f"/objects?bytes={3 * (MAX_JSON_CONTAINERS - 1) + 1}")
        result = fetcher.fetch_all([request("o", url, 10_000)])["o"]
    assert isinstance(result, Fetched), result
    assert len(result.body) == MAX_JSON_CONTAINERS - 1  # and the array around them


def test_answers_past_the_runs_budget_are_refused_and_the_others_kept(fetcher, upstream):
    # Two 10 KB answers and a small one, 15 KB for the run: whichever 10 KB answer comes in
    # second no longer fits; the small one always does.
    budget = RunBudget(15_000)
    results = fetcher.fetch_all(
        [
            request("a", upstream.url("/big?bytes=9000&n=a")),
            request("b", upstream.url("/big?bytes=9000&n=b")),
            request("small", upstream.url("/json")),
        ],
        budget,
    )
    assert isinstance(results["small"], Fetched)
    big = sorted((results["a"], results["b"]), key=lambda result: isinstance(result, Fetched))
    refused, kept = big
    assert kept == Fetched(200, "x" * 9000, ANY)
    assert (refused.failure, refused.status) == (SourceFailure.TOO_LARGE, 200), refused
    assert "run's answers together exceed 15000 bytes" in refused.detail


def test_a_run_within_its_budget_is_unchanged(fetcher, upstream):
    results = fetcher.fetch_all(
        [request(key, upstream.url(f"/big?bytes=4000&n={key}")) for key in "abc"],
        RunBudget(15_000),
    )
    assert all(result == Fetched(200, "x" * 4000, ANY) for result in results.values())
