"""RunComposite with in-memory ports: planning, caching, merging, recording."""

import pytest

from core.domain.aggregation.composite import MAX_CHAIN, AuthMode, Composite, Source
from core.domain.aggregation.runs import RunStatus, SourceFailure
from core.domain.shared.result import Err, Ok
from core.usecases.aggregation.errors import ParameterErrors, RunError
from core.usecases.aggregation.ports import Fetched, FetchFailed
from core.usecases.aggregation.run import Caller, RunCommand, RunComposite
from tests.fakes.aggregation import (
    FakeIdGenerator,
    FakeRunMetrics,
    FakeSourceFetcher,
    InMemoryCompositeRepository,
    InMemoryRunHistory,
    InMemorySourceCache,
)
from tests.fakes.clock import FakeClock, FakeMonotonic
from tests.fakes.random_ids import FakeRandomHex
from tests.tracing import CLIENT_SPAN, CLIENT_TRACE

ALICE = Caller(user_id="alice", raw_token="tok-alice")


class World:
    def __init__(self, *composites, cache=None, max_run_bytes=None):
        self.composites = InMemoryCompositeRepository(*composites)
        self.monotonic = FakeMonotonic()
        self.fetcher = FakeSourceFetcher(monotonic=self.monotonic)
        self.cache = cache or InMemorySourceCache()
        self.history = InMemoryRunHistory()
        self.metrics = FakeRunMetrics()
        self.clock = FakeClock()
        self.ids = FakeIdGenerator()
        self.random = FakeRandomHex()
        self.use_case = RunComposite(
            composites=self.composites,
            fetcher=self.fetcher,
            cache=self.cache,
            recorder=self.history,
            metrics=self.metrics,
            clock=self.clock,
            monotonic=self.monotonic,
            ids=self.ids,
            random=self.random,
            max_run_bytes=max_run_bytes,
        )

    def run(self, name="c", query=None, caller=None, request_id=None, **trace):
        return self.use_case.execute(RunCommand(name, query or {}, caller, request_id, **trace))

    def run_through(self, *chain):
        """A run of `c` made by a source of the last composite in `chain`."""
        return self.use_case.execute(RunCommand("c", {}, chain=chain))


def composite(*sources, **options):
    options.setdefault("auth", AuthMode.NONE)
    return Composite(name="c", sources=tuple(sources), **options)


@pytest.fixture
def two_sources():
    return composite(
        Source(key="a", url="http://h/a/{id}", fields=("key",), rename={"key": "k"}),
        Source(key="b", url="http://h/b", required=False, forward_auth=True),
    )


def test_unknown_composite_is_not_found():
    assert World().run("nope") == Err(RunError.NOT_FOUND)


def test_required_auth_refuses_anonymous_callers(two_sources):
    world = World(composite(Source(key="a", url="http://h/"), auth=AuthMode.REQUIRED))
    assert world.run() == Err(RunError.AUTHENTICATION_REQUIRED)
    assert world.run(caller=ALICE).is_ok()


def test_unfilled_placeholders_refuse_the_run_before_any_call(two_sources):
    world = World(two_sources)
    assert world.run() == Err(ParameterErrors({"id": ["This query parameter is required."]}))
    assert world.fetcher.requests == []
    assert world.history.runs == []


def test_a_nul_character_for_a_path_placeholder_refuses_the_run_before_any_call(two_sources):
    world = World(two_sources)
    assert world.run(query={"id": "7\x00"}) == Err(
        ParameterErrors({"id": ["A value in the path may not contain a NUL character."]})
    )
    assert world.fetcher.requests == []


def test_a_placeholder_given_more_than_once_refuses_the_run_before_any_call(two_sources):
    world = World(two_sources)
    command = RunCommand("c", {"id": "2"}, repeated=frozenset({"id"}))
    assert world.use_case.execute(command) == Err(
        ParameterErrors({"id": ["Give this query parameter once."]})
    )
    assert world.fetcher.requests == []
    assert world.history.runs == []


def test_answers_are_shaped_and_merged_in_source_order(two_sources):
    world = World(two_sources)
    answer = world.run(query={"id": "7"}).unwrap()
    assert answer.status is RunStatus.COMPLETE
    assert [o.key for o in answer.outcomes] == ["a", "b"]
    assert answer.outcomes[0].body == {"k": "a"}
    assert answer.outcomes[1].body == {"key": "b"}
    assert [r.url for r in world.fetcher.requests] == ["http://h/a/7", "http://h/b"]


def test_the_token_goes_only_to_forward_auth_sources_and_the_request_id_to_all(two_sources):
    world = World(two_sources)
    world.run(query={"id": "7"}, caller=ALICE, request_id="rid")
    a, b = world.fetcher.requests
    assert without_trace(a.headers) == {"X-Request-ID": "rid", "X-Aggregation-Chain": "c"}
    assert without_trace(b.headers) == {
        "Authorization": "Bearer tok-alice",
        "X-Request-ID": "rid",
        "X-Aggregation-Chain": "c",
    }


