"""The ``/metrics`` text, rendered by prometheus-client from a registry of our own.

Two kinds of figures end up in it. Most are read at scrape time from where
they already live (the database's counters, the worker, the tunnel, the
dispatchers), handed over as ``Family`` values, so nothing is counted twice
and the durable counters survive restarts. The apply latency histogram and
the per-outcome counter are kept here, in memory, from the worker's reports:
they start from zero with the process, which Prometheus' ``rate()`` handles.
The global registry of prometheus-client is never used.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Sequence

import attrs
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

# From 1 ms (a delivery applied on the next turn of the loop) to 10 minutes (deferred).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    600,
)


@attrs.frozen
class Family:
    """One metric read at scrape time: name (counters without ``_total``), help, samples."""

    name: str
    help: str
    kind: str  # "counter" or "gauge"
    labels: tuple[str, ...] = ()
    samples: tuple[tuple[tuple[str, ...], float], ...] = ()


class _Snapshot(Collector):
    """Yields the families handed to the last ``render``."""

    def __init__(self) -> None:
        self.families: Sequence[Family] = ()

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            metric: CounterMetricFamily | GaugeMetricFamily
            if family.kind == "counter":
                metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            for values, value in family.samples:
                metric.add_metric(list(values), value)
            yield metric


class _Applied(Collector):
    """Settled deliveries by type and outcome, and the apply latency histogram.

    Plain counts updated on the worker's path (one ``bisect`` per delivery, no
    lock: everything runs on the one event loop), turned into metric families
    only when Prometheus scrapes.
    """

    def __init__(self) -> None:
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "postflow_deliveries_applied",
            "Deliveries the worker settled, by event type and outcome (since start).",
            labels=("event_type", "outcome"),
        )
        for (event_type, outcome), count in sorted(self.outcomes.items()):
            counter.add_metric([event_type, outcome], count)
        yield counter
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        histogram = HistogramMetricFamily(
            "postflow_apply_latency_seconds",
            "Time from a delivery's 202 to its record committed, seconds (since start).",
        )
        histogram.add_metric([], buckets, self.total)
        yield histogram


class PrometheusMetrics:
    """The registry, the in-memory latency histogram and outcome counter, and ``render``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot = _Snapshot()
        self._applied = _Applied()
        self.registry.register(self._snapshot)
        self.registry.register(self._applied)

    def applied(self, event_type: str, outcome: str, latency: float | None) -> None:
        """Count one settled delivery; observe its latency when it was applied."""
        applied = self._applied
        applied.outcomes[event_type, outcome] += 1
        if latency is not None:
            latency = max(latency, 0.0)
            applied.buckets[bisect.bisect_left(LATENCY_BUCKETS, latency)] += 1
            applied.total += latency

    def render(self, families: Sequence[Family]) -> tuple[bytes, str]:
        """The exposition text with ``families`` and the in-memory metrics."""
        self._snapshot.families = families
        try:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        finally:
            self._snapshot.families = ()
