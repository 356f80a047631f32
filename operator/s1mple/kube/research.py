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
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from s1mple.kube import credentials, jobs
from s1mple.kube.names import resource_prefix
from s1mple.kube.resources import KINDS, OptimizationSpec, VariantTestSpec
from s1mple.kube.spec import OperationSource
from s1mple.kube.status import TOP_RESULTS, RunSummary, ValidationSummary, bounded, validation_summary
from s1mple.meta import aggregation, windows
from s1mple.meta.planner import BasePlan, OptimizationPlan, VariantPlan, with_market_data
from s1mple.meta.service import FRAME_KEY, RESULT_KEY, Sweep
from s1mple_engine import chunks
from s1mple_engine.chunks import Layout
from s1mple_engine.config import (
    ConfigError,
    Operation,
    load_operation,
    parse_model,
    resolve_operation,
)
from s1mple_engine.runs import RESULTS_PREFIX, PartLine, gc_paused, read_part_lines
from s1mple_engine.store import S3Store, Store, StoreError


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int


def config_root() -> Path:
    """Where paths inside the image resolve (the operator and runner images ship config/ under it)."""
    return Path(os.environ.get("S1MPLE_CONFIG_ROOT", os.getcwd()))


def confined(value: str, field: str, root: Path) -> Path:
    """A path a resource names, inside the image's config root: absolute paths and '..' are refused
    before the file system is asked anything, so nothing about files outside reaches status."""
    if value.startswith("file://"):
        value = value[len("file://") :]
    parts = Path(value).parts
    if not value.strip() or Path(value).is_absolute() or ".." in parts:
        raise ConfigError(
            f"{field}: {value!r} must be a relative path inside the runner image's config root "
            "(no leading '/', no '..'), e.g. config/operations/ma_crossover.yaml"
        )
    path = root / value
    if not path.is_file():
        raise ConfigError(
            f"{field}: {value!r} is not a file in the image (paths are relative to its config root)"
        )
    return path


def confine_operation(op: Operation, field: str, root: Path) -> None:
    """Blueprint links and the market-data path of a resource-supplied operation stay inside ``root``."""
    for i, link in enumerate(op.strategy_links):
        if isinstance(link.blueprint, str):
            confined(link.blueprint, f"{field}.strategyLinks.{i}.blueprint", root)
    data = op.market_data.path
    if not data.startswith(("sample:", "s3://")):
        confined(data, f"{field}.marketData.path", root)


def parse_spec(ref: ResourceRef, spec: dict[str, Any]) -> OptimizationSpec | VariantTestSpec:
    """The spec as the shared model; ``name`` defaults to the resource's name."""
    model = KINDS[ref.kind]["spec"]
    data = {"name": ref.name, **spec}
    source = f"{ref.kind} {ref.namespace}/{ref.name} spec"
    parsed = parse_model(data, model, source=source)
    search = getattr(parsed, "search", None)
    if search is not None and search.strategy.value == "bayesian":
        raise ConfigError(
            "search.strategy: bayesian asks for each batch after the previous one finished, which runs "
            "locally (s1mple optimize); on the cluster use grid or random",
            source,
        )
    return parsed


