"""ICT / SMC planning workers: limit entries inside fair value gaps, liquidity targets, order-block stops.

They read the structure features of :mod:`.structure` (swings, order blocks, liquidity pools) at the
opportunity bar through the same memoized functions the context workers publish, with their own params.
Distances are measured from the opportunity bar's close (the planners' reference price) and applied by
the simulation from the actual fill price.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registration import register
from ..workers import (
    ENTRY_LIMIT,
    ENTRY_MARKET,
    Context,
    Opportunities,
    PlanDraft,
    PlanningWorker,
    PluginParams,
)
from .structure import SwingParams, liquidity, order_blocks, swings


class LimitEntryAtFvgParams(PluginParams):
    entry_at_midpoint: bool = Field(False, description="limit at the gap's midpoint instead of its near edge")
    valid_bars: int = Field(10, ge=1, le=10_000, description="bars the order works before it expires")


@register
class LimitEntryAtFvg(PlanningWorker[LimitEntryAtFvgParams]):
    """Enter with a limit order inside the opportunity's fair value gap: at the gap's near edge (the top of
    a bullish gap, the bottom of a bearish one) or, with ``entry_at_midpoint``, at its midpoint; working
    for ``valid_bars`` bars from the next bar.

    Needs the ``gap_top`` / ``gap_bottom`` metadata of ``fvg_entry_detector`` or ``fvg_detector``;
    opportunities without a gap (other detectors) enter at market (next open)."""

    name = "limit_entry_at_fvg"
    subtype = "limit_order"
    phase = "entry_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        top = opps.meta.get("gap_top")
        bottom = opps.meta.get("gap_bottom")
        if top is None or bottom is None:
            draft.entry_type = draft.fill(ENTRY_MARKET, np.int8)
            return
        edge = np.where(opps.dirs > 0, top, bottom)
        level = (top + bottom) / 2.0 if self.params.entry_at_midpoint else edge
        ok = np.isfinite(level)
        draft.entry_type = np.where(ok, ENTRY_LIMIT, ENTRY_MARKET).astype(np.int8)
        draft.entry_level = np.where(ok, level, np.nan)
        draft.valid_bars = draft.fill(self.params.valid_bars, np.int64)


class LiquidityTargetExitParams(SwingParams):
    target_opposite_liquidity: bool = Field(
        True, description="target the opposite liquidity pool / swing instead of a fixed R multiple"
    )
    stop_below_order_block: bool = Field(
        True, description="stop beyond the active order block (else beyond the last swing)"
    )
    max_ob_age: int = Field(20, ge=1, le=1000, description="order-block search depth in bars")
    tolerance_atr: float = Field(0.1, ge=0, le=10, description="equal highs/lows tolerance in ATRs")
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars (Wilder)")
    stop_buffer_atr: float = Field(0.1, ge=0, le=20, description="stop buffer beyond the level, in ATRs")
    fallback_stop_atr: float = Field(
        2.0, gt=0, le=50, description="stop distance in ATRs when no structure level is below (above)"
    )
    fallback_stop_percent: float = Field(
        1.0, gt=0, le=50, description="stop distance, percent of the close, during the ATR warm-up"
    )
    risk_reward_ratio: float = Field(
        2.0, gt=0, le=100, description="target / stop distance when no liquidity target is used"
    )
    min_reward_risk: float = Field(
        1.0, ge=0, le=100, description="liquidity targets nearer than this x the stop are not used"
    )


@register
class LiquidityTargetExit(PlanningWorker[LiquidityTargetExitParams]):
    """ICT exits: the stop beyond the order block (or the last swing), the target at the opposite liquidity.

    Stop for a long: ``stop_below_order_block`` and an active bullish order block below the close -> its
    low; otherwise the last confirmed swing low below the close; minus ``stop_buffer_atr`` x ATR.  Without
    either the stop is ``fallback_stop_atr`` x ATR (``fallback_stop_percent`` % of the close while the ATR
    is still warming up, and the buffer is 0 then): every opportunity gets a stop and a target.
    Target for a long, with ``target_opposite_liquidity``: the active buy-side pool (equal highs) above
    the close, else the last confirmed swing high above it, if at least ``min_reward_risk`` x the stop
    distance away; otherwise (or without ``target_opposite_liquidity``) ``risk_reward_ratio`` x the stop
    distance.  Shorts mirror (bearish order block high, swing high, sell-side pool)."""

    name = "liquidity_target_exit"
    subtype = "structure_exit"
    phase = "exit_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        p = self.params
        t, d, ref = opps.bars, opps.dirs.astype(float), opps.ref
        s = swings(ctx, p.swing_length)
        atr = ctx.atr(p.atr_period)[t]
        atr_stop = np.where(np.isnan(atr), ref * p.fallback_stop_percent / 100.0, p.fallback_stop_atr * atr)
        atr = np.nan_to_num(atr)
        long = d > 0
        swing_stop = np.where(long, s["last_swing_low"][t], s["last_swing_high"][t])
        with np.errstate(invalid="ignore"):
            level = np.where(d * (ref - swing_stop) > 0, swing_stop, np.nan)
            if p.stop_below_order_block:
                ob = order_blocks(ctx, p.swing_length, p.max_ob_age)
                ob_level = np.where(long, ob["bull_ob_bottom"][t], ob["bear_ob_top"][t])
                level = np.where(d * (ref - ob_level) > 0, ob_level, level)
            stop = d * (ref - level) + p.stop_buffer_atr * atr
            stop = np.where(np.isnan(level), atr_stop, stop)
            tp = p.risk_reward_ratio * stop
            if p.target_opposite_liquidity:
                liq = liquidity(ctx, p.swing_length, p.tolerance_atr, p.atr_period)
                pool = np.where(long, liq["bsl_level"][t], liq["ssl_level"][t])
                swing_tgt = np.where(long, s["last_swing_high"][t], s["last_swing_low"][t])
                swing_tgt = np.where(d * (swing_tgt - ref) > 0, swing_tgt, np.nan)
                target = np.where(d * (pool - ref) > 0, pool, swing_tgt)
                dist = d * (target - ref)
                use = np.isfinite(dist) & (dist >= p.min_reward_risk * stop)
                tp = np.where(use, dist, tp)
        draft.stop_dist = stop
        draft.tp_dist = tp
