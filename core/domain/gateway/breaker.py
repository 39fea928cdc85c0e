"""The circuit breaker's state machine, as pure functions of (circuit, policy, now).

closed → open after `failure_threshold` consecutive failures → half-open once
`recovery_seconds` have passed, letting exactly one probe through → closed when the probe
succeeds, open again when it fails. A probe that never reports frees its slot after
`recovery_seconds`. The Redis adapter runs the same rules in Lua; tests hold both to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum

from core.domain.gateway.route import BreakerPolicy


class CircuitState(StrEnum):
    """Where a route's circuit is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge(self) -> int:
        """0 closed, 1 half-open, 2 open (the Prometheus gauge's value)."""
        return {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}[self]


class Admission(IntEnum):
    """What the breaker says about one call."""

    DENIED = 0
    ALLOWED = 1
    PROBE = 2


@dataclass(frozen=True, slots=True)
class Circuit:
    """A route's circuit: its state, consecutive failures and when it opened (epoch s)."""

    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probe_started_at: float = 0.0

    def retry_after(self, policy: BreakerPolicy, now: float) -> int:
        """Whole seconds until a probe may be let through, for `Retry-After` (at least 1)."""
        return max(1, self.seconds_until_probe(policy, now))

    def seconds_until_probe(self, policy: BreakerPolicy, now: float) -> int:
        """Whole seconds until a probe may be let through; 0 when the next call would probe
        (an open circuit turns half-open only when a call arrives)."""
        return max(0, math.ceil(self._probe_at(policy) - now))

    def state_at(self, policy: BreakerPolicy, now: float) -> CircuitState:
        """The state a call arriving at `now` finds. An open circuit is stored open until a
        call after its recovery time is let through as the probe; from that time on it is
        half-open in effect (the next call probes), and a reader is told so."""
        if self.state is CircuitState.OPEN and self.probe_due(policy, now):
            return CircuitState.HALF_OPEN
        return self.state

    def probe_due(self, policy: BreakerPolicy, now: float) -> bool:
        """Whether a call arriving at `now` on this (open or half-open) circuit is let through
        as the probe: its recovery time, or a lost probe's, is over."""
        return now >= self._probe_at(policy)

    def _probe_at(self, policy: BreakerPolicy) -> float:
        start = self.probe_started_at if self.state is CircuitState.HALF_OPEN else self.opened_at
        return start + policy.recovery_seconds


def admit(circuit: Circuit, policy: BreakerPolicy, now: float) -> tuple[Circuit, Admission]:
    """Whether a call may go upstream now, and the circuit after deciding."""
    if circuit.state is CircuitState.CLOSED:
        return circuit, Admission.ALLOWED
    if not circuit.probe_due(policy, now):
        return circuit, Admission.DENIED
    return replace(circuit, state=CircuitState.HALF_OPEN, probe_started_at=now), Admission.PROBE


def record(
    circuit: Circuit, policy: BreakerPolicy, now: float, *, success: bool, probe: bool
) -> Circuit:
    """The circuit after a call's outcome."""
    if success:
        if circuit.state is CircuitState.CLOSED or probe:
            return Circuit()
        return circuit  # a call admitted before the circuit opened says nothing new
    if circuit.state is CircuitState.HALF_OPEN:
        if not probe:
            return circuit
        return Circuit(CircuitState.OPEN, circuit.failures + 1, opened_at=now)
    if circuit.state is CircuitState.OPEN:
        return circuit
    failures = circuit.failures + 1
    if failures >= policy.failure_threshold:
        return Circuit(CircuitState.OPEN, failures, opened_at=now)
    return replace(circuit, failures=failures)
