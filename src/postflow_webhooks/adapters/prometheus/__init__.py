"""Prometheus: the ``/metrics`` exposition, through prometheus-client and a registry of our own."""

from postflow_webhooks.adapters.prometheus.exposition import (
    LATENCY_BUCKETS,
    Family,
    PrometheusMetrics,
)

__all__ = ["LATENCY_BUCKETS", "Family", "PrometheusMetrics"]
