"""Running a composite: resolve its URLs, fan out, shape, merge, cache, record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.domain.aggregation.budget import RunBudget
from core.domain.aggregation.caching import source_cache_key
from core.domain.aggregation.composite import (
    MAX_CHAIN,
    AuthMode,
    Composite,
    Source,
    format_chain,
)
from core.domain.aggregation.runs import (
    RunAnswer,
    RunRecord,
    SourceOutcome,
    run_status,
    summarise,
)
from core.domain.aggregation.shaping import shape
from core.domain.aggregation.templates import ParameterErrors as FieldErrors
from core.domain.aggregation.templates import fill
from core.domain.shared.result import Err, Ok, Result
from core.domain.shared.tracing import trace_context
from core.usecases.aggregation.errors import ParameterErrors, RunError
from core.usecases.aggregation.ports import (
    CompositeRepository,
    Fetched,
    FetchResult,
    IdGenerator,
    RunMetrics,
    RunRecorder,
    SourceCache,
    SourceFetcher,
    SourceRequest,
)
from core.usecases.shared.ports import Clock, Monotonic, RandomHex


@dataclass(frozen=True, slots=True)
class Caller:
    """Who runs the composite: the token's user and the raw token (forwarded where allowed)."""

    user_id: str
    raw_token: str


# Every source call names the composites it is made for, outermost first, so a run reached
# again through its own sources (directly, or through other composites or the gateway, which
# pass the header on) is refused instead of calling itself until threads or limits run out.
CHAIN_HEADER = "X-Aggregation-Chain"


@dataclass(frozen=True, slots=True)
class RunCommand:
    name: str
    query: Mapping[str, str]
    caller: Caller | None = None
    request_id: str | None = None
    chain: tuple[str, ...] = ()  # the composites whose sources led to this run
    repeated: frozenset[str] = frozenset()  # query parameters given more than once
    traceparent: str | None = None  # the caller's W3C trace context, as sent
    tracestate: str | None = None


@dataclass(frozen=True, slots=True)
class _Planned:
    source: Source
    url: str
    cache_key: str