def without_trace(headers):
    """A source call's headers but its trace context (which the tests below are about)."""
    return {name: value for name, value in headers.items() if name not in TRACE_HEADERS}


TRACE_HEADERS = {"traceparent", "tracestate"}


def traceparents(world):
    """(trace id, span id, flags) of every source call's `traceparent`, in call order."""
    found = []
    for request in world.fetcher.requests:
        version, trace_id, span_id, flags = request.headers["traceparent"].split("-")
        assert version == "00", request.headers
        found.append((trace_id, span_id, flags))
    return found


def test_each_source_call_continues_the_callers_trace_as_a_span_of_its_own(two_sources):
    world = World(two_sources)
    world.run(
        query={"id": "7"},
        traceparent=f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
        tracestate="vendor=client",
    )
    (a_trace, a_span, a_flags), (b_trace, b_span, b_flags) = traceparents(world)
    assert (a_trace, a_flags) == (b_trace, b_flags) == (CLIENT_TRACE, "01")
    assert a_span != b_span  # each call is a hop of its own
    assert {a_span, b_span} <= set(world.random.issued)
    assert [r.headers["tracestate"] for r in world.fetcher.requests] == ["vendor=client"] * 2


def test_a_callers_tracestate_past_the_w3c_limits_goes_to_no_source(two_sources):
    world = World(two_sources)
    incoming = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    world.run(query={"id": "7"}, traceparent=incoming, tracestate="v=" + "x" * 3998)
    assert [trace for trace, _, _ in traceparents(world)] == [CLIENT_TRACE] * 2
    assert all("tracestate" not in r.headers for r in world.fetcher.requests)