def base_operation(ref: ResourceRef, spec: OptimizationSpec | VariantTestSpec, cluster: Any) -> Operation:
    """The base operation from its source, with spec.marketData swapped in (like ``--data`` locally)."""
    root = config_root()
    source = spec.operation or OperationSource(path=spec.base_operation)
    where = f"{ref.kind} {ref.namespace}/{ref.name} spec.operation"
    if source.inline is not None:
        confine_operation(source.inline, "operation.inline", root)
        op = resolve_operation(source.inline, base_dir=root)
    elif source.config_map_ref is not None:
        cm = source.config_map_ref
        try:
            text = cluster.read_config_map_key(ref.namespace, cm.name, cm.key)
        except Exception as exc:
            raise ConfigError(
                f"configMapRef: cannot read ConfigMap {cm.name!r} key {cm.key!r}: {exc}", where
            ) from None
        # what the ConfigMap holds is never echoed (the resource's author may not be able to read it):
        # positions and counts only
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"configMapRef {cm.name}/{cm.key}: invalid YAML{at}", where) from None
        try:
            parsed = parse_model(data, Operation, root="operation", source=where)
        except ConfigError as exc:
            raise ConfigError(
                f"configMapRef {cm.name}/{cm.key}: not a valid operation ({len(exc.problems)} problem(s)); "
                "check it where you can read it with `s1mple plan`",
                where,
            ) from None
        confine_operation(parsed, f"configMapRef {cm.name}/{cm.key}: operation", root)
        op = resolve_operation(parsed, base_dir=root)
    else:
        field = "baseOperation" if spec.operation is None else "operation.path"
        op = load_operation(confined(str(source.path), field, root))
    if spec.market_data and not spec.market_data.startswith(("sample:", "s3://")):
        confined(spec.market_data, "marketData", root)
    return with_market_data(op, spec.market_data, "spec.marketData", base_dir=root)


def open_resource_store(ref: ResourceRef, spec: OptimizationSpec | VariantTestSpec, cluster: Any) -> Store:
    """The resource's folder in its storage, with the credentials of the Secret it names."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    storage = spec.storage
    bucket, _, prefix = storage.uri[len("s3://") :].partition("/")
    own_endpoint = os.environ.get("AWS_ENDPOINT_URL")
    endpoint = storage.endpoint or own_endpoint
    # without a Secret, the operator's own credentials go only to its own endpoint: elsewhere, unsigned
    foreign = storage.endpoint is not None and not (
        own_endpoint and credentials.same_endpoint(storage.endpoint, own_endpoint)
    )
    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": storage.region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "config": Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3},
            signature_version=UNSIGNED if foreign and storage.credentials_secret_ref is None else None,
        ),
    }
    ref_ = storage.credentials_secret_ref
    if ref_ is not None:
        try:
            secret = cluster.read_secret(ref.namespace, ref_.name)
        except Exception as exc:
            raise StoreError(
                f"storage.credentialsSecretRef: cannot read Secret {ref_.name!r}: {exc}"
            ) from None
        # opted in, and bound to this endpoint: checked before any request is signed with it
        key_id, secret_key = credentials.usable_credentials(secret, ref_.name, storage.endpoint)
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = key_id, secret_key
        kwargs["endpoint_url"] = storage.endpoint
    client = boto3.client("s3", **kwargs)
    full_prefix = "/".join(
        p for p in (prefix.strip("/"), resource_prefix(ref.namespace, ref.kind, ref.name)) if p
    )
    return S3Store(bucket, full_prefix, endpoint_url=kwargs["endpoint_url"], client=client)


def make_plan(spec: OptimizationSpec | VariantTestSpec, op: Operation) -> BasePlan:
    if isinstance(spec, OptimizationSpec):
        return OptimizationPlan(spec, op, source=None, max_combinations=spec.max_combinations)
    return VariantPlan(spec, op, source=None)


@dataclass
class Progress:
    done: int
    succeeded: int
    failed: int


#: Result parts per store URI as (run_id, status, JSON line) (see PlannedResource.stored_records); dropped
#: when a generation ends.
_PART_CACHE: dict[str, dict[str, list[PartLine]]] = {}


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
        e.g. to re-create a Job deleted behind the operator's back)."""
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
        cache = _PART_CACHE[self.store.uri]
        latest: dict[str, tuple[str | None, str]] = {}
        for key in sorted(cache):
            for rid, status, line in cache[key]:
                old = latest.get(rid)
                if old is None or aggregation.supersedes(status, old[0]):
                    latest[rid] = (status, line)
        return StoredRecords({rid: line for rid, (_, line) in latest.items()})

    def _read_new_parts(self) -> list[PartLine]:
        cache = _PART_CACHE.setdefault(self.store.uri, {})
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
        key = (self.store.uri, self.plan_id)
        tally = _TALLIES.get(key)
        if tally is None:  # first tick of this plan here: every part read so far counts once
            for other in [k for k in list(_TALLIES) if k[0] == self.store.uri]:  # other threads add keys
                del _TALLIES[other]  # an earlier generation's
            tally = _TALLIES[key] = Tally(set(self.run_ids))
            for part in _PART_CACHE.get(self.store.uri, {}).values():
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


