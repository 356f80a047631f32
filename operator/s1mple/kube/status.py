"""The status of an Optimization / VariantTest, as a model (it also generates the CRD's status schema).

Status follows Kubernetes conventions (a ``Succeeded`` condition, ``observedGeneration``) and stays small
whatever the number of runs: it carries counts, the best configuration and a bounded top list; the full
table lives in storage and status only points at it.
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
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = "Invalid"


class Condition(SpecModel):
    type: str
    status: str = Field(pattern="^(True|False|Unknown)$")
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class RunCounts(SpecModel):
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    infeasible: int = 0


class RunSummary(SpecModel):
    """One run as status shows it: what varied and what it scored."""

    run_id: str
    name: str | None = Field(default=None, description="variant name (VariantTest)")
    feasible: bool = True
    configuration: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)


class ValidationSummary(SpecModel):
    """How far the best configuration can be trusted (result.json's ``validation``; docs/meta.md)."""

    pbo: float | None = Field(default=None, description="probability of backtest overfitting (CSCV)")
    dsr: float | None = Field(default=None, description="deflated Sharpe ratio of the best run")
    # holdout / walk-forward validation fills this with the best run's out-of-sample primary metric
    oos_primary_metric: float | None = Field(
        default=None, description="best run's out-of-sample primary metric"
    )
    overfit_risk: bool | None = Field(
        default=None, description="PBO above validation.maxPbo or DSR below minDsr"
    )
    verdict: str | None = None


class ResultLocations(SpecModel):
    manifest: str | None = None
    table: str | None = Field(default=None, description="results.parquet: one row per run")
    summary: str | None = Field(default=None, description="OptimizationResult / VariantComparisonResult JSON")


class ResearchStatus(SpecModel):
    """Status of both kinds; ``comparativeAnalysis`` is filled for VariantTests only."""

    phase: Phase | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    start_time: str | None = None
    completion_time: str | None = None
    job_name: str | None = None
    progress: str | None = Field(default=None, description="done/total runs")
    counts: RunCounts = Field(default_factory=RunCounts)
    primary_metric: str | None = None
    best: str | None = Field(default=None, description="best primary metric value, or best variant name")
    best_configuration: RunSummary | None = None
    top_results: list[RunSummary] = Field(default_factory=list, max_length=TOP_RESULTS)
    comparative_analysis: dict[str, str] | None = None
    validation: ValidationSummary | None = None
    results: ResultLocations = Field(default_factory=ResultLocations)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def succeeded_condition(
    status: str, reason: str, message: str, generation: int, previous: list[dict]
) -> Condition:
    """The ``Succeeded`` condition, keeping lastTransitionTime when the status value did not change."""
    old = next((c for c in previous if c.get("type") == "Succeeded"), None)
    changed = old is None or old.get("status") != status
    when = now() if changed else old.get("lastTransitionTime", now())
    return Condition(
        type="Succeeded",
        status=status,
        reason=reason,
        message=message[:1024],
        last_transition_time=when,
        observed_generation=generation,
    )


def validation_summary(validation: dict[str, Any] | None) -> ValidationSummary | None:
    """Status's view of result.json's ``validation`` (None when the result has none)."""
    if not validation:
        return None
    # holdout / walk-forward validation: set oos_primary_metric here from its block of the result
    return ValidationSummary(
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
        last_transition_time=now() if changed else old.get("lastTransitionTime", now()),
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
    which removes them (status is owned by the operator alone, so a new generation leaves nothing stale);
    nulls inside are left out, as the API server would drop them."""
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, field in ResearchStatus.model_fields.items():
        body.setdefault(field.alias or name, None)
    return body