@pytest.mark.parametrize(
    "incoming",
    [None, "garbage", f"00-{'0' * 32}-{CLIENT_SPAN}-01", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01-x"],
    ids=["none", "garbage", "zero-trace", "trailing"],
)
def test_a_run_without_a_valid_traceparent_starts_one_new_trace_for_all_its_calls(
    two_sources, incoming
):
    world = World(two_sources)
    world.run(query={"id": "7"}, traceparent=incoming, tracestate="vendor=client")
    world.run(query={"id": "8"}, traceparent=incoming, tracestate="vendor=client")
    first_a, first_b, second_a, second_b = traceparents(world)
    assert first_a[0] == first_b[0] != second_a[0] == second_b[0]  # one new trace per run
    assert {first_a[0], second_a[0]} <= set(world.random.issued)
    assert len({first_a[1], first_b[1], second_a[1], second_b[1]}) == 4
    # not sampled: without OpenTelemetry nothing records the trace a run starts
    assert {call[2] for call in (first_a, first_b, second_a, second_b)} == {"00"}
    assert all("tracestate" not in r.headers for r in world.fetcher.requests)


def test_every_source_call_names_the_chain_of_composites_it_is_made_for():
    world = World(composite(Source(key="a", url="http://h/")))
    assert world.run_through("outer", "middle").is_ok()
    assert world.fetcher.requests[0].headers["X-Aggregation-Chain"] == "outer,middle,c"


@pytest.mark.parametrize(
    ("refused", "allowed"),
    [
        (("c",), ()),
        (("outer", "c", "inner"), ("outer", "inner")),
        (tuple(f"n{i}" for i in range(MAX_CHAIN)), tuple(f"n{i}" for i in range(MAX_CHAIN - 1))),
    ],
    ids=["itself", "further-up", "too-deep"],
)
def test_a_run_reached_again_through_its_own_sources_is_refused_before_any_call(refused, allowed):
    world = World(composite(Source(key="a", url="http://h/")))
    assert world.run_through(*refused) == Err(RunError.LOOP_DETECTED)
    assert world.fetcher.requests == []
    assert world.history.runs == []
    assert world.run_through(*allowed).is_ok()


def test_source_timeouts_are_capped_by_the_composite_deadline():
    world = World(
        composite(
            Source(key="a", url="http://h/", timeout_ms=9000),
            Source(key="b", url="http://h/", timeout_ms=100),
            timeout_ms=500,
        )
    )
    world.run()
    assert [r.timeout_ms for r in world.fetcher.requests] == [500, 100]


def test_failed_optional_source_makes_a_partial_run(two_sources):
    world = World(two_sources)
    world.fetcher.answers["b"] = FetchFailed(SourceFailure.HTTP_ERROR, "answered 500", 3.0, 500)
    answer = world.run(query={"id": "1"}).unwrap()
    assert answer.status is RunStatus.PARTIAL
    failed = answer.outcomes[1]
    assert (failed.failure, failed.http_status, failed.detail) == (
        SourceFailure.HTTP_ERROR,
        500,
        "answered 500",
    )


def test_failed_required_source_makes_a_failed_run_that_is_still_answered(two_sources):
    world = World(two_sources)
    world.fetcher.answers["a"] = FetchFailed(SourceFailure.TIMEOUT, "slow", 500.0)
    answer = world.run(query={"id": "1"}).unwrap()
    assert answer.status is RunStatus.FAILED
    assert answer.outcomes[1].ok


def test_every_run_is_recorded_with_its_sources(two_sources):
    world = World(two_sources)
    world.fetcher.advance_ms = 42
    world.fetcher.answers["b"] = FetchFailed(SourceFailure.TIMEOUT, "slow", 40.0)
    world.run(query={"id": "1"}, caller=ALICE)
    (run,) = world.history.runs
    assert (run.composite, run.status, run.took_ms, run.user_id) == (
        "c",
        RunStatus.PARTIAL,
        42.0,
        "alice",
    )
    assert run.started_at == world.clock.now()
    assert [(s.key, s.ok, s.code) for s in run.sources] == [
        ("a", True, None),
        ("b", False, "source_timeout"),
    ]
    assert world.metrics.runs == [("c", RunStatus.PARTIAL)]
    assert [o.key for _, o in world.metrics.sources] == ["a", "b"]


def test_each_run_is_recorded_under_the_next_id_of_the_id_generator(two_sources):
    world = World(two_sources)
    world.run(query={"id": "1"})
    world.run(query={"id": "2"})
    assert [run.id for run in world.history.runs] == world.ids.issued
    assert len(set(world.ids.issued)) == 2


def test_anonymous_runs_are_recorded_without_a_user(two_sources):
    world = World(two_sources)
    world.run(query={"id": "1"})
    assert world.history.runs[0].user_id is None


def test_successful_answers_are_cached_for_the_ttl_and_reused():
    world = World(composite(Source(key="a", url="http://h/a"), cache_ttl_seconds=30))
    world.fetcher.answers["a"] = Fetched(200, {"v": 1}, 5.0)
    first = world.run().unwrap()
    world.fetcher.answers["a"] = Fetched(200, {"v": 2}, 5.0)
    second = world.run().unwrap()
    assert first.outcomes[0].cached is False
    assert second.outcomes[0].cached is True
    assert second.outcomes[0].body == {"v": 1}
    assert len(world.fetcher.requests) == 1
    assert set(world.cache.ttls.values()) == {30}


def test_failures_are_not_cached():
    world = World(composite(Source(key="a", url="http://h/a"), cache_ttl_seconds=30))
    world.fetcher.answers["a"] = FetchFailed(SourceFailure.UNREACHABLE, "refused", 1.0)
    world.run()
    assert world.cache.values == {}


def test_nothing_is_cached_without_a_ttl():
    world = World(composite(Source(key="a", url="http://h/a")))
    world.run()
    world.run()
    assert world.cache.values == {}
    assert len(world.fetcher.requests) == 2


def test_forwarded_answers_are_cached_per_user():
    world = World(
        composite(Source(key="a", url="http://h/a", forward_auth=True), cache_ttl_seconds=30)
    )
    world.run(caller=ALICE)
    world.run(caller=Caller("bob", "tok-bob"))
    world.run(caller=ALICE)
    assert [r.headers["Authorization"] for r in world.fetcher.requests] == [
        "Bearer tok-alice",
        "Bearer tok-bob",
    ]


def test_a_fully_cached_run_calls_nothing():
    world = World(composite(Source(key="a", url="http://h/a"), cache_ttl_seconds=30))
    world.run()
    match world.run():
        case Ok(answer):
            assert answer.outcomes[0].cached
    assert len(world.fetcher.requests) == 1


class SlowCache(InMemorySourceCache):
    """A cache whose lookups take 50 ms of the run's time (on the world's monotonic clock)."""

    monotonic: FakeMonotonic

    def get_many(self, keys):
        self.monotonic.advance(0.05)
        return super().get_many(keys)


def test_timeouts_count_from_the_start_of_the_run():
    cache = SlowCache()
    world = World(
        composite(Source(key="a", url="http://h/", timeout_ms=300), cache_ttl_seconds=10),
        cache=cache,
    )
    cache.monotonic = world.monotonic
    world.run()
    assert world.fetcher.requests[0].timeout_ms == 250


def test_each_run_gives_its_calls_one_fresh_budget_of_the_run_bytes(two_sources):
    world = World(two_sources, max_run_bytes=1000)
    world.run(query={"id": "7"})
    world.run(query={"id": "8"})
    first, second = world.fetcher.budgets
    assert first is not second  # one run's spending is not the next one's
    assert first.limit == second.limit == 1000
