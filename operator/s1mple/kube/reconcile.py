"""Reconciling one Optimization / VariantTest: level-triggered, idempotent, restart-safe.

Every tick reads what is (the resource, its Job, the results in storage) and moves it one step on:

    new generation -> validate + plan -> write manifest -> create the Job  (phase Running, or Queued
                                                                           when Kueue admits the Job)
    Queued         -> wait while the Job is suspended                     (phase Queued)
    Running        -> count results in storage, read the Job              (status counts)
    Job finished   -> aggregate results -> results.parquet + result JSON  (phase Succeeded / Failed)

Nothing lives only in the s1mple controller's memory: the Job name is a function of the resource
generation, manifests and results are content-addressed in storage, and counts are recomputed from
storage each tick.  So a killed controller, restarted at any moment, repeats at most one idempotent step
and converges to the same status, with no duplicate Job and no result counted twice.  What it remembers
between ticks only saves work; it lives in one :class:`~s1mple.kube.state.ReconcileState` passed in with
the cluster and the way storage is opened (:class:`Context`), so the step is tested with a file store.

Errors go where they belong: a ConfigError is the spec's fault (phase Invalid, naming the field), a
StoreError or an API-server error waits on something outside the spec (a condition, retried with
back-off), anything else is a bug (logged with its traceback, a ReconcileError condition, back-off).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from s1mple.executors.apiserver import ApiError
from s1mple.kube import jobs, names
from s1mple.kube.research import Aggregate, PlannedResource, ResourceRef, aggregate, plan_resource
from s1mple.kube.sources import OpenStore, open_resource_store
from s1mple.kube.state import ReconcileState
from s1mple.kube.status import (
    Condition,
    Phase,
    ResearchStatus,
    conditions_for,
    now,
    overfit_condition,
    status_patch,
)
from s1mple_engine.config import ConfigError
from s1mple_engine.store import StoreError

log = logging.getLogger(__name__)


@dataclass
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What one tick decided: a status patch (None: unchanged) and the Events to post."""

    status: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    storage_trouble: bool = False
    aggregation_seconds: float | None = None  # how long aggregating the results took (for /metrics)


@dataclass(frozen=True)
class _NoJob:
    """Stands for the Job of a generation that needed none."""

    active: int = 0
    finished: bool = True
    suspended: bool = False
    failed_indexes: str = ""
    message: str = "no runs to schedule"


NO_JOB = _NoJob()


class Cluster(Protocol):
    def ensure_job(self, job: dict[str, Any]) -> bool: ...
    def read_job(self, namespace: str, name: str) -> Any: ...
    def retire_jobs(self, namespace: str, owner_uid: str, keep: str) -> list[str]: ...
    def read_config_map_key(self, namespace: str, name: str, key: str) -> str: ...
    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def pod_creation_failure(self, namespace: str, job_name: str) -> str | None: ...


@dataclass(frozen=True)
class Context:
    """What a reconcile step works with besides the resource: the cluster, what the controller remembers
    between ticks, and how a resource's storage is opened (a unit test passes a file store)."""

    cluster: Cluster
    state: ReconcileState = field(default_factory=ReconcileState)
    open_store: OpenStore = open_resource_store

    def plan(self, ref: ResourceRef, spec: dict[str, Any], *, replan: bool = True) -> PlannedResource:
        return plan_resource(
            ref, spec, self.cluster, self.state, replan=replan, open_store=self.open_store
        )


TERMINAL = (Phase.SUCCEEDED, Phase.FAILED, Phase.INVALID)
#: Seconds between progress patches of one resource (completion is still checked on every tick).
PROGRESS_EVERY = 2.0


def in_flight(status: dict[str, Any], generation: int) -> bool:
    """Whether a resource needs ticks: a generation not planned yet, or one whose Job is running.
    Finished resources get none (kopf stops their timer) until their spec changes again."""
    return status.get("observedGeneration") != generation or status.get("phase") not in TERMINAL


#: Seconds to wait before trying again after the 1st, 2nd, ... failure in a row (storage, credentials,
#: market data, pods that cannot be created, the API server, anything unforeseen).
STORAGE_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: Condition reasons that wait on something outside the spec: the first tick that gets past them clears
#: them (with a Recovered Event).
TRANSIENT = (
    "StorageUnavailable",
    "CredentialsNotUsable",
    "MarketDataMissing",
    "PodsNotCreated",
    "ApiServerUnavailable",
    "ReconcileError",
)
#: HTTP codes of an API server that refuses the Job itself: the spec's fault, not worth retrying.
JOB_REJECTED = (400, 422)


