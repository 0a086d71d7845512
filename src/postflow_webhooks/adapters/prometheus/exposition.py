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

from collections.abc import Iterator, Sequence

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

# From 5 ms (a delivery applied on the next turn of the loop) to 10 minutes (deferred).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


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


class PrometheusMetrics:
    """The registry, the in-memory latency histogram and outcome counter, and ``render``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)
        self._latency = Histogram(
            "postflow_apply_latency_seconds",
            "Time from a delivery's 202 to its record committed, seconds (since start).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._applied = Counter(
            "postflow_deliveries_applied",
            "Deliveries the worker settled, by event type and outcome (since start).",
            ["event_type", "outcome"],
            registry=self.registry,
        )

    def applied(self, event_type: str, outcome: str, latency: float | None) -> None:
        """Count one settled delivery; observe its latency when it was applied."""
        self._applied.labels(event_type, outcome).inc()
        if latency is not None:
            self._latency.observe(max(latency, 0.0))

    def render(self, families: Sequence[Family]) -> tuple[bytes, str]:
        """The exposition text with ``families`` and the in-memory metrics."""
        self._snapshot.families = families
        try:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        finally:
            self._snapshot.families = ()
