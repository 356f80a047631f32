"""Opportunity workers, subtype ``mean_reversion``: stretched prices and RSI turns."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, model_validator

from .. import features as F
from ..registration import register
from ..workers import Context, OpportunityWorker, PluginParams, Signals


def zscore(ctx: Context, n: int) -> np.ndarray:
    """(close - SMA(n)) / std(n) (population std of the same n closes); NaN in the warm-up or flat windows."""

    def compute() -> np.ndarray:
        c = ctx.data.close
        out = np.full(len(c), np.nan)
        if n <= len(c):
            sd = sliding_window_view(c, n).std(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = (c[n - 1 :] - ctx.sma(n)[n - 1 :]) / sd
            out[n - 1 :] = np.where(sd > 0, z, np.nan)
        return out

    return ctx.memo(("zscore", n), compute)


class OversoldDetectorParams(PluginParams):
    period: int = Field(20, ge=3, le=1000, description="bars in the mean and standard deviation")
    z_threshold: float = Field(2.0, gt=0, le=10, description="stretch in standard deviations")
    allow_short: bool = Field(True, description="also signal overbought (short)")


@register
class OversoldDetector(OpportunityWorker[OversoldDetectorParams]):
    """Oversold (overbought) detector: long on the bar the close's z-score against its ``period``-bar mean
    first drops to -``z_threshold`` or below; short when it first rises to +``z_threshold`` (``allow_short``).

    z[t] = (close[t] - SMA(period)[t]) / std(period)[t], in standard deviations (Bollinger-band units)."""

    name = "oversold_detector"
    subtype = "mean_reversion"

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        z = zscore(ctx, p.period)
        prev = F.shift(z, 1)
        with np.errstate(invalid="ignore"):
            long = (z <= -p.z_threshold) & (prev > -p.z_threshold)
            short = (z >= p.z_threshold) & (prev < p.z_threshold)
        if not p.allow_short:
            short[:] = False
        return Signals.from_masks(long, short)


class RsiReversalParams(PluginParams):
    period: int = Field(14, ge=2, le=1000, description="RSI length in bars (Wilder)")
    oversold: float = Field(30.0, gt=0, lt=100, description="RSI level (0..100) of oversold")
    overbought: float = Field(70.0, gt=0, lt=100, description="RSI level (0..100) of overbought")
    allow_short: bool = Field(True, description="also signal overbought reversals (short)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.oversold >= self.overbought:
            raise ValueError(f"oversold ({self.oversold}) must be below overbought ({self.overbought})")
        return self


@register
class RsiReversal(OpportunityWorker[RsiReversalParams]):
    """RSI reversal: long when RSI crosses back up through ``oversold`` (was below it on the previous bar);
    short when it crosses back down through ``overbought`` (``allow_short``).  RSI is Wilder's, 0..100."""

    name = "rsi_reversal"
    subtype = "mean_reversion"

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        r = ctx.rsi(p.period)
        prev = F.shift(r, 1)
        with np.errstate(invalid="ignore"):
            long = (prev < p.oversold) & (r >= p.oversold)
            short = (prev > p.overbought) & (r <= p.overbought)
        if not p.allow_short:
            short[:] = False
        return Signals.from_masks(long, short)
