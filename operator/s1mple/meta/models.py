"""The two research specs: ``optimization_config`` (sweep a space) and ``variant_config`` (race variants).

Both load through the project's one YAML loader (:func:`s1mple_engine.config.load_yaml_model`), accept
snake_case and camelCase keys and reject unknown ones; the same models become the CRD schemas, so they
stay structural: objects and lists of typed fields; ``dict[str, Any]`` only for plugin params.

See docs/meta.md for the reference of every field, the merge rules and the constraint grammar.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from s1mple_engine.config import (
    EXECUTION_PHASES,
    OPERATOR_IDS,
    PLANNING_PHASES,
    AggregationStrategy,
    ConfigError,
    ExecutionStrategy,
    OperatorConfig,
    Period,
    SpecModel,
    WorkerConfig,
    load_yaml_model,
    parse_model,
    read_yaml,
    suggest,
)
from s1mple_engine.result import DEFAULT_BLOCKS

#: Metrics of a backtest summary (s1mple_engine.backtest.BacktestResult.summary()["metrics"]).
METRICS = (
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "max_drawdown",
    "win_rate",
    "total_trades",
    "avg_trade_duration",
    "profit_factor",
    "exposure",
    "calmar_ratio",
)
#: Causality counts of a backtest summary.
CAUSALITY_COUNTS = (
    "opportunities_detected",
    "opportunities_rejected",
    "opportunities_skipped",
    "threats_detected",
)

WORKER_CATEGORIES = (
    "context_workers",
    "opportunity_workers",
    "threat_workers",
    "planning_workers",
    "execution_workers",
)
PHASED_CATEGORIES = {"planning_workers": PLANNING_PHASES, "execution_workers": EXECUTION_PHASES}
VISUALIZATIONS = ("equity_curves", "drawdown_curves", "monthly_returns", "trade_distribution")
CAUSALITY_ANALYSES = ("opportunities_per_variant", "threats_per_variant", "rejection_reasons")

#: Largest number of values one range may expand to (a guard against ``step: 0.0000001`` typos).
MAX_RANGE_VALUES = 1_000_000
DEFAULT_MAX_COMBINATIONS = 100_000

WorkerCategory = Literal[
    "context_workers", "opportunity_workers", "threat_workers", "planning_workers", "execution_workers"
]
Scalar = bool | int | float | str


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


#: Direction of a metric when the spec does not say: drawdown is better small, everything else big.
DEFAULT_DIRECTIONS: dict[str, Direction] = {"max_drawdown": Direction.MINIMIZE}


def metric_direction(metric: str, overrides: dict[str, Direction] | None = None) -> Direction:
    if overrides and metric in overrides:
        return Direction(overrides[metric])
    return DEFAULT_DIRECTIONS.get(metric, Direction.MAXIMIZE)


# --------------------------------------------------------------------------------------------------------
# Ranges
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
        step = 1 if self.step is None else self.step
        n = _range_count(self.start, self.end, step)
        start, dstep = _dec(self.start), _dec(step)
        if all(isinstance(v, int) for v in (self.start, self.end, step)):
            return [int(start + k * dstep) for k in range(n)]
        return [float(start + k * dstep) for k in range(n)]

    def size(self) -> int:
        if self.values is not None:
            return len(self.values)
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


class OptimizationTargets(SpecModel):
    primary_metric: str = Field(default="sharpe_ratio", description="the metric that ranks runs")
    direction: Direction | None = Field(
        default=None, description="of the primary metric; default maximize (minimize for max_drawdown)"
    )
    secondary_metrics: list[str] = Field(default_factory=list, description="further metrics to report")
    metric_directions: dict[str, Direction] = Field(
        default_factory=dict, description="maximize or minimize, per metric"
    )

    @model_validator(mode="after")
    def _known(self) -> OptimizationTargets:
        for m in [self.primary_metric, *self.secondary_metrics, *self.metric_directions]:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}{suggest(m, METRICS)}")
        return self

    def primary_direction(self) -> Direction:
        if self.direction is not None:
            return self.direction
        return metric_direction(self.primary_metric, self.metric_directions)


class RunConstraints(SpecModel):
    """A run that violates these is infeasible: reported, but never the best."""

    min_trades: int | None = Field(default=None, ge=0, description="fewer trades: the run is infeasible")
    max_drawdown: float | None = Field(default=None, ge=0, description="percent, e.g. 15.0")


class ParallelConfig(SpecModel):
    max_workers: int | None = Field(default=None, ge=1, le=1024, description="default: one per core")
    timeout_per_run: float | None = Field(default=None, gt=0, description="seconds; default: none")


class SearchStrategy(StrEnum):
    GRID = "grid"
    RANDOM = "random"
    BAYESIAN = "bayesian"


class SearchConfig(SpecModel):
    strategy: SearchStrategy = Field(default=SearchStrategy.GRID, description="grid, random or bayesian")
    max_trials: int | None = Field(default=None, ge=1, description="random/bayesian: number of runs")
    seed: int = Field(default=0, description="random/bayesian: the seed (same seed, same runs)")

    @model_validator(mode="after")
    def _trials(self) -> SearchConfig:
        if self.strategy != SearchStrategy.GRID and self.max_trials is None:
            raise ValueError(f"search.max_trials is required for strategy {self.strategy.value}")
        return self


#: A walk-forward span: a number of bars, or a duration like "365d", "12w", "6h", "30min".
Span = int | str
DURATION_PATTERN = r"^\s*(\d+)\s*(d|w|h|min)\s*$"


class Holdout(SpecModel):
    """Split the data once: rank on the in-sample part, report the out-of-sample metrics."""

    out_of_sample: float | str = Field(
        description="the out-of-sample share of the bars (0 < x < 1, e.g. 0.3) or its first date (2022-01-01)"
    )
    top: int = Field(default=10, ge=1, le=1000, description="report the out-of-sample metrics of the top N")

    @field_validator("out_of_sample", mode="before")
    @classmethod
    def _yaml_date(cls, v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v  # YAML reads 2022-01-01 as a date

    @field_validator("out_of_sample")
    @classmethod
    def _share_or_date(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return v.strip()
        if not 0 < v < 1:
            raise ValueError(
                f"{v} is not a share of the bars: give 0 < out_of_sample < 1 (like 0.3) or a date"
            )
        return v


class WalkForward(SpecModel):
    """Rolling (or anchored) train/test windows: the best configuration on train, measured on test."""

    train: Span = Field(description="train window: bars (e.g. 500) or a duration (e.g. 730d)")
    test: Span = Field(description="test window after it: bars or a duration")
    step: Span | None = Field(default=None, description="how far each next window moves; default: test")
    anchored: bool = Field(default=False, description="train always from the first bar (expanding)")

    @field_validator("train", "test", "step")
    @classmethod
    def _span(cls, v: Span | None, info: Any) -> Span | None:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"{v} bars: give a positive number of bars or a duration like 365d")
        if isinstance(v, str) and not re.match(DURATION_PATTERN, v):
            raise ValueError(f"{v!r} is not a duration: use bars (e.g. 250) or <n>d, <n>w, <n>h, <n>min")
        return v


class CscvSpec(SpecModel):
    """Combinatorially symmetric cross-validation: the runs' per-bar returns cut into ``blocks`` equal
    parts, every half of them in-sample against the other half (C(blocks, blocks/2) splits)."""

    blocks: int = Field(
        default=DEFAULT_BLOCKS, ge=2, le=20, multiple_of=2, description="even; C(16, 8) = 12,870 splits"
    )


class ValidationSpec(SpecModel):
    """How far the best configuration can be trusted (docs/meta.md, "Overfitting statistics" and
    "Holdout and walk-forward")."""

    holdout: Holdout | None = Field(
        default=None, description="rank on the in-sample part, report the out-of-sample metrics"
    )
    walk_forward: WalkForward | None = Field(
        default=None, description="rolling or anchored train/test windows: best on train, measured on test"
    )

    cscv: CscvSpec | bool = Field(
        default_factory=CscvSpec,
        description="PBO by CSCV, on for >= 10 feasible runs: {blocks: 16}, or false to turn it off",
    )
    max_pbo: float = Field(default=0.5, ge=0, le=1, description="OverfitRisk above this PBO")
    min_dsr: float = Field(default=0.5, ge=0, le=1, description="OverfitRisk below this deflated Sharpe")

    @field_validator("cscv", mode="before")
    @classmethod
    def _cscv_flag(cls, value: Any) -> Any:
        return CscvSpec() if value is True else value

    def cscv_blocks(self) -> int | None:
        """Blocks of the CSCV, None when it is turned off."""
        return self.cscv.blocks if isinstance(self.cscv, CscvSpec) else None


class OptimizationConfig(SpecModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, description="free text for people")
    base_operation: str = Field(min_length=1)
    strategy_link: str | None = Field(
        default=None, description="blueprint name, when the base operation links more than one"
    )
    parameter_space: list[ParameterSpaceEntry] = Field(
        default_factory=list, description="plugin parameters to sweep"
    )
    worker_selection: list[WorkerSelection] = Field(default_factory=list, description="plugins to swap in")
    planning_variants: list[PlanningVariantDimension] = Field(
        default_factory=list, description="planning workers to swap in"
    )
    operator_variants: list[OperatorVariant] = Field(
        default_factory=list, description="operator strategies to try"
    )
    worker_variants: list[WorkerVariant] = Field(
        default_factory=list, description="named blueprint changes to try"
    )
    parameter_constraints: list[str] = Field(
        default_factory=list, description="e.g. 'ma_crossover.fast < ma_crossover.slow'"
    )
    optimization_targets: OptimizationTargets = Field(
        default_factory=OptimizationTargets, description="which metric ranks the runs"
    )
    constraints: RunConstraints = Field(default_factory=RunConstraints)
    parallel_config: ParallelConfig = Field(default_factory=ParallelConfig)
    search: SearchConfig = Field(default_factory=SearchConfig, description="how the space is searched")
    max_combinations: int = Field(
        default=DEFAULT_MAX_COMBINATIONS, ge=1, description="refuse a grid larger than this many runs"
    )
    validation: ValidationSpec = Field(
        default_factory=ValidationSpec,
        description="how far the best can be trusted: PBO, DSR, holdout, walk-forward",
    )

    @model_validator(mode="after")
    def _unique(self) -> OptimizationConfig:
        seen: set[str] = set()
        for i, entry in enumerate(self.parameter_space):
            for p in entry.parameters:
                ref = f"{entry.worker_plugin}.{p}"
                if ref in seen:
                    raise ValueError(f"parameter_space.{i}: {ref} is swept twice")
                seen.add(ref)
        names = [v.name for v in self.worker_variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"worker_variants: duplicate names {dup}")
        phases = [d.phase for d in self.planning_variants]
        dup = sorted({p for p in phases if phases.count(p) > 1})
        if dup:
            raise ValueError(f"planning_variants: phase(s) {dup} given twice; one entry per phase")
        ops = [o.operator_id for o in self.operator_variants]
        dup = sorted({o for o in ops if ops.count(o) > 1})
        if dup:
            raise ValueError(f"operator_variants: operator(s) {dup} given twice")
        return self


# --------------------------------------------------------------------------------------------------------
# Variant test
# --------------------------------------------------------------------------------------------------------


class Variant(SpecModel):
    name: str = Field(min_length=1, max_length=100, description="the variant's name")
    description: str | None = Field(default=None, description="free text for people")
    overrides: BlueprintOverrides = Field(default_factory=BlueprintOverrides, description="what it changes")


class ComparisonConfig(SpecModel):
    metrics: list[str] = Field(default_factory=lambda: list(METRICS[:6]), description="metrics to compare")
    visualizations: list[str] = Field(
        default_factory=lambda: list(VISUALIZATIONS[:3]), description="charts in the report"
    )
    causality_analysis: list[str] = Field(
        default_factory=lambda: list(CAUSALITY_ANALYSES), description="analyses of why variants differ"
    )

    @model_validator(mode="after")
    def _known(self) -> ComparisonConfig:
        for field, valid in (
            ("metrics", METRICS),
            ("visualizations", VISUALIZATIONS),
            ("causality_analysis", CAUSALITY_ANALYSES),
        ):
            for v in getattr(self, field):
                if v not in valid:
                    raise ValueError(f"{field}: unknown {v!r}{suggest(v, valid)}")
        return self


class VariantConfig(SpecModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, description="free text for people")
    base_operation: str = Field(min_length=1)
    strategy_link: str | None = Field(
        default=None, description="blueprint name, when the base operation links more than one"
    )
    market_period: Period | None = Field(
        default=None, description="one period for all variants; default: the base operation's"
    )
    variants: list[Variant] = Field(min_length=1, description="the variants to race")
    baseline: str | None = Field(
        default=None, description="variant the others are tested against (significance); default the first"
    )
    comparison_config: ComparisonConfig = Field(
        default_factory=ComparisonConfig, description="what the comparison reports"
    )
    parallel_config: ParallelConfig = Field(default_factory=ParallelConfig)

    @model_validator(mode="after")
    def _unique(self) -> VariantConfig:
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variants: duplicate names {dup}")
        if self.baseline is not None and self.baseline not in names:
            hint = suggest(self.baseline, names)
            raise ValueError(f"baseline: no variant is named {self.baseline!r}{hint}")
        return self

    def baseline_name(self) -> str:
        return self.baseline if self.baseline is not None else self.variants[0].name


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------

ROOTS = {"optimization_config": OptimizationConfig, "variant_config": VariantConfig}
_CAMEL_ROOTS = {"optimizationConfig": "optimization_config", "variantConfig": "variant_config"}


def load_optimization(path: str | Path) -> OptimizationConfig:
    return load_yaml_model(path, OptimizationConfig, root="optimization_config")


def load_variant_test(path: str | Path) -> VariantConfig:
    return load_yaml_model(path, VariantConfig, root="variant_config")


def load_meta(path: str | Path) -> OptimizationConfig | VariantConfig:
    """Load an optimization or a variant test, whichever the file's top-level key says."""
    data = read_yaml(path)
    if isinstance(data, dict) and len(data) == 1:
        key = _CAMEL_ROOTS.get(next(iter(data)), next(iter(data)))
        if key in ROOTS:
            return parse_model({key: data[next(iter(data))]}, ROOTS[key], root=key, source=str(path))
    found = sorted(data) if isinstance(data, dict) else type(data).__name__
    raise ConfigError(
        f"expected one top-level key, optimization_config or variant_config (found: {found})", str(path)
    )
