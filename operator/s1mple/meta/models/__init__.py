"""The two research specs: ``optimization_config`` (sweep a space) and ``variant_config`` (race variants).

Both load through the project's one YAML loader (:func:`s1mple_engine.config.load_yaml_model`), accept
snake_case and camelCase keys and reject unknown ones; the same models become the CRD schemas, so they
stay structural: objects and lists of typed fields; ``dict[str, Any]`` only for plugin params.

See docs/meta.md for the reference of every field, the merge rules and the constraint grammar.

Modules: :mod:`.common` (metric names, directions, caps), :mod:`.parameters` (what a sweep varies),
:mod:`.targets` (what it optimises, search strategy), :mod:`.validation` (holdout, walk-forward, CSCV),
:mod:`.configs` (the two root specs and their loaders).
"""

from .common import (
    CAUSALITY_ANALYSES,
    CAUSALITY_COUNTS,
    DEFAULT_DIRECTIONS,
    DEFAULT_MAX_COMBINATIONS,
    MAX_RANGE_VALUES,
    METRICS,
    PHASED_CATEGORIES,
    VISUALIZATIONS,
    WORKER_CATEGORIES,
    Direction,
    Scalar,
    WorkerCategory,
    metric_direction,
)
from .configs import (
    ROOTS,
    ComparisonConfig,
    OptimizationConfig,
    Variant,
    VariantConfig,
    load_meta,
    load_optimization,
    load_variant_test,
)
from .parameters import (
    AggregationStrategyChoice,
    BlueprintOverrides,
    ExecutionOverrides,
    ExecutionStrategyChoice,
    OperatorVariant,
    ParameterSpaceEntry,
    ParamRange,
    PhaseVariantOption,
    PlanningOverrides,
    PlanningVariantDimension,
    SubtypeVariant,
    WorkerSelection,
    WorkerVariant,
    is_range_mapping,
)
from .targets import (
    OptimizationTargets,
    ParallelConfig,
    RunConstraints,
    SearchConfig,
    SearchStrategy,
)
from .validation import (
    DURATION_PATTERN,
    CscvSpec,
    Holdout,
    Span,
    ValidationSpec,
    WalkForward,
)

__all__ = [
    "AggregationStrategyChoice",
    "BlueprintOverrides",
    "CAUSALITY_ANALYSES",
    "CAUSALITY_COUNTS",
    "ComparisonConfig",
    "CscvSpec",
    "DEFAULT_DIRECTIONS",
    "DEFAULT_MAX_COMBINATIONS",
    "DURATION_PATTERN",
    "Direction",
    "ExecutionOverrides",
    "ExecutionStrategyChoice",
    "Holdout",
    "MAX_RANGE_VALUES",
    "METRICS",
    "OperatorVariant",
    "OptimizationConfig",
    "OptimizationTargets",
    "PHASED_CATEGORIES",
    "ParallelConfig",
    "ParamRange",
    "ParameterSpaceEntry",
    "PhaseVariantOption",
    "PlanningOverrides",
    "PlanningVariantDimension",
    "ROOTS",
    "RunConstraints",
    "Scalar",
    "SearchConfig",
    "SearchStrategy",
    "Span",
    "SubtypeVariant",
    "VISUALIZATIONS",
    "ValidationSpec",
    "Variant",
    "VariantConfig",
    "WORKER_CATEGORIES",
    "WalkForward",
    "WorkerCategory",
    "WorkerSelection",
    "WorkerVariant",
    "is_range_mapping",
    "load_meta",
    "load_optimization",
    "load_variant_test",
    "metric_direction",
]