def reconcile(ref: ResourceRef, spec: dict[str, Any], status: dict[str, Any], ctx: Context) -> Outcome:
    """One step for one resource (called by the kopf timer)."""
    current = ResearchStatus.model_validate(status or {})
    if current.phase in TERMINAL and current.observed_generation == ref.generation:
        return Outcome()
    key = (ref.uid, ref.generation)
    with ctx.state.lock:
        failed = ctx.state.failures.get(key)
    if failed is not None and time.monotonic() < failed[1]:
        return Outcome()  # failed a moment ago: back off instead of planning again every tick
    try:
        if current.observed_generation != ref.generation or current.phase is None:
            outcome = _start_generation(ref, spec, current, ctx)
        else:
            outcome = _follow(ref, spec, current, ctx)
    except ConfigError as exc:  # the spec's fault, found late (e.g. its ConfigMap changed): say which field
        outcome = _invalid(ref, current, str(exc))
    except StoreError as exc:
        outcome = _retry_later(ref, current, ctx.state, _reason(exc), str(exc))
    except ApiError as exc:  # down, restarting, or refusing us: not the spec's fault
        outcome = _retry_later(ref, current, ctx.state, "ApiServerUnavailable", f"{exc}; retrying")
    except Exception as exc:  # a bug: its traceback in the log, a condition with back-off, never a loop
        log.error("%s %s/%s: %s", ref.kind, ref.namespace, ref.name, exc, exc_info=failed is None)
        message = f"{type(exc).__name__}: {exc}; retrying"
        outcome = _retry_later(ref, current, ctx.state, "ReconcileError", message)
    if not outcome.storage_trouble:
        with ctx.state.lock:
            ctx.state.failures.pop(key, None)
        _recovered(ref, current, outcome)
    return outcome


def _recovered(ref: ResourceRef, current: ResearchStatus, outcome: Outcome) -> None:
    """A transient condition that no longer holds is replaced at once (if this tick's patch does not
    already replace it) and an Event says so."""
    old = next((c for c in current.conditions if c.type == "Succeeded"), None)
    if old is None or old.reason not in TRANSIENT or old.observed_generation != ref.generation:
        return
    if outcome.status is None or "conditions" not in outcome.status:
        reason = "Queued" if current.phase == Phase.QUEUED else "Running"
        conditions = _conditions(current.phase, reason, f"Job {current.job_name}", ref, current)
        outcome.status = {**(outcome.status or {}), "conditions": [_dump(c) for c in conditions]}
    outcome.events.append(Event("Normal", "Recovered", f"{old.reason} no longer holds"))


def _start_generation(
    ref: ResourceRef, spec: dict[str, Any], current: ResearchStatus, ctx: Context
) -> Outcome:
    """Validate and plan a new generation, retire the Jobs of earlier ones, create this one's Job."""
    planned = ctx.plan(ref, spec)
    job_name = names.job_name(ref.kind, ref.name, ref.uid, ref.generation)
    events = []
    retired = ctx.cluster.retire_jobs(ref.namespace, ref.uid, keep=job_name)
    if retired:
        events.append(Event("Normal", "Superseded", f"generation {ref.generation} replaces Job(s) {retired}"))
    if not planned.todo:  # every run already has a result (e.g. a narrowed range): nothing to schedule
        started = current.model_copy(
            update={
                "observed_generation": ref.generation,
                "start_time": now(),
                "job_name": None,
                "results": current.results.model_copy(update={"manifest": planned.manifest_uri}),
            }
        )
        outcome = _finish(ref, started, planned, NO_JOB)
        outcome.events[:0] = events + [
            Event("Normal", "Planned", f"{planned.total} runs, all already in storage")
        ]
        return outcome
    plan = planned.job_plan(job_name)
    try:
        created = ctx.cluster.ensure_job(jobs.indexed_job(plan))
    except ApiError as exc:
        if exc.status not in JOB_REJECTED:
            raise
        return _invalid(ref, current, f"the API server rejected the Job: {exc}")
    events.append(
        Event(
            "Normal",
            "Planned",
            f"{planned.total} runs ({planned.already_done} already in storage) in "
            f"{plan.completions} pods of {plan.runs_per_pod} runs, {plan.max_workers} at once",
        )
    )
    # posted whenever this patch first records the Job, so a restart between creating the Job and
    # patching status does not lose it (Kubernetes folds a repeat into the same Event's count)
    note = "" if created else " (created earlier)"
    events.append(Event("Normal", "JobCreated", f"Job {job_name}{note}"))
    queue = plan.runner.queue_name
    phase, reason, message = (
        (Phase.QUEUED, "Queued", _queued_message(job_name, queue))
        if queue
        else (Phase.RUNNING, "Running", f"Job {job_name}: {planned.total} runs")
    )
    new = ResearchStatus(
        phase=phase,
        observed_generation=ref.generation,
        conditions=_conditions(phase, reason, message, ref, current),
        start_time=now(),
        job_name=job_name,
        progress=f"{planned.already_done}/{planned.total}",
        counts={"total": planned.total, "succeeded": planned.already_done},
        primary_metric=planned.primary_metric,
        results={"manifest": planned.manifest_uri},
    )
    return Outcome(status_patch(new), events)


