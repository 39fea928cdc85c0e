"""/metrics as the tests read it: prometheus_client's own text parser, and samples keyed by
their name and labels; and metric files written by processes of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metric_samples(client, *, only: Collection[str] | None = None) -> list[Sample]:
    """Every sample on /metrics, in the page's order; with `only`, those of the families
    (`platform_gateway_requests`: each of its samples) or samples (`..._total`) it names."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    return [
        sample
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if only is None or family.name in only or sample.name in only
    ]


def scrape(client, *, only: Collection[str] | None = None) -> Samples:
    """The samples of `metric_samples`: (sample name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for sample in metric_samples(client, only=only)
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of one sample (0 when it is not there yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# What a worker process records, in a process of its own: files named after its real pid.
_RECORD = """
import os, sys
from prometheus_client import Counter, Gauge, Histogram, Summary
amount = float(sys.argv[1])
Counter("jobs", "Jobs done.", ["queue"]).labels("a").inc(amount)
Histogram("job_seconds", "Job time.", buckets=(1.5, 2.5)).observe(amount)
Summary("job_size", "Job size.").observe(amount)
for mode in ("sum", "max", "min", "mostrecent", "all", "liveall"):
    Gauge(f"jobs_{mode}", "Jobs held.", multiprocess_mode=mode).set(amount)
print(os.getpid())
"""


def record_in_a_process(directory: Path, amount: float) -> int:
    """Run a process that records `amount` in a counter, a histogram, a summary and a gauge
    of each multiprocess mode (of the `live*` ones, `liveall`) under `directory`; its pid."""
    recorded = subprocess.run(
        [sys.executable, "-c", _RECORD, str(amount)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(recorded.stdout)


def collected(directory: Path) -> Samples:
    """Every sample the workers' files under `directory` add up to, as /metrics reads them."""
    from apps.common.metric_files import ArchivingMultiProcessCollector

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in ArchivingMultiProcessCollector(directory).collect()
        for sample in family.samples
    }
