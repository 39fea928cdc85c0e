"""The circuit breaker's state machine (closed → open → half-open → closed/open)."""

from core.domain.gateway.breaker import Admission, Circuit, CircuitState, admit, record
from core.domain.gateway.route import BreakerPolicy

POLICY = BreakerPolicy(failure_threshold=2, recovery_seconds=10)


def fail(circuit, now, probe=False):
    return record(circuit, POLICY, now, success=False, probe=probe)


def test_consecutive_failures_open_the_circuit():
    circuit = fail(Circuit(), 0)
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == 1
    circuit = fail(circuit, 1)
    assert circuit.state is CircuitState.OPEN
    assert circuit.opened_at == 1
    assert admit(circuit, POLICY, 5) == (circuit, Admission.DENIED)
    assert circuit.retry_after(POLICY, 5) == 6


def test_a_success_resets_the_failure_count():
    circuit = record(fail(Circuit(), 0), POLICY, 1, success=True, probe=False)
    assert circuit == Circuit()


def test_after_recovery_exactly_one_probe_passes():
    opened = fail(fail(Circuit(), 0), 0)
    half_open, admission = admit(opened, POLICY, 10)
    assert admission is Admission.PROBE
    assert half_open.state is CircuitState.HALF_OPEN
    assert admit(half_open, POLICY, 11)[1] is Admission.DENIED
    assert half_open.retry_after(POLICY, 11) == 9


def test_probe_success_closes_and_probe_failure_reopens():
    half_open, _ = admit(fail(fail(Circuit(), 0), 0), POLICY, 10)
    assert record(half_open, POLICY, 11, success=True, probe=True) == Circuit()
    reopened = fail(half_open, 11, probe=True)
    assert reopened.state is CircuitState.OPEN
    assert reopened.opened_at == 11


def test_a_lost_probe_frees_its_slot_after_recovery():
    half_open, _ = admit(fail(fail(Circuit(), 0), 0), POLICY, 10)
    assert admit(half_open, POLICY, 20)[1] is Admission.PROBE


def test_late_answers_of_calls_admitted_earlier_change_nothing():
    opened = fail(fail(Circuit(), 0), 0)
    assert fail(opened, 1) == opened
    assert record(opened, POLICY, 1, success=True, probe=False) == opened
    half_open, _ = admit(opened, POLICY, 10)
    assert fail(half_open, 11) == half_open
    assert record(half_open, POLICY, 11, success=True, probe=False) == half_open


def test_closed_circuit_admits_and_gauge_values_are_ordered():
    assert admit(Circuit(), POLICY, 0)[1] is Admission.ALLOWED
    assert [s.gauge for s in CircuitState] == [0, 2, 1]


def test_an_open_circuit_reads_half_open_once_its_recovery_time_is_over():
    """Stored open until a call arrives to probe, but from its recovery time on the next call
    is let through as the probe: that is the state a reader (the route status) is told."""
    opened = fail(fail(Circuit(), 0), 0)
    for now in (0, 5, 9.999, 10, 10.001, 60):
        admission = admit(opened, POLICY, now)[1]
        expected = CircuitState.HALF_OPEN if admission is Admission.PROBE else CircuitState.OPEN
        assert opened.state_at(POLICY, now) is expected, now
    assert opened.state_at(POLICY, 9.999) is CircuitState.OPEN
    assert opened.state_at(POLICY, 10) is CircuitState.HALF_OPEN
    half_open, _ = admit(opened, POLICY, 10)
    assert half_open.state_at(POLICY, 11) is CircuitState.HALF_OPEN  # its probe is out
    assert half_open.state_at(POLICY, 25) is CircuitState.HALF_OPEN  # lost: the next probes
    assert Circuit(failures=1).state_at(POLICY, 1e9) is CircuitState.CLOSED
