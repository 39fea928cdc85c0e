"""/metrics as the tests read it: prometheus_client's own text parser, and samples keyed by
their name and labels."""

from __future__ import annotations

from collections.abc import Collection

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
