"""Planning workers, by phase: entry_planning, exit_planning, size_planning (order_routing: none yet)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registration import register
from ..workers import (
    CLOSE,
    ENTRY_LIMIT,
    ENTRY_MARKET,
    ENTRY_STOP,
    REVERSE,
    SIZE_FRACTION,
    SIZE_RISK,
    Context,
    Opportunities,
    PlanDraft,
    PlanningWorker,
    PluginParams,
)

# ---------------------------------------------------------------------------------------------- entry


@register
class MarketEntryImmediate(PlanningWorker[PluginParams]):
    """Enter with a market order: at the next bar's open (or this bar's close with ``fill_at: close``)."""

    name = "market_entry_immediate"
    subtype = "market_order"
    phase = "entry_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        draft.entry_type = draft.fill(ENTRY_MARKET, np.int8)


class LimitEntryParams(PluginParams):
    offset_percent: float = Field(0.5, ge=0, le=50, description="limit distance from the close, percent")
    valid_bars: int = Field(5, ge=1, le=10_000, description="bars the order works before it expires")


@register
class LimitEntry(PlanningWorker[LimitEntryParams]):
    """Enter with a limit order ``offset_percent`` better than the opportunity bar's close (below it for a
    long, above for a short), working for ``valid_bars`` bars from the next bar."""

    name = "limit_entry"
    subtype = "limit_order"
    phase = "entry_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        p = self.params
        draft.entry_type = draft.fill(ENTRY_LIMIT, np.int8)
        draft.entry_level = opps.ref * (1.0 - opps.dirs * p.offset_percent / 100.0)
        draft.valid_bars = draft.fill(p.valid_bars, np.int64)


class StopEntryParams(PluginParams):
    offset_percent: float = Field(0.5, ge=0, le=50, description="stop distance from the close, percent")
    valid_bars: int = Field(5, ge=1, le=10_000, description="bars the order works before it expires")


@register
class StopEntry(PlanningWorker[StopEntryParams]):
    """Enter with a stop (breakout) order ``offset_percent`` beyond the opportunity bar's close (above it
    for a long, below for a short), working for ``valid_bars`` bars from the next bar."""

    name = "stop_entry"
    subtype = "stop_order"
    phase = "entry_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        p = self.params
        draft.entry_type = draft.fill(ENTRY_STOP, np.int8)
        draft.entry_level = opps.ref * (1.0 + opps.dirs * p.offset_percent / 100.0)
        draft.valid_bars = draft.fill(p.valid_bars, np.int64)


# ---------------------------------------------------------------------------------------------- exit


class AtrBasedStopsParams(PluginParams):
    atr_multiplier: float = Field(2.0, gt=0, le=50, description="stop distance in ATRs")
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars (Wilder)")
    fallback_stop_percent: float = Field(
        2.0, gt=0, le=50, description="stop distance, percent of the close, while the ATR is undefined"
    )


@register
class AtrBasedStops(PlanningWorker[AtrBasedStopsParams]):
    """Stop-loss ``atr_multiplier`` x ATR (at the opportunity bar) away from the fill price.

    During the ATR warm-up (ATR undefined) the stop is ``fallback_stop_percent`` % of the opportunity's
    close, so no position is left without a stop (the design's ``atr_exits`` variant has no other exit)."""

    name = "atr_based_stops"
    subtype = "volatility_stop"
    phase = "exit_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        p = self.params
        stop = p.atr_multiplier * ctx.atr(p.atr_period)[opps.bars]
        draft.stop_dist = np.where(np.isnan(stop), opps.ref * p.fallback_stop_percent / 100.0, stop)


class FixedRrExitParams(PluginParams):
    risk_reward_ratio: float = Field(2.0, gt=0, le=100, description="target distance / stop distance")
    stop_percent: float = Field(
        1.0, gt=0, le=50, description="own stop distance, percent of price, if none planned"
    )


@register
class FixedRrExit(PlanningWorker[FixedRrExitParams]):
    """Take-profit at ``risk_reward_ratio`` x the stop distance.

    Uses the stop already planned (CHAIN_THROUGH after a stop planner); where there is none it plans its
    own stop ``stop_percent`` % from the fill price and targets a multiple of that."""

    name = "fixed_rr_exit"
    subtype = "target_exit"
    phase = "exit_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        own = opps.ref * self.params.stop_percent / 100.0
        stop = own if draft.stop_dist is None else np.where(np.isnan(draft.stop_dist), own, draft.stop_dist)
        draft.stop_dist = stop
        draft.tp_dist = self.params.risk_reward_ratio * stop


class OppositeSignalExitParams(PluginParams):
    reverse: bool = Field(True, description="also enter the opposite opportunity (stop-and-reverse)")


@register
class OppositeSignalExit(PlanningWorker[OppositeSignalExitParams]):
    """Close the position when an opposite opportunity arrives, and (``reverse``) open the opposite one."""

    name = "opposite_signal_exit"
    subtype = "signal_exit"
    phase = "exit_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        draft.on_opposite = draft.fill(REVERSE if self.params.reverse else CLOSE, np.int8)


# ---------------------------------------------------------------------------------------------- size


class FixedFractionSizerParams(PluginParams):
    fraction: float = Field(1.0, gt=0, le=10, description="fraction of equity per position (1.0 = 100 %)")
    integer_units: bool = Field(False, description="round units down to whole units (shares, contracts)")


@register
class FixedFractionSizer(PlanningWorker[FixedFractionSizerParams]):
    """Position notional = ``fraction`` x equity at the fill, commission included:
    units = fraction x equity / (fill price x (1 + commission)), floored if ``integer_units``
    (backtesting.py's rule for ``buy(size=fraction)``)."""

    name = "fixed_fraction_sizer"
    subtype = "fixed_fraction"
    phase = "size_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        draft.size_kind = draft.fill(SIZE_FRACTION, np.int8)
        draft.size_value = draft.fill(self.params.fraction)
        draft.size_cap = draft.fill(np.inf)
        draft.integer_units = draft.fill(self.params.integer_units, bool)


class RiskSizingParams(PluginParams):
    """The params every risk-based sizer has: what :func:`plan_risk_size` reads."""

    fallback_stop_percent: float = Field(
        2.0, gt=0, le=50, description="assumed stop distance, percent of price, when no stop is seen"
    )
    max_position_fraction: float = Field(1.0, gt=0, le=10, description="cap on notional, fraction of equity")
    integer_units: bool = Field(False, description="round units down to whole units (shares, contracts)")


def plan_risk_size(p: RiskSizingParams, risk_percent: float, opps: Opportunities, draft: PlanDraft) -> None:
    """Size so that a stop-out loses ``risk_percent`` of equity: units = risk / stop distance.

    The stop distance is the exit plan's (CHAIN_THROUGH) or, when none is seen (PARALLEL planning, or no
    stop planned), ``p.fallback_stop_percent`` of the reference price; notional is capped at
    ``p.max_position_fraction`` of equity.  Shared by the risk-based sizers.
    """
    fallback = opps.ref * p.fallback_stop_percent / 100.0
    seen = draft.stop_dist
    dist = fallback if seen is None else np.where(np.isnan(seen) | (seen <= 0), fallback, seen)
    draft.size_kind = draft.fill(SIZE_RISK, np.int8)
    draft.size_value = draft.fill(risk_percent / 100.0)
    draft.size_risk_dist = dist
    draft.size_cap = draft.fill(p.max_position_fraction)
    draft.integer_units = draft.fill(p.integer_units, bool)


class FixedRiskSizerParams(RiskSizingParams):
    risk_per_trade_percent: float = Field(1.0, gt=0, le=100, description="equity risked per trade, percent")


@register
class FixedRiskSizer(PlanningWorker[FixedRiskSizerParams]):
    """Risk ``risk_per_trade_percent`` % of equity between fill and stop: units = equity x risk / distance.

    The distance is the planned stop distance if this sizer sees one (CHAIN_THROUGH after an exit
    planner); otherwise (no stop planned, or PARALLEL/COLLECT_ALL planning) it is the fallback
    ``fallback_stop_percent`` % of the opportunity's close.  Notional is capped at
    ``max_position_fraction`` x equity."""

    name = "fixed_risk_sizer"
    subtype = "risk_based"
    phase = "size_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        plan_risk_size(self.params, self.params.risk_per_trade_percent, opps, draft)
