"""From a resource to the shared planner, store and aggregator (no Kubernetes calls of its own).

Storage layout under ``<spec.storage.uri>/<namespace>/<kind>/<name>/`` (the local layout of
``s1mple optimize --out``, plus the plan chunks the pods read, see :mod:`s1mple_engine.chunks`)::

    plans/<plan_id>/manifest.json    plan metadata and the pods' layout; written LAST, so its presence
                                     means the chunks exist (and it is never rewritten: a Job reads it)
    plans/<plan_id>/run_ids.json     every run_id of the plan, in plan order (progress counting)
    plans/<plan_id>/chunk-<j>.jsonl  the run specs without a result, 1,000 per chunk
    results/<plan_id>-i<i>-*.jsonl   RunRecords the pods write in atomic batches
    results.parquet, result.json     the aggregate of the latest finished generation

``plan_id`` is a content hash of the research spec and base operation: re-applying the same spec (even
after deleting and re-creating the resource) finds the same plan, and results are reused by run_id
whatever plan wrote them.  A new generation with a wider range plans again; its chunks hold only the runs
no earlier generation finished.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from s1mple.kube import credentials, heap, jobs
from s1mple.kube.resources import OptimizationSpec, VariantTestSpec
from s1mple.kube.sources import (
    OpenStore,
    ResourceRef,
    base_operation,
    make_plan,
    open_resource_store,
    parse_spec,
)
from s1mple.kube.state import ReconcileState
from s1mple.kube.status import TOP_RESULTS, RunSummary, ValidationSummary, bounded, validation_summary
from s1mple.meta import aggregation, windows
from s1mple.meta.planner import BasePlan
from s1mple.meta.service import FRAME_KEY, RESULT_KEY, Sweep
from s1mple_engine import chunks
from s1mple_engine.chunks import Layout
from s1mple_engine.config import Operation
from s1mple_engine.runs import RESULTS_PREFIX, PartLine, gc_paused, read_part_lines
from s1mple_engine.store import S3Store, Store, StoreError

__all__ = ["ResourceRef", "PlannedResource", "plan_resource", "aggregate", "delete_artefacts"]


@dataclass
class Progress:
    done: int
    succeeded: int
    failed: int


@dataclass
class PlannedResource:
    ref: ResourceRef
    spec: OptimizationSpec | VariantTestSpec
    plan: BasePlan
    store: Store
    run_ids: list[str]
    #: how the runs without a result are laid out for the pods (None: not read, for a followed plan)
    layout: Layout | None = None
    #: runs without a result when planned
    todo: int = 0
    #: where parts already read and the progress tally are kept between ticks
    state: ReconcileState = field(default_factory=ReconcileState, repr=False)

    @property
    def plan_id(self) -> str:
        return self.plan.plan_id

    @property
    def total(self) -> int:
        return len(self.run_ids)

    @property
    def already_done(self) -> int:
        return self.total - self.todo

    @property
    def primary_metric(self) -> str | None:
        targets = getattr(self.spec, "optimization_targets", None)
        return targets.primary_metric if targets is not None else None

    @property
    def manifest_uri(self) -> str:
        return self.store.url(chunks.manifest_key(self.plan_id))

    def job_plan(self, job_name: str) -> jobs.JobPlan:
        """The Job of this generation: the layout of its stored manifest (read now if not planned now,
        e.g. to re-create a Job deleted behind the controller's back)."""
        layout = self.layout or stored_layout(self.store, self.plan_id)
        pc = self.spec.parallel_config
        return jobs.JobPlan(
            name=job_name,
            namespace=self.ref.namespace,
            owner={"kind": self.ref.kind, "name": self.ref.name, "uid": self.ref.uid},
            generation=self.ref.generation,
            total_runs=max(1, layout.todo),
            runs_per_pod=layout.runs_per_pod,
            max_workers=pc.max_workers or 1,
            timeout_per_run=int(math.ceil(pc.timeout_per_run or 300)),
            retries=pc.retries,
            max_failed_indexes=pc.max_failed_indexes,
            store_uri=self.store.uri,
            plan_id=self.plan_id,
            storage=self.spec.storage,
            runner=self.spec.runner,
        )

    def stored_records(self) -> StoredRecords:
        """The counting record of every run in the resource's storage (the aggregator's rule,
        :func:`aggregation.supersedes`).  Parts are immutable once written, so each is read once per
        process: progress ticks and the final aggregation share one read.  Records stay JSON text
        (~1 KB a run instead of ~2.4 KB parsed) until the aggregator reads them, one at a time."""
        self._read_new_parts()
        cache = self._parts()
        latest: dict[str, tuple[str | None, str]] = {}
        for key in sorted(cache):
            for rid, status, line in cache[key]:
                old = latest.get(rid)
                if old is None or aggregation.supersedes(status, old[0]):
                    latest[rid] = (status, line)
        return StoredRecords({rid: line for rid, (_, line) in latest.items()})

    def _parts(self) -> dict[str, list[PartLine]]:
        return self.state.touch_store(self.ref.uid, self.store.uri)

    def _read_new_parts(self) -> list[PartLine]:
        cache = self._parts()
        new: list[PartLine] = []
        for key in self.store.list_keys(RESULTS_PREFIX):
            if key.endswith(".jsonl") and key not in cache:
                cache[key] = read_part_lines(self.store, key)
                new += cache[key]
        return new

    def progress(self) -> Progress:
        """Done/succeeded/failed of this plan's runs, tallied from the records of new parts only (a tick
        at 100,000 runs costs what arrived since the last one).  A run's counting record follows the
        aggregator's rule (:func:`aggregation.supersedes`), so progress and the final counts agree."""
        key, tallies = (self.store.uri, self.plan_id), self.state.tallies
        with self.state.lock:
            tally = tallies.get(key)
            if tally is None:  # first tick of this plan here: every part read so far counts once
                for other in [k for k in tallies if k[0] == self.store.uri]:
                    del tallies[other]  # an earlier generation's
                tally = tallies[key] = Tally(set(self.run_ids))
                for part in self._parts().values():
                    for rid, status, _ in part:
                        tally.add(rid, status)
        for rid, status, _ in self._read_new_parts():
            tally.add(rid, status)
        return Progress(done=len(tally.status), succeeded=tally.ok, failed=len(tally.status) - tally.ok)


class StoredRecords(Mapping[str, dict[str, Any]]):
    """run_id -> record, kept as JSON text and parsed on each access (the aggregator reads each twice)."""

    def __init__(self, lines: dict[str, str]):
        self._lines = lines

    def __getitem__(self, run_id: str) -> dict[str, Any]:
        return json.loads(self._lines[run_id])

    def __contains__(self, run_id: object) -> bool:  # without parsing
        return run_id in self._lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


@dataclass
class Tally:
    """The counting status of each run of a plan that has a record."""

    wanted: set[str]
    status: dict[str, str | None] = field(default_factory=dict)
    ok: int = 0

    def add(self, run_id: str, status: str | None) -> None:
        if run_id not in self.wanted:
            return
        old = self.status.get(run_id)
        if run_id in self.status and not aggregation.supersedes(status, old):
            return
        self.ok += (status == "ok") - (old == "ok")
        self.status[run_id] = status


def plan_resource(
    ref: ResourceRef,
    spec: dict[str, Any],
    cluster: Any,
    state: ReconcileState,
    *,
    replan: bool = True,
    open_store: OpenStore = open_resource_store,
) -> PlannedResource:
    """Validate, plan and store the plan (``replan``) or, for a generation already started, rebuild the
    same plan cheaply (once: then it is remembered in ``state``).

    Raises ConfigError for anything wrong with the spec (it names the field) and StoreError for storage
    trouble (not the spec's fault: the caller retries).
    """
    key = (ref.uid, ref.generation)
    if not replan:
        with state.lock:
            followed = state.followed.get(key)
        if followed is not None:
            return followed  # a generation's spec cannot change: plan once
    model = parse_spec(ref, spec)
    credentials.check_runner_image(model)
    op = base_operation(ref, model, cluster)
    plan = make_plan(model, op)
    store = open_store(ref, model, cluster)
    planned = PlannedResource(ref=ref, spec=model, plan=plan, store=store, run_ids=[], state=state)
    if not replan:
        planned.run_ids = _stored_run_ids(planned)
        with state.lock:
            state.followed[key] = planned
        return planned
    sweep = Sweep(plan, store=store, progress=False, warm=False, validator=True)
    sweep.prepare()  # probes the store, validates every distinct worker configuration
    check_market_data(op, store)  # before any Job: a missing object is named now, not by failing pods
    store_plan(planned)
    with state.lock:
        state.run_ids[(store.uri, plan.plan_id)] = planned.run_ids
    return planned


class MarketDataMissing(StoreError):
    """The market data the runs read is not in storage (yet): retried with back-off until uploaded."""

    reason = "MarketDataMissing"


def check_market_data(op: Operation, store: Store) -> None:
    """An ``s3://`` market-data object exists, read with the resource's client (same endpoint and
    credentials as its pods)."""
    uri = op.market_data.path
    if not uri.startswith("s3://") or not isinstance(store, S3Store):
        return
    bucket, _, key = uri[len("s3://") :].partition("/")
    try:
        found = bool(key) and S3Store(
            bucket, "", endpoint_url=store.endpoint_url, client=store.client
        ).exists(key)
    except StoreError as exc:
        if "NoSuchBucket" not in str(exc):
            raise
        found = False
    if not found:
        raise MarketDataMissing(
            f"marketData: {uri} does not exist at {store.endpoint_url or 'the AWS default endpoint'} "
            f"(bucket {bucket!r}, key {key!r}); upload it there or fix the URI"
        )


def stored_layout(store: Store, plan_id: str) -> Layout:
    """The layout in a stored manifest; a broken one is storage trouble, with the way out."""
    try:
        return chunks.read_layout(store, plan_id)
    except chunks.BadLayout as exc:
        raise StoreError(
            f"{exc}; delete {store.url(chunks.plan_dir(plan_id))}/ to have this plan written again"
        ) from None


def store_plan(planned: PlannedResource) -> PlannedResource:
    """One pass over the plan: run_ids, and the runs without a result streamed into chunks; then
    run_ids.json and the manifest (last).  A plan whose manifest exists keeps its stored layout: a Job
    made from it may be running (e.g. the controller restarted between writing it and making the Job)."""
    store, plan_id = planned.store, planned.plan_id
    done = planned.stored_records()  # read once: the progress ticks go on from these parts
    stored = stored_layout(store, plan_id) if store.exists(chunks.manifest_key(plan_id)) else None
    writer = None if stored is not None and stored.todo else chunks.ChunkWriter(store, plan_id)
    seen: set[str] = set()
    todo = 0
    with gc_paused():
        for payload in planned.plan.payloads():
            rid = payload["run_id"]
            if rid in seen:
                continue  # two choices that resolve to the same backtest run once
            seen.add(rid)
            planned.run_ids.append(rid)
            if rid not in done:
                todo += 1
                if writer is not None:
                    writer.add(payload)
    planned.todo = todo
    if writer is None:
        planned.layout = stored
        return planned
    writer.flush()
    pc = planned.spec.parallel_config
    planned.layout = chunks.Layout(todo, jobs.runs_per_pod_for(todo, pc.max_workers or 1, pc.runs_per_pod))
    store.put_json(f"{chunks.plan_dir(plan_id)}/run_ids.json", planned.run_ids)
    meta = planned.plan.manifest().model_dump(mode="json")
    meta["cluster"] = planned.layout.as_dict()
    store.put_json(chunks.manifest_key(plan_id), meta)
    return planned


def forget(planned: PlannedResource) -> None:
    """Drop what was kept for a generation that has finished."""
    ref = planned.ref
    planned.state.forget_generation(ref.uid, ref.generation, planned.store.uri, planned.plan_id)


def _stored_run_ids(planned: PlannedResource) -> list[str]:
    """The plan's run ids: read once from ``run_ids.json`` (e.g. after a restart), then from memory."""
    key, state = (planned.store.uri, planned.plan_id), planned.state
    with state.lock:
        known = state.run_ids.get(key)
    if known is None:
        known = list(planned.store.get_json(f"{chunks.plan_dir(planned.plan_id)}/run_ids.json"))
        with state.lock:
            state.run_ids[key] = known
    return known


@dataclass
class Aggregate:
    succeeded: int
    failed: int
    infeasible: int
    best: RunSummary | None
    best_text: str | None
    top: list[RunSummary]
    comparative_analysis: dict[str, str] | None
    table_uri: str
    summary_uri: str
    first_error: str | None = None
    report_uri: str | None = None
    validation: ValidationSummary | None = None


def aggregate(planned: PlannedResource) -> Aggregate:
    """The shared aggregator over every stored record of the plan; writes result.json + results.parquet,
    then report.html.  The generation's cached records are dropped (:func:`forget`) and the heap trimmed
    before the report is built, so its page, table and re-run curves do not stack on top of them."""
    sweep = Sweep(planned.plan, store=planned.store, progress=False, warm=False, validator=False)
    outcome = sweep.finish(planned.run_ids, planned.stored_records(), keep=TOP_RESULTS, report=False)
    forget(planned)
    heap.release()
    report_key = sweep.write_report()
    heap.release()
    result = outcome.result
    metric = planned.primary_metric
    succeeded = int(result.get("successful_runs", 0))
    failed = int(result.get("failed_runs", 0))
    infeasible = int(result.get("infeasible_runs", 0))  # succeeded, but outside the constraints
    if planned.ref.kind == "Optimization":
        top = [_summary(r) for r in (result.get("results") or [])[:TOP_RESULTS]]
        best_entry = result.get("best_configuration")
        best = _summary(best_entry) if best_entry else None
        value = (best_entry or {}).get("metrics", {}).get(metric) if best_entry else None
        best_text = f"{metric}={value:.4g}" if isinstance(value, int | float) else None
        comparative = None
    else:
        top = [_summary(r) for r in (result.get("results") or [])[:TOP_RESULTS]]
        comparative = {
            k: str(v) for k, v in (result.get("comparative_analysis") or {}).items() if v is not None
        }
        best_name = comparative.get("best_sharpe")
        best = next((t for t in top if t.name == best_name), None)
        best_text = best_name
    first_error = next((r.get("error") for r in result.get("results") or [] if r.get("error")), None)
    return Aggregate(
        first_error=first_error,
        succeeded=succeeded,
        failed=failed,
        infeasible=infeasible,
        best=best,
        best_text=best_text,
        top=top,
        comparative_analysis=comparative,
        table_uri=planned.store.url(FRAME_KEY),
        summary_uri=planned.store.url(RESULT_KEY),
        report_uri=planned.store.url(report_key) if report_key else None,
        validation=validation_summary(
            result.get("validation"), windows.best_out_of_sample(result.get("validation") or {})
        ),
    )


def _summary(entry: dict[str, Any]) -> RunSummary:
    return RunSummary(
        run_id=entry.get("run_id", ""),
        name=entry.get("variant_name") or entry.get("name"),
        feasible=bool(entry.get("feasible", True)),
        configuration=bounded(entry.get("configuration") or {}),
        metrics=bounded({k: v for k, v in (entry.get("metrics") or {}).items() if v is not None}),
    )


def delete_artefacts(
    ref: ResourceRef, spec: dict[str, Any], cluster: Any, open_store: OpenStore = open_resource_store
) -> None:
    """Remove everything under the resource's storage folder (only when spec.storage.cleanup is set)."""
    model = parse_spec(ref, spec)
    store = open_store(ref, model, cluster)
    for key in store.list_keys(""):
        store.delete(key)
