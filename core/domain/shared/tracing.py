"""W3C trace context (`traceparent`, `tracestate`) for a call the platform makes onward: a
gateway's upstream call and an aggregation source call. One rule for both contexts, so a
client's trace survives the same way through either."""

from __future__ import annotations

import re

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")
# W3C Trace Context's bounds on `tracestate`: at most 32 list members, and 512 characters is
# what every hop must pass on; past either a hop may drop it. Unbounded, a caller's state (4000
# characters were seen) went to every source and upstream.
MAX_TRACESTATE_LENGTH = 512
MAX_TRACESTATE_MEMBERS = 32


def trace_context(
    traceparent: str | None, tracestate: str | None, *, trace_id: str, span_id: str
) -> tuple[tuple[str, str], ...]:
    """W3C trace context for the next hop: a valid incoming trace continued as a new span with
    its flags and `tracestate`, or a new trace (whose vendors' state would not apply: none is
    sent) that is not sampled: `01` says the caller may have recorded it, and nothing does
    (with OpenTelemetry on, the adapters send their span's context and decision instead)."""
    if traceparent:
        found = _TRACEPARENT.match(traceparent.strip())  # lowercase hex only (W3C)
        if found and found.group(1) != "0" * 32 and found.group(2) != "0" * 16:
            continued = (("traceparent", f"00-{found.group(1)}-{span_id}-{found.group(3)}"),)
            if tracestate and _within_limits(tracestate):
                return (*continued, ("tracestate", tracestate))
            return continued
    return (("traceparent", f"00-{trace_id}-{span_id}-00"),)


def _within_limits(tracestate: str) -> bool:
    """Whether a `tracestate` is one a hop must pass on: at most 512 characters and 32 list
    members (empty members, which W3C allows, are not counted)."""
    if len(tracestate) > MAX_TRACESTATE_LENGTH:
        return False
    members = [member for member in tracestate.split(",") if member.strip(" \t")]
    return len(members) <= MAX_TRACESTATE_MEMBERS
