"""Opportunity workers, subtype ``momentum_signal``: trend pullbacks and rate-of-change bursts."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .. import features as F
from ..registration import register
from ..workers import Context, OpportunityWorker, PluginParams, Signals
from .opportunity import FastSlowParams


class TrendFollowerParams(FastSlowParams):
    fast: int = Field(20, ge=2, le=1000, description="fast moving-average length in bars")
    slow: int = Field(50, ge=3, le=2000, description="slow moving-average length in bars (> fast)")
    kind: Literal["ema", "sma"] = Field("ema", description="moving-average type: ema|sma")
    slope_bars: int = Field(5, ge=1, le=500, description="bars over which the slow average must rise (fall)")
    allow_short: bool = Field(True, description="also signal pullbacks in downtrends (short)")


@register
class TrendFollower(OpportunityWorker[TrendFollowerParams]):
    """Trend pullback: in an uptrend, long on the first close back above the fast average after a close
    at or below it; mirrored for downtrends (short).

    Uptrend at bar t: fast[t] > slow[t] and slow[t] > slow[t - slope_bars] (the slow average rising).
    Signal at t: close[t-1] <= fast[t-1] and close[t] > fast[t].  Its ``bias`` (CHAIN_THROUGH
    confirmation) is the trend itself: +1 in an uptrend, -1 in a downtrend, 0 otherwise."""

    name = "trend_follower"
    subtype = "momentum_signal"

    def _trend(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        f = ctx.ema if p.kind == "ema" else ctx.sma
        fast, slow = f(p.fast), f(p.slow)
        with np.errstate(invalid="ignore"):
            prev_slow = F.shift(slow, p.slope_bars)
            up = (fast > slow) & (slow > prev_slow)
            dn = (fast < slow) & (slow < prev_slow)
        return np.where(up, 1, np.where(dn, -1, 0)).astype(np.int8), fast

    def detect(self, ctx: Context) -> Signals:
        c = ctx.data.close
        trend, fast = self._trend(ctx)
        with np.errstate(invalid="ignore"):
            c1, f1 = F.shift(c, 1), F.shift(fast, 1)
            long = (trend == 1) & (c1 <= f1) & (c > fast)
            short = (trend == -1) & (c1 >= f1) & (c < fast)
        if not self.params.allow_short:
            short[:] = False
        return Signals.from_masks(long, short)

    def bias(self, ctx: Context) -> np.ndarray:
        return self._trend(ctx)[0]


class MomentumScannerParams(PluginParams):
    period: int = Field(10, ge=1, le=1000, description="bars over which the move is measured")
    threshold_atr: float = Field(3.0, gt=0, le=100, description="move, in ATRs, that counts as momentum")
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars (Wilder)")
    allow_short: bool = Field(True, description="also signal downside momentum (short)")
    confirm_window: int = Field(
        5, ge=0, le=500, description="bars a burst keeps confirming another worker's opportunity"
    )


@register
class MomentumScanner(OpportunityWorker[MomentumScannerParams]):
    """Momentum burst: the move over the last ``period`` bars, in ATRs, crosses above +``threshold_atr``
    (long) or below -``threshold_atr`` (short).

    move[t] = (close[t] - close[t-period]) / ATR[t] (Wilder ATR of ``atr_period`` bars): a volatility-scaled
    rate of change, so one threshold means the same on daily stocks and hourly FX.  Signal at the
    crossing bar only."""

    name = "momentum_scanner"
    subtype = "momentum_signal"

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        c = ctx.data.close
        move = ctx.memo(
            ("move_atr", p.period, p.atr_period), lambda: (c - F.shift(c, p.period)) / ctx.atr(p.atr_period)
        )
        prev = F.shift(move, 1)
        thr = p.threshold_atr
        with np.errstate(invalid="ignore"):
            long = (move > thr) & (prev <= thr)
            short = (move < -thr) & (prev >= -thr)
        if not p.allow_short:
            short[:] = False
        return Signals.from_masks(long, short)
