"""The two root specs and their loaders."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from s1mple_engine.config import (
    ConfigError,
    Period,
    SpecModel,
    load_yaml_model,
    parse_model,
    read_yaml,
    suggest,
)

from .common import CAUSALITY_ANALYSES, DEFAULT_MAX_COMBINATIONS, METRICS, VISUALIZATIONS
from .parameters import (
    OperatorVariant,
    ParameterSpaceEntry,
    PlanningVariantDimension,
    WorkerSelection,
    WorkerVariant,
)
from .targets import OptimizationTargets, ParallelConfig, RunConstraints, SearchConfig
from .validation import ValidationSpec


class _ResearchSpec(SpecModel):
    # what both specs start with: their name and the base operation they vary
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, description="free text for people")
    base_operation: str = Field(min_length=1)
    strategy_link: str | None = Field(
        default=None, description="blueprint name, when the base operation links more than one"
    )


class OptimizationConfig(_ResearchSpec):
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


class Variant(WorkerVariant):
    pass  # a variant of a variant test is what a worker variant of an optimization is


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


class VariantConfig(_ResearchSpec):
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

ROOTS: dict[str, type[OptimizationConfig] | type[VariantConfig]] = {
    "optimization_config": OptimizationConfig,
    "variant_config": VariantConfig,
}
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