#: Progress tallies per (store URI, plan id); dropped when a generation ends.
_TALLIES: dict[tuple[str, str], Tally] = {}


def plan_resource(
    ref: ResourceRef, spec: dict[str, Any], cluster: Any, *, replan: bool = True
) -> PlannedResource:
    """Validate, plan and store the plan (``replan``) or, for a generation already started, rebuild the
    same plan cheaply.

    Raises ConfigError for anything wrong with the spec (it names the field) and StoreError for storage
    trouble (not the spec's fault: the caller retries).
    """
    if not replan and (ref.uid, ref.generation) in _FOLLOWED:
        return _FOLLOWED[(ref.uid, ref.generation)]  # a generation's spec cannot change: plan once
    model = parse_spec(ref, spec)
    credentials.check_runner_image(model)
    op = base_operation(ref, model, cluster)
    plan = make_plan(model, op)
    store = open_resource_store(ref, model, cluster)
    if not replan:
        followed = PlannedResource(
            ref=ref, spec=model, plan=plan, store=store, run_ids=_stored_run_ids(store, plan)
        )
        _FOLLOWED[(ref.uid, ref.generation)] = followed
        return followed
    sweep = Sweep(plan, store=store, progress=False, warm=False, validator=True)
    sweep.prepare()  # probes the store, validates every distinct worker configuration
    check_market_data(op, store)  # before any Job: a missing object is named now, not by failing pods
    planned = store_plan(PlannedResource(ref=ref, spec=model, plan=plan, store=store, run_ids=[]))
    _RUN_IDS[(store.uri, plan.plan_id)] = planned.run_ids
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
    made from it may be running (e.g. the operator restarted between writing it and making the Job)."""
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


#: The plan a running generation follows, by (uid, generation); rebuilt from storage after a restart.
_FOLLOWED: dict[tuple[str, int], PlannedResource] = {}
#: run_ids per (store, plan): read once from ``run_ids.json`` (e.g. after a restart), then from memory.
_RUN_IDS: dict[tuple[str, str], list[str]] = {}


def forget(planned: PlannedResource) -> None:
    """Drop what the operator cached for a generation that has finished."""
    _FOLLOWED.pop((planned.ref.uid, planned.ref.generation), None)
    _RUN_IDS.pop((planned.store.uri, planned.plan_id), None)
    _PART_CACHE.pop(planned.store.uri, None)
    _TALLIES.pop((planned.store.uri, planned.plan_id), None)


def _stored_run_ids(store: Store, plan: BasePlan) -> list[str]:
    key = (store.uri, plan.plan_id)
    if key not in _RUN_IDS:
        _RUN_IDS[key] = list(store.get_json(f"{chunks.plan_dir(plan.plan_id)}/run_ids.json"))
    return _RUN_IDS[key]


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
    """The shared aggregator over every stored record of the plan; writes result.json + results.parquet."""
    sweep = Sweep(planned.plan, store=planned.store, progress=False, warm=False, validator=False)
    outcome = sweep.finish(planned.run_ids, planned.stored_records(), keep=TOP_RESULTS)
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
        report_uri=planned.store.url(outcome.keys["report"]) if "report" in outcome.keys else None,
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


def delete_artefacts(ref: ResourceRef, spec: dict[str, Any], cluster: Any) -> None:
    """Remove everything under the resource's storage folder (only when spec.storage.cleanup is set)."""
    model = parse_spec(ref, spec)
    store = open_resource_store(ref, model, cluster)
    for key in store.list_keys(""):
        store.delete(key)