def _follow(ref: ResourceRef, spec: dict[str, Any], current: ResearchStatus, ctx: Context) -> Outcome:
    """A started generation: re-create a missing Job, follow admission, count progress, finish."""
    cluster, state = ctx.cluster, ctx.state
    # the Job's name is a function of the generation (status says it too)
    job_name = current.job_name or names.job_name(ref.kind, ref.name, ref.uid, ref.generation)
    job = cluster.read_job(ref.namespace, job_name)
    if job is not None and job.suspended and current.phase == Phase.QUEUED:
        return Outcome()  # nothing runs while the Job waits for admission: no need to read storage
    planned = ctx.plan(ref, spec, replan=False)
    progress = planned.progress()
    if job is None:
        # deleted behind our back (or never created before a crash): make it again, runs already
        # in storage are skipped by the pods
        plan = planned.job_plan(job_name)
        cluster.ensure_job(jobs.indexed_job(plan))
        return Outcome(events=[Event("Warning", "JobRecreated", f"Job {job_name} was missing")])

    running = job.active
    if not job.finished and job.suspended != (current.phase == Phase.QUEUED):
        return Outcome(*_admission(ref, current, planned, job))
    if not job.finished and not running and progress.done < planned.total:
        failure = cluster.pod_creation_failure(ref.namespace, job_name)
        if failure:  # e.g. a runner.serviceAccountName that does not exist: say so within seconds
            message = f"Job {job_name} cannot create pods: {failure}"
            return _retry_later(ref, current, state, "PodsNotCreated", message)
    if not job.finished and progress.done < planned.total:
        key, clock = (ref.uid, ref.generation), time.monotonic()
        with state.lock:
            if clock - state.progress_patched.get(key, -PROGRESS_EVERY) < PROGRESS_EVERY:
                return Outcome()
            state.progress_patched[key] = clock
        updated = current.model_copy(
            update={
                "progress": f"{progress.done}/{planned.total}",
                "counts": current.counts.model_copy(
                    update={"succeeded": progress.succeeded, "failed": progress.failed, "running": running}
                ),
            }
        )
        return Outcome(_changed(current, updated))
    return _finish(ref, current, planned, job)


