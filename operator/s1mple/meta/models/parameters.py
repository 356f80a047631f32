"""What a sweep varies: value ranges, blueprint overrides, parameter space, worker selection,
planning, operator and worker variants."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import Field, field_validator, model_validator

from s1mple_engine.config import (
    EXECUTION_PHASES,
    OPERATOR_IDS,
    PLANNING_PHASES,
    AggregationStrategy,
    ExecutionStrategy,
    OperatorConfig,
    SpecModel,
    WorkerConfig,
    suggest,
)

from .common import MAX_RANGE_VALUES, PHASED_CATEGORIES, Scalar, WorkerCategory

# --------------------------------------------------------------------------------------------------------


class ParamRange(SpecModel):
    """Values of one swept parameter: ``start``/``end``/``step`` (inclusive, float-safe) or ``values``."""

    start: int | float | None = Field(default=None, description="first value of a range")
    end: int | float | None = Field(default=None, description="last value of a range (inclusive)")
    step: int | float | None = Field(default=None, description="distance between range values")
    values: list[Scalar] | None = Field(default=None, description="explicit values (instead of a range)")

    @model_validator(mode="after")
    def _one_form(self) -> ParamRange:
        has_range = self.start is not None or self.end is not None or self.step is not None
        if self.values is not None:
            if has_range:
                raise ValueError("give either start/end/step or values, not both")
            if not self.values:
                raise ValueError("values: give at least one value")
            return self
        if self.start is None or self.end is None:
            raise ValueError("a range needs start and end (and optionally step, default 1), or values: [...]")
        step = 1 if self.step is None else self.step
        for name, v in (("start", self.start), ("end", self.end), ("step", step)):
            if isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{name}: must be a finite number")
        if step <= 0:
            raise ValueError(f"step: must be > 0 (got {step})")
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is below start ({self.start})")
        n = _range_count(self.start, self.end, step)
        if n > MAX_RANGE_VALUES:
            raise ValueError(
                f"range {self.start}..{self.end} step {step} has {n} values (max {MAX_RANGE_VALUES})"
            )
        return self

    def expand(self) -> list[Any]:
        """The values, in order.  Ranges are computed in decimal, so 0.5..2.0 step 0.25 is exactly 7
        values (0.5, 0.75, ..., 2.0), each the float nearest the decimal one.  All-int bounds give ints."""
        if self.values is not None:
            return list(self.values)
        assert self.start is not None and self.end is not None  # checked by the validator above
        step = 1 if self.step is None else self.step
        n = _range_count(self.start, self.end, step)
        start, dstep = _dec(self.start), _dec(step)
        if all(isinstance(v, int) for v in (self.start, self.end, step)):
            return [int(start + k * dstep) for k in range(n)]
        return [float(start + k * dstep) for k in range(n)]

    def size(self) -> int:
        if self.values is not None:
            return len(self.values)
        assert self.start is not None and self.end is not None  # checked by the validator above
        return _range_count(self.start, self.end, 1 if self.step is None else self.step)

    def is_ordinal(self) -> bool:
        """True when the values are numbers in increasing order (a range, or a sorted numeric list)."""
        if self.values is None:
            return True
        nums = [v for v in self.values if isinstance(v, int | float) and not isinstance(v, bool)]
        return len(nums) == len(self.values) and nums == sorted(nums)

    def describe(self) -> str:
        if self.values is not None:
            return f"values {self.values}" if len(self.values) <= 8 else f"{len(self.values)} values"
        step = 1 if self.step is None else self.step
        return f"{self.start}..{self.end} step {step}"


def _dec(v: int | float) -> Decimal:
    try:
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    except InvalidOperation:  # pragma: no cover - finite numbers only
        raise ValueError(f"not a number: {v!r}") from None


def _range_count(start: int | float, end: int | float, step: int | float) -> int:
    return int((_dec(end) - _dec(start)) // _dec(step)) + 1


def is_range_mapping(value: Any) -> bool:
    """True for a plugin-param value that is a range: a mapping of start/end[/step] or of values only."""
    if not isinstance(value, dict) or not value:
        return False
    keys = set(value)
    return keys == {"values"} or ({"start", "end"} <= keys <= {"start", "end", "step"})


# --------------------------------------------------------------------------------------------------------
# Blueprint overrides (variant tests, worker_variants)
# --------------------------------------------------------------------------------------------------------


class PlanningOverrides(SpecModel):
    """Per planning phase: a given list replaces that phase's workers; an absent phase keeps the base's."""

    entry_planning: list[WorkerConfig] | None = Field(default=None, description="replaces entryPlanning")
    exit_planning: list[WorkerConfig] | None = Field(default=None, description="replaces exitPlanning")
    size_planning: list[WorkerConfig] | None = Field(default=None, description="replaces sizePlanning")
    order_routing: list[WorkerConfig] | None = Field(default=None, description="replaces orderRouting")


class ExecutionOverrides(SpecModel):
    """Per execution phase: a given list replaces that phase's workers; an absent phase keeps the base's."""

    position_management: list[WorkerConfig] | None = Field(
        default=None, description="replaces positionManagement"
    )
    risk_safety: list[WorkerConfig] | None = Field(default=None, description="replaces riskSafety")
    operational: list[WorkerConfig] | None = Field(default=None, description="replaces operational")


class BlueprintOverrides(SpecModel):
    """A partial blueprint, deep-merged onto the base blueprint (rules in :mod:`s1mple.meta.merge`)."""

    context_workers: list[WorkerConfig] | None = Field(default=None, description="replaces contextWorkers")
    opportunity_workers: list[WorkerConfig] | None = Field(
        default=None, description="replaces opportunityWorkers"
    )
    threat_workers: list[WorkerConfig] | None = Field(default=None, description="replaces threatWorkers")
    planning_workers: PlanningOverrides | None = Field(
        default=None, description="replaces the named planning phases"
    )
    execution_workers: ExecutionOverrides | None = Field(
        default=None, description="replaces the named execution phases"
    )
    operator_overrides: dict[str, OperatorConfig] | None = Field(
        default=None, description="replaces operator strategies, by operator id"
    )

    @field_validator("operator_overrides")
    @classmethod
    def _known_operators(cls, value: dict[str, OperatorConfig] | None) -> dict[str, OperatorConfig] | None:
        for op in value or {}:
            if op not in OPERATOR_IDS:
                raise ValueError(f"unknown operator {op!r}{suggest(op, OPERATOR_IDS)}")
        return value


# --------------------------------------------------------------------------------------------------------
# Optimization
# --------------------------------------------------------------------------------------------------------


def _check_phase(category: str, phase: str | None, where: str) -> None:
    phases = PHASED_CATEGORIES.get(category)
    if phases is None:
        if phase is not None:
            raise ValueError(f"{where}: worker_phase is only for planning_workers/execution_workers")
        return
    if phase is None:
        raise ValueError(f"{where}: {category} needs worker_phase (one of {', '.join(phases)})")
    if phase not in phases:
        raise ValueError(f"{where}: unknown worker_phase {phase!r}{suggest(phase, phases)}")


class ParameterSpaceEntry(SpecModel):
    """Sweep params of one worker of the base blueprint (found by category[, phase], plugin[, subtype])."""

    worker_category: WorkerCategory = Field(
        description="the blueprint's worker list, e.g. opportunity_workers"
    )
    worker_phase: str | None = Field(default=None, description="the phase, for planning/execution workers")
    worker_plugin: str = Field(min_length=1, max_length=100, description="the plugin whose params vary")
    subtype: str | None = Field(default=None, description="the worker's subtype, when several share a plugin")
    parameters: dict[str, ParamRange] = Field(min_length=1, description="the values of each parameter")

    @model_validator(mode="after")
    def _phase(self) -> ParameterSpaceEntry:
        _check_phase(self.worker_category, self.worker_phase, "worker_phase")
        return self


class SubtypeVariant(SpecModel):
    """One choice of a worker_selection: the category's workers become these plugins (of this subtype)."""

    subtype: str = Field(min_length=1, max_length=100, description="the worker subtype")
    plugins: list[str] = Field(min_length=1, description="the plugins to try in it")
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="params per plugin name; default: the base blueprint's, else none"
    )


