"""The five operators: how each drives its workers, per ``execution_strategy`` x ``aggregation_strategy``.

Defaults come from the packaged ``operators.yaml``; a blueprint's ``operator_overrides`` replaces them per
operator.  The *aggregation* strategy decides what the workers' outputs become; the *execution* strategy
is how they are invoked, and constrains the aggregation: CHAIN_THROUGH needs SEQUENTIAL (a chain has an
order); PARALLEL and EVENT_DRIVEN go with COLLECT_ALL or NONE.

OpportunityOperator (default PARALLEL / COLLECT_ALL)
    COLLECT_ALL   union of every worker's signals; same-bar same-direction duplicates merge into one
                  opportunity (the earliest worker in blueprint order supplies the id/metadata); a same-bar
                  signal in the opposite direction loses to the earlier worker and is recorded as skipped
                  (reason CONFLICTING_OPPORTUNITY).
    CHAIN_THROUGH the first worker's signals are confirmed by each next worker in turn: a signal survives
                  only if the next worker's ``bias`` (its directional view at that bar: for
                  ``ma_crossover`` the side of the fast MA, for signal-like workers the direction of a
                  signal at most ``confirm_window`` bars old) agrees.  Fewer opportunities.
    NONE          (EVENT_DRIVEN) every signal of every worker is published and planned on its own, no
                  merging: same-bar duplicates are separate opportunities with their own ids; the first
                  one at a bar acts, later ones at that bar are recorded as skipped (DUPLICATE_SAME_BAR /
                  CONFLICTING_OPPORTUNITY).

ThreatOperator (default PARALLEL / COLLECT_ALL) – vetting an opportunity against threats:
    COLLECT_ALL   every threat worker is evaluated; all active threats apply and are recorded on the
                  rejected opportunity (each counts in ``top_rejection_reasons``).
    CHAIN_THROUGH threat workers are evaluated in blueprint order and evaluation stops at the first one
                  that rejects: later workers triggered ``on_opportunity_detected`` are not evaluated (no
                  ThreatID, fewer ``threats_detected``) and only the first threat is the reason.
    NONE          (EVENT_DRIVEN) threats veto nothing: they are only published as ``on_threat_detected``
                  events for listeners (e.g. ``emergency_exit_agent``).

PlanningOperator (default SEQUENTIAL / CHAIN_THROUGH) – phases entry -> exit -> size -> order_routing:
    CHAIN_THROUGH one plan flows through every phase and worker; each sees what earlier ones decided
                  (``fixed_rr_exit`` targets a multiple of ``atr_based_stops``' stop; ``fixed_risk_sizer``
                  sizes over the planned stop distance).  A later worker overrides fields it sets.
    COLLECT_ALL   every worker plans from the opportunity alone (an empty plan) and the plans are merged
                  field by field, the first worker (phase order, then blueprint order) that set a field
                  wins.  The sizer does not see the stop, so ``fixed_risk_sizer`` uses its documented
                  fallback distance: different sizes.
    NONE          as COLLECT_ALL (a plan has nothing else to leave un-aggregated).

ContextOperator (default SEQUENTIAL / CHAIN_THROUGH)
    Context workers are pure causal functions of the bars and publish features under distinct names, so
    all strategies produce the same features (CHAIN_THROUGH: later workers could read earlier features;
    COLLECT_ALL/NONE: each sees only the bars).  Accepted for configuration symmetry; no result changes.

ExecutionOperator (default SEQUENTIAL / CHAIN_THROUGH)
    Position managers only ever tighten the stop (trailing, breakeven after a partial) and each partial
    target fires once, so order and merging commute: the tightest stop applies under every strategy.
    Risk/safety workers react to their triggers (``on_threat_detected``) under every strategy.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .config import (
    OPERATOR_IDS,
    PLANNING_PHASES,
    AggregationStrategy,
    Blueprint,
    ExecutionStrategy,
    OperatorConfig,
    SpecModel,
    load_yaml_model,
)
from .workers import (
    ENTRY_MARKET,
    HOLD,
    SIZE_FRACTION,
    Context,
    Opportunities,
    OpportunityWorker,
    Plan,
    PlanDraft,
    PlanningWorker,
)

OPERATORS_YAML = Path(__file__).with_name("operators.yaml")
CHAIN = AggregationStrategy.CHAIN_THROUGH
COLLECT = AggregationStrategy.COLLECT_ALL
NONE = AggregationStrategy.NONE


class OperatorsFile(SpecModel):
    """operators.yaml: one OperatorConfig per operator id (all five are required)."""

    ContextOperator: OperatorConfig = Field(alias="ContextOperator")
    OpportunityOperator: OperatorConfig = Field(alias="OpportunityOperator")
    ThreatOperator: OperatorConfig = Field(alias="ThreatOperator")
    PlanningOperator: OperatorConfig = Field(alias="PlanningOperator")
    ExecutionOperator: OperatorConfig = Field(alias="ExecutionOperator")


@lru_cache(maxsize=4)
def default_operators(path: str | None = None) -> dict[str, OperatorConfig]:
    """The defaults from ``operators.yaml`` (the packaged one unless ``path`` is given)."""
    cfg = load_yaml_model(path or OPERATORS_YAML, OperatorsFile, root="operators")
    return {op: getattr(cfg, op) for op in OPERATOR_IDS}


def resolve_operators(blueprint: Blueprint) -> dict[str, OperatorConfig]:
    ops = dict(default_operators())
    ops.update(blueprint.operator_overrides)
    return ops


def operator_problems(blueprint: Blueprint) -> list[str]:
    problems = []
    for op_id, cfg in blueprint.operator_overrides.items():
        if cfg.aggregation_strategy == CHAIN and cfg.execution_strategy != ExecutionStrategy.SEQUENTIAL:
            problems.append(
                f"operator_overrides.{op_id}: aggregation_strategy CHAIN_THROUGH needs execution_strategy "
                f"SEQUENTIAL (got {cfg.execution_strategy.value}); use COLLECT_ALL or NONE with it"
            )
    return problems


# --------------------------------------------------------------------------------------------------------
# OpportunityOperator


def _signals(ctx: Context, w: OpportunityWorker):
    return ctx.memo(("signals",) + w.key, lambda: w.detect(ctx))


def collect_opportunities(
    ctx: Context, workers: list[OpportunityWorker], cfg: OperatorConfig
) -> Opportunities:
    close = ctx.data.close
    if not workers:
        e = np.empty(0, dtype=np.int64)
        return Opportunities(e, e.astype(np.int8), e.astype(np.int16), e.astype(float), {}, e.astype(np.int8))
    sigs = [_signals(ctx, w) for w in workers]
    agg = cfg.aggregation_strategy
    if len(workers) == 1 or agg == CHAIN:
        base = sigs[0]
        bars, dirs, meta = base.bars, base.dirs, dict(base.meta)
        if agg == CHAIN and len(workers) > 1:
            keep = np.ones(len(bars), dtype=bool)
            for w in workers[1:]:
                bias = ctx.memo(("bias",) + w.key, lambda w=w: w.bias(ctx))
                keep &= bias[bars] == dirs
            bars, dirs = bars[keep], dirs[keep]
            meta = {k: v[keep] for k, v in meta.items()}
        m = len(bars)
        return Opportunities(bars, dirs, np.zeros(m, np.int16), close[bars], meta, np.zeros(m, np.int8))
    # union (COLLECT_ALL / NONE)
    bars = np.concatenate([s.bars for s in sigs])
    dirs = np.concatenate([s.dirs for s in sigs])
    source = np.concatenate([np.full(len(s.bars), i, np.int16) for i, s in enumerate(sigs)])
    keys = sorted({k for s in sigs for k in s.meta})
    meta = {k: np.concatenate([s.meta.get(k, np.full(len(s.bars), np.nan)) for s in sigs]) for k in keys}
    order = np.lexsort((source, bars))
    bars, dirs, source = bars[order], dirs[order], source[order]
    meta = {k: v[order] for k, v in meta.items()}
    pre = np.zeros(len(bars), np.int8)
    if agg == COLLECT and len(bars):
        first = np.ones(len(bars), dtype=bool)
        first[1:] = bars[1:] != bars[:-1]
        group_first = np.maximum.accumulate(np.where(first, np.arange(len(bars)), 0))
        same = dirs == dirs[group_first]
        keep = first | ~same  # same-direction duplicates merge into the group's first
        pre = np.where(first | same, 0, 1).astype(np.int8)[keep]
        bars, dirs, source = bars[keep], dirs[keep], source[keep]
        meta = {k: v[keep] for k, v in meta.items()}
    return Opportunities(bars, dirs, source, close[bars], meta, pre)


# --------------------------------------------------------------------------------------------------------
# PlanningOperator


def plan_opportunities(
    ctx: Context, phases: dict[str, list[PlanningWorker]], opps: Opportunities, cfg: OperatorConfig
) -> Plan:
    m = len(opps)
    draft = PlanDraft(m)
    chain = cfg.aggregation_strategy == CHAIN
    for phase in PLANNING_PHASES:
        for w in phases.get(phase, ()):
            if chain:
                w.plan(ctx, opps, draft)
            else:
                own = PlanDraft(m)
                w.plan(ctx, opps, own)
                draft.merge_missing(own)
    return finalize_plan(draft)


#: what an unset plan field means: market entry, no stop/target, hold on opposite, 100 % of equity
PLAN_DEFAULTS: dict[str, tuple[float | int | bool, Any]] = {
    "entry_type": (ENTRY_MARKET, np.int8),
    "entry_level": (np.nan, np.float64),
    "valid_bars": (1, np.int64),
    "stop_dist": (np.nan, np.float64),
    "tp_dist": (np.nan, np.float64),
    "on_opposite": (HOLD, np.int8),
    "size_kind": (SIZE_FRACTION, np.int8),
    "size_value": (1.0, np.float64),
    "size_cap": (np.inf, np.float64),
    "size_risk_dist": (np.nan, np.float64),
    "integer_units": (False, bool),
    "slices": (1, np.int64),
    "scale_in": (False, bool),
    "threat_scale": (1.0, np.float64),
    "threat_window": (0, np.int64),
    "threat_min_sev": (0, np.int64),
}


def finalize_plan(d: PlanDraft) -> Plan:
    """The plan with defaults for unset fields (see ``PLAN_DEFAULTS``)."""
    fields = {}
    for name, (value, dtype) in PLAN_DEFAULTS.items():
        arr = getattr(d, name)
        fields[name] = d.fill(value, dtype) if arr is None else arr
    return Plan(**fields)
