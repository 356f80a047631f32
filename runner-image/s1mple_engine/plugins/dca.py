"""Dollar-cost averaging: a scheduled, scored buy signal and two planners (implicit and event-driven).

* ``dca_opportunity_scorer`` (opportunity): a long opportunity on the first bar of every day/week/month,
  scored 0..1 by how far the close is below its moving average; publishes ``dca_opportunity_scored``.
* ``simple_dca_planner`` (a StandardWorker, no events): buys a fixed cash amount per opportunity.
* ``adaptive_dca_planner`` (an EventDrivenWorker): its manifest declares the ``events`` capability,
  triggers on ``on_opportunity_detected`` and listens to ``dca_opportunity_scored``: it buys more when
  the score is high (price below its average) and less when it is low.  Event validation rejects a
  blueprint that uses it without a worker publishing ``dca_opportunity_scored``.

Both planners add to the open position (scale-in, market orders) and size in cash (``SIZE_AMOUNT``,
capped by the cash left); they plan no exit: the position is held to the end of the data.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..registration import register
from ..workers import (
    ENTRY_MARKET,
    SIZE_AMOUNT,
    Context,
    EventDrivenWorker,
    Opportunities,
    OpportunityWorker,
    PlanDraft,
    PlanningWorker,
    PluginParams,
    Signals,
)

DCA_SCORED = "dca_opportunity_scored"


def period_starts(ctx: Context, frequency: str) -> np.ndarray:
    """Bool per bar: the first bar of its calendar day / week (Monday-based) / month."""
    t = ctx.data.time
    if frequency == "daily":
        key = t.astype("datetime64[D]").astype(np.int64)
    elif frequency == "weekly":
        key = (t.astype("datetime64[D]").astype(np.int64) + 3) // 7  # 1970-01-01 is a Thursday
    else:
        key = t.astype("datetime64[M]").astype(np.int64)
    out = np.ones(len(t), dtype=bool)
    out[1:] = key[1:] != key[:-1]
    return out


class DcaOpportunityScorerParams(PluginParams):
    frequency: Literal["daily", "weekly", "monthly"] = Field(
        "weekly", description="buy schedule: first bar of each calendar day|week|month"
    )
    ma_period: int = Field(50, ge=2, le=2000, description="bars in the reference simple moving average")
    full_score_discount_percent: float = Field(
        10.0, gt=0, le=100, description="discount to the average, percent, that scores 1.0"
    )


@register
class DcaOpportunityScorer(EventDrivenWorker, OpportunityWorker[DcaOpportunityScorerParams]):
    """Scheduled DCA buy signal: a long opportunity on the first bar of every ``frequency`` period, with a
    ``dca_score`` (0..1) in its metadata.

    score = clip(0.5 + discount / (2 x ``full_score_discount_percent``), 0, 1), discount = (SMA - close)
    / SMA x 100 over ``ma_period`` bars: 0.5 at the average, 1 at ``full_score_discount_percent`` % below
    it, 0 as far above it; 0.5 while the average is warming up.  Publishes ``dca_opportunity_scored``."""

    name = "dca_opportunity_scorer"
    subtype = "accumulation"
    triggers = ("on_context_ready",)
    default_triggers = ("on_context_ready",)
    publishes = (DCA_SCORED,)

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        starts = period_starts(ctx, p.frequency)
        sma = ctx.sma(p.ma_period)
        c = ctx.data.close
        with np.errstate(invalid="ignore"):
            disc = (sma - c) / sma * 100.0
            score = np.clip(0.5 + disc / (2.0 * p.full_score_discount_percent), 0.0, 1.0)
        score = np.where(np.isnan(score), 0.5, score)
        return Signals.from_masks(starts, np.zeros(len(c), dtype=bool), {"dca_score": score})


def _dca_plan(draft: PlanDraft, amounts: np.ndarray) -> None:
    draft.entry_type = draft.fill(ENTRY_MARKET, np.int8)
    draft.scale_in = draft.fill(True, bool)
    draft.size_kind = draft.fill(SIZE_AMOUNT, np.int8)
    draft.size_value = amounts
    draft.size_cap = draft.fill(np.inf)
    draft.integer_units = draft.fill(False, bool)


class SimpleDcaPlannerParams(PluginParams):
    amount: float = Field(1000.0, gt=0, le=1e12, description="cash spent per buy (account currency)")


@register
class SimpleDcaPlanner(PlanningWorker[SimpleDcaPlannerParams]):
    """Fixed-amount DCA: every opportunity buys ``amount`` of cash worth at market and adds it to the
    position (scale-in), until the cash runs out (then ``INSUFFICIENT_EQUITY``).  A StandardWorker: it
    runs at its implicit place in the pipeline and ignores any score."""

    name = "simple_dca_planner"
    subtype = "dca"
    phase = "entry_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        _dca_plan(draft, draft.fill(self.params.amount))


class AdaptiveDcaPlannerParams(PluginParams):
    base_amount: float = Field(
        1000.0, gt=0, le=1e12, description="cash per buy before the score multiplier (currency)"
    )
    min_multiplier: float = Field(0.5, ge=0, le=100, description="multiplier of base_amount at score 0")
    max_multiplier: float = Field(1.5, ge=0, le=100, description="multiplier of base_amount at score 1")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_multiplier > self.max_multiplier:
            raise ValueError("min_multiplier must not exceed max_multiplier")
        return self


@register
class AdaptiveDcaPlanner(EventDrivenWorker, PlanningWorker[AdaptiveDcaPlannerParams]):
    """Score-weighted DCA: buys ``base_amount`` x multiplier, the multiplier going linearly from
    ``min_multiplier`` (score 0) to ``max_multiplier`` (score 1) with the ``dca_score`` published by
    ``dca_opportunity_scorer`` (``dca_opportunity_scored``); opportunities without a score buy
    ``base_amount``.  An EventDrivenWorker: triggered ``on_opportunity_detected``, listening to
    ``dca_opportunity_scored`` (the blueprint must contain a worker that publishes it)."""

    name = "adaptive_dca_planner"
    subtype = "dca"
    phase = "entry_planning"
    triggers = ("on_opportunity_detected",)
    default_triggers = ("on_opportunity_detected",)
    listens = (DCA_SCORED,)

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        p = self.params
        score = opps.meta.get("dca_score")
        score = np.full(len(opps), np.nan) if score is None else score
        mult = p.min_multiplier + (p.max_multiplier - p.min_multiplier) * score
        mult = np.where(np.isnan(mult), 1.0, mult)
        _dca_plan(draft, np.maximum(p.base_amount * mult, 1e-9))