class WorkerSelection(SpecModel):
    worker_category: WorkerCategory = Field(description="the blueprint's worker list")
    worker_phase: str | None = Field(default=None, description="the phase, for planning/execution workers")
    subtype_variants: list[SubtypeVariant] = Field(min_length=1, description="the choices, per subtype")

    @model_validator(mode="after")
    def _phase(self) -> WorkerSelection:
        _check_phase(self.worker_category, self.worker_phase, "worker_phase")
        return self


class PhaseVariantOption(SpecModel):
    """One worker a phase may be set to; a param given as a range mapping ({start,end,step} / {values})
    multiplies the options."""

    plugin: str = Field(min_length=1, max_length=100, description="the registered plugin name")
    subtype: str | None = Field(default=None, description="the worker subtype")
    params: dict[str, Any] = Field(default_factory=dict, description="the plugin's parameters")
    triggers: list[str] | None = Field(default=None, description="events that run this worker")


class PlanningVariantDimension(SpecModel):
    """The workers of one phase become exactly one of ``variants`` (planning or execution phase)."""

    phase: str = Field(description="the planning phase, e.g. exit_planning")
    variants: list[PhaseVariantOption] = Field(min_length=1, description="the workers to try in it")

    @field_validator("phase")
    @classmethod
    def _known_phase(cls, value: str) -> str:
        phases = PLANNING_PHASES + EXECUTION_PHASES
        if value not in phases:
            raise ValueError(f"unknown phase {value!r}{suggest(value, phases)}")
        return value


class _StrategyChoice(SpecModel):
    """``{values: [...]}``; a bare value or list is accepted too (``execution_strategy: PARALLEL``)."""

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"values": [value]}
        return {"values": value} if isinstance(value, list) else value


class ExecutionStrategyChoice(_StrategyChoice):
    values: list[ExecutionStrategy] = Field(min_length=1, description="the execution strategies to try")


class AggregationStrategyChoice(_StrategyChoice):
    values: list[AggregationStrategy] = Field(min_length=1, description="the aggregation strategies to try")


class OperatorVariant(SpecModel):
    """Vary how one operator runs its workers; aggregation follows execution (SEQUENTIAL → CHAIN_THROUGH,
    PARALLEL → COLLECT_ALL, EVENT_DRIVEN → NONE) unless ``aggregation_strategy`` is given."""

    operator_id: str = Field(description="the operator whose strategy varies")
    execution_strategy: ExecutionStrategyChoice = Field(description="the execution strategies to try")
    aggregation_strategy: AggregationStrategyChoice | None = Field(
        default=None, description="the aggregation strategies to try"
    )

    @field_validator("operator_id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OPERATOR_IDS:
            raise ValueError(f"unknown operator {value!r}{suggest(value, OPERATOR_IDS)}")
        return value


class WorkerVariant(SpecModel):
    name: str = Field(min_length=1, max_length=100, description="the variant's name")
    description: str | None = Field(default=None, description="free text for people")
    overrides: BlueprintOverrides = Field(default_factory=BlueprintOverrides, description="what it changes")
