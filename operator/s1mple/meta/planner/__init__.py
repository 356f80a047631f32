"""Expand an optimization or a variant test into run specs, lazily and deterministically.

``plan_optimization`` / ``plan_variant_test`` (or :func:`plan_file`) load the base operation, build the
dimensions, count the runs (constraints included, without materialising them) and refuse a space above
the cap.  ``plan.payload(i)`` is run ``i``: a fully resolved operation with ONE inline blueprint, its run id
(content hash), choice labels and configuration.  ``plan.validate(validate_blueprint)`` checks every
distinct worker configuration once and reports all problems together.

How a run's blueprint is built from the base blueprint, in this order (later steps see earlier ones):

1. ``worker_variants``: the chosen variant's overrides are deep-merged (rules in :mod:`..merge`);
2. ``worker_selection``: the category's (or phase's) workers become the chosen subtype's plugins;
3. ``planning_variants``: the phase's workers become the chosen variant worker;
4. ``operator_variants``: ``operator_overrides[op]`` becomes the chosen execution/aggregation;
5. ``parameter_space``: params are set on every matching worker (plugin, and subtype when given).

Modules: :mod:`.base` (what plans share), :mod:`.dimensions` (one builder per dimension kind),
:mod:`.optimization` and :mod:`.variants` (the two plans), :mod:`.sampling` (random search draws).
"""

from __future__ import annotations

from pathlib import Path

from ..models import OptimizationConfig, VariantConfig, load_meta
from .base import BasePlan, get_workers, load_base_operation, select_link, set_workers, with_market_data
from .optimization import OptimizationPlan
from .variants import VariantPlan

__all__ = [
    "BasePlan",
    "OptimizationPlan",
    "VariantPlan",
    "get_workers",
    "load_base_operation",
    "plan_file",
    "plan_optimization",
    "plan_variant_test",
    "select_link",
    "set_workers",
    "with_market_data",
]


def plan_optimization(
    config: OptimizationConfig,
    *,
    source: str | Path | None = None,
    data: str | None = None,
    max_combinations: int | None = None,
) -> OptimizationPlan:
    op = load_base_operation(config.base_operation, source, data)
    return OptimizationPlan(
        config, op, source=str(source) if source else None, max_combinations=max_combinations
    )


def plan_variant_test(
    config: VariantConfig, *, source: str | Path | None = None, data: str | None = None
) -> VariantPlan:
    op = load_base_operation(config.base_operation, source, data)
    return VariantPlan(config, op, source=str(source) if source else None)


def plan_file(
    path: str | Path, *, data: str | None = None, max_combinations: int | None = None
) -> OptimizationPlan | VariantPlan:
    config = load_meta(path)
    if isinstance(config, OptimizationConfig):
        return plan_optimization(config, source=path, data=data, max_combinations=max_combinations)
    return plan_variant_test(config, source=path, data=data)
