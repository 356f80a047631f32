"""The status of an Optimization / VariantTest, as a model (it also generates the CRD's status schema).

Status follows Kubernetes conventions and stays small
whatever the number of runs: it carries counts, the best configuration and a bounded top list; the full
table lives in storage and status only points at it.

Conditions: ``Succeeded`` (True/False/Unknown, as a Job's) plus the kstatus trio that generic tools read
(``kubectl wait --for=condition=Ready``, Argo CD, Flux, kpt): ``Ready`` when finished successfully,
``Reconciling`` while work is in progress, ``Stalled`` when nothing moves until the spec changes.  All
four come from one function of the phase, reason and message a reconcile step decides
(:func:`conditions_for`), so a new failure reason needs no edit here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from s1mple_engine.config import SpecModel

TOP_RESULTS = 10
#: A configuration or metrics map larger than this (as JSON) is cut down in status (full data in storage).
ENTRY_BYTES = 1024


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"  # the Job is suspended: waiting for admission (Kueue) or for someone to resume it
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = "Invalid"


class Condition(SpecModel):
    """One condition, in the Kubernetes convention (metav1.Condition)."""

    type: str = Field(description="Succeeded, Ready, Reconciling or Stalled")
    status: str = Field(pattern="^(True|False|Unknown)$", description="True, False or Unknown")
    reason: str = Field(description="one CamelCase word a program can match, e.g. InvalidSpec")
    message: str = Field(default="", description="what happened, for a person")
    last_transition_time: str = Field(description="when status last changed (RFC 3339)")
    observed_generation: int | None = Field(
        default=None, description="the metadata.generation this condition was set for"
    )


class RunCounts(SpecModel):
    """Runs by outcome."""

    total: int = Field(default=0, description="runs planned")
    succeeded: int = Field(default=0, description="runs with a result")
    failed: int = Field(default=0, description="runs that raised or timed out")
    running: int = Field(default=0, description="pods running now")
    infeasible: int = Field(default=0, description="succeeded runs that break spec.constraints")


class RunSummary(SpecModel):
    """One run as status shows it: what varied and what it scored."""

    run_id: str = Field(description="the run's content hash, its key in results.parquet")
    name: str | None = Field(default=None, description="variant name (VariantTest)")
    feasible: bool = Field(default=True, description="meets spec.constraints")
    configuration: dict[str, Any] = Field(default_factory=dict, description="the varied values, by plugin")
    metrics: dict[str, Any] = Field(default_factory=dict, description="what it scored")


class ValidationSummary(SpecModel):
    """How far the best configuration can be trusted (result.json's ``validation``; docs/meta.md)."""

    pbo: float | None = Field(default=None, description="probability of backtest overfitting (CSCV)")
    dsr: float | None = Field(default=None, description="deflated Sharpe ratio of the best run")
    oos_primary_metric: float | None = Field(
        default=None,
        description="the best configuration's primary metric out of sample (holdout), or the walk-forward "
        "test windows' mean",
    )
    overfit_risk: bool | None = Field(
        default=None, description="PBO above validation.maxPbo or DSR below minDsr"
    )
    verdict: str | None = Field(default=None, description="the verdict in one line of plain words")


class ResultLocations(SpecModel):
    """Where the full results are (s3:// URIs)."""

    manifest: str | None = Field(default=None, description="the plan: runs and their layout over pods")
    table: str | None = Field(default=None, description="results.parquet: one row per run")
    summary: str | None = Field(default=None, description="OptimizationResult / VariantComparisonResult JSON")
    report: str | None = Field(default=None, description="report.html: the Trade Explorer page")


class ResearchStatus(SpecModel):
    """Status of both kinds; ``comparativeAnalysis`` is filled for VariantTests only."""

    phase: Phase | None = Field(
        default=None, description="Pending, Queued, Running, Succeeded, Failed or Invalid"
    )
    observed_generation: int | None = Field(default=None, description="the generation this status is for")
    conditions: list[Condition] = Field(
        default_factory=list, description="Succeeded, Ready, Reconciling and Stalled"
    )
    start_time: str | None = Field(default=None, description="when this generation was planned")
    completion_time: str | None = Field(default=None, description="when it finished")
    job_name: str | None = Field(default=None, description="the Indexed Job running this generation")
    progress: str | None = Field(default=None, description="done/total runs")
    counts: RunCounts = Field(default_factory=RunCounts, description="runs by outcome")
    primary_metric: str | None = Field(default=None, description="the metric that ranks runs")
    best: str | None = Field(default=None, description="best primary metric value, or best variant name")
    best_configuration: RunSummary | None = None
    top_results: list[RunSummary] = Field(
        default_factory=list, max_length=TOP_RESULTS, description=f"the best {TOP_RESULTS} runs"
    )
    comparative_analysis: dict[str, str] | None = Field(
        default=None, description="VariantTest: the best variant per metric"
    )
    validation: ValidationSummary | None = Field(default=None, description="Optimization: PBO, DSR, verdict")
    results: ResultLocations = Field(
        default_factory=ResultLocations, description="where the full results are"
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: Phases in which the controller still has work to do (Reconciling=True); the others are final.
IN_PROGRESS = (None, Phase.PENDING, Phase.QUEUED, Phase.RUNNING)
#: Condition types, in the order status lists them.
CONDITION_TYPES = ("Succeeded", "Ready", "Reconciling", "Stalled")


def conditions_for(
    phase: Phase | None, reason: str, message: str, generation: int, previous: list[dict]
) -> list[Condition]:
    """Every condition, derived from what a reconcile step decided (phase, reason, message).

    In progress (no phase yet, Pending, Queued, Running): Succeeded=Unknown, Ready=False,
    Reconciling=True.  Succeeded: Succeeded=Ready=True.  Failed / Invalid: Succeeded=Ready=False and
    Stalled=True, since only a change of the spec starts it again.  Each carries the step's reason and
    message (a finished resource's Reconciling says ``Finished``), and keeps lastTransitionTime while its
    status value stays the same.  Messages are made one line (the Event keeps the full text)."""
    if phase in IN_PROGRESS:
        values = {"Succeeded": "Unknown", "Ready": "False", "Reconciling": "True", "Stalled": "False"}
    elif phase == Phase.SUCCEEDED:
        values = {"Succeeded": "True", "Ready": "True", "Reconciling": "False", "Stalled": "False"}
    else:
        values = {"Succeeded": "False", "Ready": "False", "Reconciling": "False", "Stalled": "True"}
    old = {c.get("type"): c for c in previous}
    # one line: `kubectl get -o wide` shows only a message's first line
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    out = []
    for kind in CONDITION_TYPES:
        status = values[kind]
        before = old.get(kind) or {}
        quiet = kind in ("Reconciling", "Stalled") and status == "False"  # says nothing new
        out.append(
            Condition(
                type=kind,
                status=status,
                reason="Finished" if quiet and kind == "Reconciling" else "AsExpected" if quiet else reason,
                message="" if quiet else message[:1024],
                last_transition_time=before.get("lastTransitionTime", now())
                if before.get("status") == status
                else now(),
                observed_generation=generation,
            )
        )
    return out


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """The condition ``kind`` of a status dict (empty when absent)."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def validation_summary(
    validation: dict[str, Any] | None, out_of_sample: float | None = None
) -> ValidationSummary | None:
    """Status's view of result.json's ``validation`` (None when the result has none); ``out_of_sample``:
    the best's primary metric out of sample (holdout) or the walk-forward test windows' mean."""
    if not validation:
        return None
    return ValidationSummary(
        oos_primary_metric=out_of_sample,
        pbo=(validation.get("pbo") or {}).get("pbo"),
        dsr=(validation.get("deflated_sharpe") or {}).get("dsr"),
        overfit_risk=validation.get("overfit_risk"),
        verdict=(validation.get("verdict") or "")[:1024] or None,
    )


def overfit_condition(summary: ValidationSummary, generation: int, previous: list[dict]) -> Condition:
    """``OverfitRisk``: True when PBO or DSR crosses its threshold (spec.validation), with the verdict."""
    status = "True" if summary.overfit_risk else "False"
    old = next((c for c in previous if c.get("type") == "OverfitRisk"), None)
    changed = old is None or old.get("status") != status
    return Condition(
        type="OverfitRisk",
        status=status,
        reason="OverfitRisk" if summary.overfit_risk else "NoOverfitSign",
        message=summary.verdict or "",
        last_transition_time=now() if changed or old is None else old.get("lastTransitionTime", now()),
        observed_generation=generation,
    )


def bounded(entry: dict[str, Any]) -> dict[str, Any]:
    """A map kept under ENTRY_BYTES of JSON: scalars kept first, larger values replaced by a marker."""
    if len(json.dumps(entry, default=str)) <= ENTRY_BYTES:
        return entry
    out: dict[str, Any] = {}
    for key, value in sorted(entry.items(), key=lambda kv: len(json.dumps(kv[1], default=str))):
        candidate = {**out, key: value}
        if len(json.dumps(candidate, default=str)) > ENTRY_BYTES - 40:
            out["_truncated"] = True
            break
        out = candidate
    return out


def status_patch(status: ResearchStatus) -> dict[str, Any]:
    """The whole status as a JSON merge patch body (camelCase).  Unset top-level fields are sent as null,
    which removes them (status is owned by the controller alone, so a new generation leaves nothing stale);
    nulls inside are left out, as the API server would drop them."""
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, field in ResearchStatus.model_fields.items():
        body.setdefault(field.alias or name, None)
    return body
