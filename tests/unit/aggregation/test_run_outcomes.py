"""A run's status from its sources' outcomes, and what the history keeps."""

from core.domain.aggregation.caching import source_cache_key
from core.domain.aggregation.composite import Source
from core.domain.aggregation.runs import (
    RunAnswer,
    RunStatus,
    SourceFailure,
    SourceOutcome,
    SourceSummary,
    run_status,
    summarise,
)


def ok(key, required=True):
    return SourceOutcome(key=key, required=required, took_ms=1.0, body={})


def failed(key, required):
    return SourceOutcome(key=key, required=required, took_ms=1.0, failure=SourceFailure.TIMEOUT)


def test_all_answered_is_complete():
    assert run_status([ok("a"), ok("b", required=False)]) is RunStatus.COMPLETE


def test_only_optional_failures_is_partial():
    assert run_status([ok("a"), failed("b", required=False)]) is RunStatus.PARTIAL


def test_a_required_failure_is_failed():
    assert run_status([failed("a", required=True), failed("b", False)]) is RunStatus.FAILED


def test_partial_flag_is_set_unless_complete():
    assert RunAnswer("c", RunStatus.COMPLETE, 1.0, ()).partial is False
    assert RunAnswer("c", RunStatus.FAILED, 1.0, ()).partial is True


def test_summaries_keep_status_latency_cache_and_code():
    assert summarise(failed("b", False)) == SourceSummary("b", False, 1.0, False, "source_timeout")
    assert summarise(ok("a")) == SourceSummary("a", True, 1.0, False, None)


def test_cache_keys_separate_users_only_when_the_token_is_forwarded():
    shared = Source(key="s", url="http://h/")
    forwarded = Source(key="s", url="http://h/", forward_auth=True)
    assert source_cache_key("c", shared, "http://h/", "alice") == source_cache_key(
        "c", shared, "http://h/", "bob"
    )
    alice = source_cache_key("c", forwarded, "http://h/", "alice")
    assert alice != source_cache_key("c", forwarded, "http://h/", "bob")
    assert alice != source_cache_key("c", forwarded, "http://h/", None)
    assert source_cache_key("c", shared, "http://h/?q=1", None) != source_cache_key(
        "c", shared, "http://h/?q=2", None
    )
    assert alice.startswith("aggregation:source:c:s:")