def _finish(ref: ResourceRef, current: ResearchStatus, planned: PlannedResource, job: Any) -> Outcome:
    started = time.monotonic()
    result: Aggregate = aggregate(planned)  # a StoreError: retried by reconcile(); forgets the plan's state
    took = time.monotonic() - started
    missing = planned.total - result.succeeded - result.failed
    if missing == 0 and result.succeeded == 0 and planned.total > 0:
        phase, reason = Phase.FAILED, "NoSuccessfulRuns"
        message = f"all {planned.total} runs failed; first error: {result.first_error}"
        event = Event("Warning", reason, message)
    elif missing == 0:
        phase, reason = Phase.SUCCEEDED, "Completed"
        message = f"{result.succeeded} runs succeeded, {result.failed} failed"
        event = Event(
            "Normal", "Completed", message + (f"; best {result.best_text}" if result.best_text else "")
        )
    else:
        phase, reason = Phase.FAILED, "RunsMissing"
        detail = f"; failed Job indexes {job.failed_indexes}" if job.failed_indexes else ""
        message = (
            f"{missing} of {planned.total} runs have no result{detail} ({job.message or 'Job finished'})"
        )
        event = Event("Warning", "RunsMissing", message)
    events: list[Event] = []
    conditions = _conditions(phase, reason, message, ref, current)
    if result.validation is not None and result.validation.overfit_risk is not None:
        previous = [c.model_dump(by_alias=True) for c in current.conditions]
        conditions.append(overfit_condition(result.validation, ref.generation, previous))
        if result.validation.overfit_risk:
            events.append(Event("Warning", "OverfitRisk", (result.validation.verdict or "")[:1024]))
    final = current.model_copy(
        update={
            "phase": phase,
            "conditions": conditions,
            "completion_time": now(),
            "progress": f"{result.succeeded + result.failed}/{planned.total}",
            "counts": current.counts.model_copy(
                update={
                    "total": planned.total,
                    "succeeded": result.succeeded,
                    "failed": result.failed,
                    "infeasible": result.infeasible,
                    "running": 0,
                }
            ),
            "best": result.best_text,
            "best_configuration": result.best,
            "top_results": result.top,
            "comparative_analysis": result.comparative_analysis,
            "validation": result.validation,
            "results": current.results.model_copy(
                update={"table": result.table_uri, "summary": result.summary_uri, "report": result.report_uri}
            ),
        }
    )
    return Outcome(status_patch(final), [event, *events], aggregation_seconds=took)


def _invalid(ref: ResourceRef, current: ResearchStatus, message: str) -> Outcome:
    new = ResearchStatus(
        phase=Phase.INVALID,
        observed_generation=ref.generation,
        conditions=_conditions(Phase.INVALID, "InvalidSpec", message, ref, current),
        completion_time=now(),
    )
    return Outcome(status_patch(new), [Event("Warning", "InvalidSpec", message[:1024])])


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", "StorageUnavailable")


def _retry_later(
    ref: ResourceRef, current: ResearchStatus, state: ReconcileState, reason: str, message: str
) -> Outcome:
    """Trouble that is not the spec's fault (storage, credentials not opted in, market data not uploaded,
    pods the Job cannot create, the API server, a bug): keep status, say why, try again after a back-off."""
    key = (ref.uid, ref.generation)
    with state.lock:
        failures = state.failures.get(key, (0, 0.0))[0] + 1
        delay = STORAGE_BACKOFF[min(failures, len(STORAGE_BACKOFF)) - 1]
        state.failures[key] = (failures, time.monotonic() + delay)
    conditions = _conditions(current.phase, reason, message, ref, current)
    if current.conditions and (current.conditions[0].reason, current.conditions[0].message) == (
        reason,
        conditions[0].message,
    ):
        return Outcome(storage_trouble=True)
    return Outcome(
        {"conditions": [_dump(c) for c in conditions]},
        [Event("Warning", reason, message[:1024])],
        storage_trouble=True,
    )


def _dump(condition: Condition) -> dict[str, Any]:
    return condition.model_dump(mode="json", by_alias=True, exclude_none=True)


def _admission(
    ref: ResourceRef, current: ResearchStatus, planned: PlannedResource, job: Any
) -> tuple[dict[str, Any], list[Event]]:
    """The Job was suspended (queued, or preempted by Kueue) or resumed (admitted): say so."""
    if job.suspended:
        queue = planned.spec.runner.queue_name
        phase, reason, message = Phase.QUEUED, "Queued", _queued_message(job.name, queue)
        event = Event("Normal", "Queued", message)
    else:
        phase, reason, message = Phase.RUNNING, "Running", f"Job {job.name}: {planned.total} runs"
        event = Event("Normal", "Admitted", f"Job {job.name} resumed: {planned.total} runs")
    updated = current.model_copy(
        update={"phase": phase, "conditions": _conditions(phase, reason, message, ref, current)}
    )
    return status_patch(updated), [event]


def _queued_message(job_name: str, queue: str | None) -> str:
    where = f"Kueue LocalQueue {queue!r}" if queue else "its spec.suspend to be set to false"
    return f"Job {job_name} is suspended, waiting for {where}"


def _conditions(
    phase: Phase | None, reason: str, message: str, ref: ResourceRef, current: ResearchStatus
) -> list[Condition]:
    previous = [c.model_dump(by_alias=True) for c in current.conditions]
    return conditions_for(phase, reason, message, ref.generation, previous)


def _changed(current: ResearchStatus, updated: ResearchStatus) -> dict[str, Any] | None:
    before, after = status_patch(current), status_patch(updated)
    return None if before == after else after