class RunComposite:
    """Call every source of a composite concurrently within its deadline and merge the answers.

    Optional sources that fail make a partial answer; a failed required source makes the run
    failed (the answer is still returned, for the 502 body). Every run is recorded.
    """

    def __init__(
        self,
        *,
        composites: CompositeRepository,
        fetcher: SourceFetcher,
        cache: SourceCache,
        recorder: RunRecorder,
        metrics: RunMetrics,
        clock: Clock,
        monotonic: Monotonic,
        ids: IdGenerator,
        random: RandomHex,
        max_run_bytes: int | None = None,
    ) -> None:
        self._composites = composites
        self._fetcher = fetcher
        self._cache = cache
        self._recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._ids = ids
        self._random = random
        self._max_run_bytes = max_run_bytes

    def execute(self, command: RunCommand) -> Result[RunAnswer, RunError | ParameterErrors]:
        started_at, started = self._clock.now(), self._monotonic()
        composite = self._composites.get(command.name)
        if composite is None:
            return Err(RunError.NOT_FOUND)
        if composite.auth is AuthMode.REQUIRED and command.caller is None:
            return Err(RunError.AUTHENTICATION_REQUIRED)
        if composite.name in command.chain or len(command.chain) >= MAX_CHAIN:
            return Err(RunError.LOOP_DETECTED)
        planned = self._plan(composite, command)
        if isinstance(planned, dict):
            return Err(ParameterErrors(planned))

        outcomes = self._cached_outcomes(composite, planned)
        missing = [plan for plan in planned if plan.source.key not in outcomes]
        if missing:
            # Every timeout counts from the start of the run, not of the calls.
            spent_ms = (self._monotonic() - started) * 1000
            trace_id = self._random.hex(16)  # the run's own trace, if the caller sent none
            # One budget for all the run's answers: past it, a source is TOO_LARGE however
            # small its own answer (answers from the cache passed it when they were fetched).
            results = self._fetcher.fetch_all(
                [self._request(composite, plan, spent_ms, command, trace_id) for plan in missing],
                RunBudget(self._max_run_bytes),
            )
            fresh: dict[str, object] = {}
            for plan in missing:
                outcome = self._outcome(plan.source, results[plan.source.key])
                outcomes[plan.source.key] = outcome
                if outcome.ok:
                    fresh[plan.cache_key] = outcome.body
            if fresh and composite.cache_ttl_seconds > 0:
                self._cache.set_many(fresh, composite.cache_ttl_seconds)
        ordered = tuple(outcomes[source.key] for source in composite.sources)
        took_ms = round((self._monotonic() - started) * 1000, 1)
        answer = RunAnswer(composite.name, run_status(ordered), took_ms, ordered)
        self._recorder.record(
            RunRecord(
                id=self._ids.new_id(),
                composite=composite.name,
                status=answer.status,
                took_ms=took_ms,
                user_id=command.caller.user_id if command.caller else None,
                started_at=started_at,
                sources=tuple(summarise(outcome) for outcome in ordered),
            )
        )
        self._metrics.run_finished(composite.name, answer.status)
        for outcome in ordered:
            self._metrics.source_finished(composite.name, outcome)
        return Ok(answer)

    def _plan(self, composite: Composite, command: RunCommand) -> list[_Planned] | FieldErrors:
        planned: list[_Planned] = []
        errors: FieldErrors = {}
        user_id = command.caller.user_id if command.caller else None
        for source in composite.sources:
            match fill(source.url, command.query, command.repeated):
                case Ok(url):
                    key = source_cache_key(composite.name, source, url, user_id)
                    planned.append(_Planned(source, url, key))
                case Err(problems):
                    for name, messages in problems.items():
                        errors.setdefault(name, messages)
        return errors or planned

    def _cached_outcomes(
        self, composite: Composite, planned: list[_Planned]
    ) -> dict[str, SourceOutcome]:
        if composite.cache_ttl_seconds <= 0:
            return {}
        found = self._cache.get_many([plan.cache_key for plan in planned])
        return {
            plan.source.key: SourceOutcome(
                key=plan.source.key,
                required=plan.source.required,
                took_ms=0.0,
                cached=True,
                body=found[plan.cache_key],
            )
            for plan in planned
            if plan.cache_key in found
        }

    def _request(
        self,
        composite: Composite,
        plan: _Planned,
        spent_ms: float,
        command: RunCommand,
        trace_id: str,
    ) -> SourceRequest:
        headers: dict[str, str] = {}
        if plan.source.forward_auth and command.caller is not None:
            headers["Authorization"] = f"Bearer {command.caller.raw_token}"
        if command.request_id:
            headers["X-Request-ID"] = command.request_id
        headers[CHAIN_HEADER] = format_chain((*command.chain, composite.name))
        # The gateway's rule: the caller's valid trace continued (with its `tracestate`), else
        # the run's new one; either way a span id of the call's own, since each call is a hop.
        span_id = self._random.hex(8)
        headers.update(
            trace_context(
                command.traceparent, command.tracestate, trace_id=trace_id, span_id=span_id
            )
        )
        return SourceRequest(
            key=plan.source.key,
            method=plan.source.method,
            url=plan.url,
            timeout_ms=max(1, int(min(plan.source.timeout_ms, composite.timeout_ms) - spent_ms)),
            headers=headers,
        )

    @staticmethod
    def _outcome(source: Source, result: FetchResult) -> SourceOutcome:
        if isinstance(result, Fetched):
            return SourceOutcome(
                key=source.key,
                required=source.required,
                took_ms=result.took_ms,
                body=shape(result.body, source.fields, source.rename),
                http_status=result.status,
            )
        return SourceOutcome(
            key=source.key,
            required=source.required,
            took_ms=result.took_ms,
            failure=result.failure,
            http_status=result.status,
            detail=result.detail,
        )
