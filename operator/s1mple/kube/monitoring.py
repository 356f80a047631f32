"""What the controller tells Prometheus (``/metrics``) and its log, one line per step of a resource.

Metrics (served by ``s1mple operator --metrics-port``, Prometheus text format):

- ``s1mple_reconciles_total{kind}`` / ``s1mple_reconcile_errors_total{kind}``: ticks, and ticks that raised;
- ``s1mple_runs_done_total{kind}`` / ``s1mple_runs_failed_total{kind}``: runs that got a result (any
  outcome) / that failed, counted as status counts grow within a generation (runs found already in
  storage when a generation is planned are not counted again);
- ``s1mple_resources{kind,phase}``: resources by phase, from the watch stream (so finished ones count);
- ``s1mple_aggregation_seconds{kind}``: how long aggregating a finished generation's results took.

The decisions are pure functions of status dicts (:func:`run_deltas`, :func:`phase_counts`), tested as
data; the handlers only feed them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from s1mple.kube.reconcile import Event, Outcome
from s1mple.kube.research import ResourceRef
from s1mple.kube.resources import KINDS

log = logging.getLogger("s1mple.operator")

RECONCILES = Counter("s1mple_reconciles", "Reconcile ticks, by kind", ["kind"])
RECONCILE_ERRORS = Counter("s1mple_reconcile_errors", "Reconcile ticks that raised an error", ["kind"])
RUNS_DONE = Counter("s1mple_runs_done", "Runs that got a result (succeeded or failed)", ["kind"])
RUNS_FAILED = Counter("s1mple_runs_failed", "Runs that failed (raised, timed out)", ["kind"])
AGGREGATION = Histogram(
    "s1mple_aggregation_seconds",
    "Time to aggregate a finished generation's results into status and the results table",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

for _kind in KINDS:  # every series exists from the start: a 0 is an answer, a missing series is not
    for _metric in (RECONCILES, RECONCILE_ERRORS, RUNS_DONE, RUNS_FAILED, AGGREGATION):
        _metric.labels(_kind)


def run_deltas(before: dict[str, Any], after: dict[str, Any] | None) -> tuple[int, int]:
    """(runs done, runs failed) that a status patch adds to ``before``, within one generation."""
    if not after or "counts" not in after:
        return 0, 0
    if before.get("observedGeneration") != after.get("observedGeneration"):
        return 0, 0  # a new plan: its counts start from what storage already holds
    old, new = before.get("counts") or {}, after.get("counts") or {}

    def done(counts: dict[str, Any]) -> int:
        return (counts.get("succeeded") or 0) + (counts.get("failed") or 0)

    return max(0, done(new) - done(old)), max(0, (new.get("failed") or 0) - (old.get("failed") or 0))


def phase_counts(phases: dict[str, tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Resources by (kind, phase), from ``uid -> (kind, phase)``."""
    return dict(Tally(phases.values()))


class _Phases(Collector):
    """``s1mple_resources{kind,phase}``, from the last phase the watch stream showed for each resource."""

    def __init__(self) -> None:
        self.by_uid: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "s1mple_resources", "Resources by kind and phase", labels=["kind", "phase"]
        )
        with self.lock:
            counts = phase_counts(self.by_uid)
        for (kind, phase), n in sorted(counts.items()):
            family.add_metric([kind, phase], n)
        yield family


PHASES = _Phases()
REGISTRY.register(PHASES)


def seen(kind: str, uid: str, status: dict[str, Any] | None, deleted: bool = False) -> None:
    """Record a resource's phase as the watch stream shows it (or forget it once deleted)."""
    with PHASES.lock:
        if deleted:
            PHASES.by_uid.pop(uid, None)
        else:
            PHASES.by_uid[uid] = (kind, (status or {}).get("phase") or "Pending")


@contextlib.contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Count a tick, and the error when it raises (kopf then retries with its back-off)."""
    RECONCILES.labels(kind).inc()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(kind).inc()
        raise


def observe(ref: ResourceRef, before: dict[str, Any], outcome: Outcome) -> None:
    """Count what one tick did, and log each of its steps."""
    done, failed = run_deltas(before, outcome.status)
    if done:
        RUNS_DONE.labels(ref.kind).inc(done)
    if failed:
        RUNS_FAILED.labels(ref.kind).inc(failed)
    if outcome.aggregation_seconds is not None:
        AGGREGATION.labels(ref.kind).observe(outcome.aggregation_seconds)
    for event in outcome.events:
        log_step(ref, event)


def log_step(ref: ResourceRef, event: Event) -> None:
    """One line per step (Planned, JobCreated, Queued, Completed, InvalidSpec, ...); in JSON logs the
    resource and the step are fields of their own."""
    level = logging.INFO if event.type == "Normal" else logging.WARNING
    log.log(
        level,
        "%s %s/%s generation %d: %s: %s",
        ref.kind,
        ref.namespace,
        ref.name,
        ref.generation,
        event.reason,
        event.message,
        extra={
            "k8s_ref": {"kind": ref.kind, "namespace": ref.namespace, "name": ref.name, "uid": ref.uid},
            "step": event.reason,
            "generation": ref.generation,
        },
    )


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` from a thread of the controller process."""
    start_http_server(port, addr=host)
