"""Opportunity workers: causal, vectorized signal detection."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from .. import features as F
from ..registration import register
from ..workers import Context, OpportunityWorker, PluginParams, Signals

#: relative difference under which two moving averages are equal (rounding of a mean of up to thousands
#: of prices stays below ~1e-13; genuine differences at a cross are far larger)
CROSS_TOLERANCE = 1e-12


class FastSlowParams(PluginParams):
    """Two moving-average lengths, the fast one shorter (subclasses give the bounds and defaults)."""

    fast: int
    slow: int

    @model_validator(mode="after")
    def _fast_below_slow(self):
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class MaCrossoverParams(FastSlowParams):
    fast: int = Field(10, ge=1, le=1000, description="fast moving-average length in bars")
    slow: int = Field(20, ge=2, le=2000, description="slow moving-average length in bars (> fast)")
    kind: Literal["sma", "ema"] = Field("sma", description="moving-average type: sma|ema")
    source: Literal["close", "open", "hl2", "hlc3"] = Field("close", description="price series averaged")


@register
class MaCrossover(OpportunityWorker[MaCrossoverParams]):
    """Moving-average crossover: long on a golden cross, short on a death cross.

    A cross at bar t means fast[t-1] < slow[t-1] and fast[t] > slow[t] (golden; mirrored for death),
    both averages defined at t-1 and t; the same strict rule as backtesting.py's ``crossover``.
    Averages within :data:`CROSS_TOLERANCE` (relative) of each other are equal: floating point leaves a
    difference of a few ulps (-2e-16) where they are equal in exact arithmetic, which must not count as
    being below (a touch is not a cross).  Its ``bias`` (for CHAIN_THROUGH confirmation) is the side of
    the fast average: +1 above, -1 below, 0 equal.
    """

    name = "ma_crossover"
    subtype = "trend_following"

    def _mas(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        f = ctx.sma if p.kind == "sma" else ctx.ema
        return f(p.fast, p.source), f(p.slow, p.source)

    def spread(self, ctx: Context) -> np.ndarray:
        """fast - slow with differences below the rounding tolerance set to 0 (NaN during warm-up)."""
        fast, slow = self._mas(ctx)
        d = fast - slow
        with np.errstate(invalid="ignore"):
            d[np.abs(d) <= CROSS_TOLERANCE * np.maximum(np.abs(fast), np.abs(slow))] = 0.0
        return d

    def detect(self, ctx: Context) -> Signals:
        fast, slow = self._mas(ctx)
        d = fast - slow  # NaN during warm-up: comparisons are False
        prev, cur = d[:-1], d[1:]
        with np.errstate(invalid="ignore"):
            bars = np.flatnonzero(((prev < 0) & (cur > 0)) | ((prev > 0) & (cur < 0))) + 1
        if len(bars):  # rounding only adds crosses (a tie is on neither side): drop those touching a tie
            both = np.concatenate((bars - 1, bars))
            tie = np.abs(d[both]) <= CROSS_TOLERANCE * np.maximum(np.abs(fast[both]), np.abs(slow[both]))
            bars = bars[~(tie[: len(bars)] | tie[len(bars) :])]
        dirs = np.where(d[bars] > 0, 1, -1).astype(np.int8)
        return Signals(bars.astype(np.int64), dirs, {})

    def bias(self, ctx: Context) -> np.ndarray:
        return np.sign(np.nan_to_num(self.spread(ctx))).astype(np.int8)


class FvgEntryDetectorParams(PluginParams):
    min_gap_size: float = Field(
        5.0,
        ge=0,
        le=10_000,
        description="minimum gap in basis points of the previous close (1 bp = 0.01 %)",
    )
    require_structure_break: bool = Field(
        False,
        description="also require a break of structure by the gap's candles (see structure_mode)",
    )
    require_volume_confirmation: bool = Field(
        False, description="also require the displacement candle's volume >= volume_factor x its average"
    )
    structure_lookback: int = Field(
        10, ge=2, le=500, description="bars before the gap that define structure (structure_mode range)"
    )
    structure_mode: Literal["swing", "range"] = Field(
        "swing",
        description="range: close beyond the structure_lookback bars' high/low; swing: a swing-based "
        "break of structure (BOS) in one of the gap's three candles",
    )
    swing_length: int = Field(3, ge=1, le=100, description="bars each side of a swing (structure_mode swing)")
    volume_factor: float = Field(
        1.5, gt=0, le=20, description="volume multiple of the volume_lookback average"
    )
    volume_lookback: int = Field(20, ge=2, le=500, description="bars in the average volume (before t-1)")
    confirm_window: int = Field(
        5,
        ge=0,
        le=500,
        description="bars an FVG keeps confirming another worker's opportunity (CHAIN_THROUGH)",
    )


@register
class FvgEntryDetector(OpportunityWorker[FvgEntryDetectorParams]):
    """Fair value gap (three-candle imbalance) detector.

    A bullish FVG completes at bar t when low[t] > high[t-2] (the gap between candle t-2's high and
    candle t's low, left by the displacement candle t-1); bearish when high[t] < low[t-2].  Gap size is
    measured in basis points of close[t-1] (1 bp = 0.01 %).  Metadata: ``gap_top``, ``gap_bottom``.

    ``require_structure_break``: with ``structure_mode: swing`` (default, the ICT definition) one of the
    gap's three candles broke structure: a close beyond a confirmed swing (``swing_structure``, length
    ``swing_length``; a swing is confirmed ``swing_length`` bars after its pivot); with
    ``structure_mode: range``, close[t] is beyond the high (low) of the ``structure_lookback`` bars before
    the gap.
    """

    name = "fvg_entry_detector"
    subtype = "technical_pattern"

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        d = ctx.data
        h, lo, c, v = d.high, d.low, d.close, d.volume
        n = len(c)
        h2, l2, c1 = F.shift(h, 2), F.shift(lo, 2), F.shift(c, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            bull_gap = (lo - h2) / c1 * 1e4
            bear_gap = (l2 - h) / c1 * 1e4
            thr = max(p.min_gap_size, 1e-12)
            bull = bull_gap >= thr
            bear = bear_gap >= thr
            if p.require_structure_break and p.structure_mode == "swing":
                from .structure import swings

                s = swings(ctx, p.swing_length)
                # the displacement broke structure: a bullish (bearish) BOS at bar t-2, t-1 or t
                bos_b = s["bos_bull"].astype(float)
                bos_s = s["bos_bear"].astype(float)
                bull &= (bos_b + F.shift(bos_b, 1, 0.0) + F.shift(bos_b, 2, 0.0)) > 0
                bear &= (bos_s + F.shift(bos_s, 1, 0.0) + F.shift(bos_s, 2, 0.0)) > 0
            elif p.require_structure_break:
                # structure: the L bars before the gap's first candle (t-2): indexes t-2-L .. t-3
                hh = F.shift(
                    ctx.memo(
                        ("rollmax", "high", p.structure_lookback),
                        lambda: F.rolling_max(h, p.structure_lookback),
                    ),
                    3,
                )
                ll = F.shift(
                    ctx.memo(
                        ("rollmin", "low", p.structure_lookback),
                        lambda: F.rolling_min(lo, p.structure_lookback),
                    ),
                    3,
                )
                bull &= c > hh
                bear &= c < ll
            if p.require_volume_confirmation:
                avg = F.shift(ctx.sma(p.volume_lookback, "volume"), 2)  # average of the bars before t-1
                ok = F.shift(v, 1) >= p.volume_factor * avg
                bull &= ok
                bear &= ok
        bull[: min(2, n)] = False
        bear[: min(2, n)] = False
        top = np.where(bull, lo, l2)
        bottom = np.where(bull, h2, h)
        return Signals.from_masks(bull, bear & ~bull, {"gap_top": top, "gap_bottom": bottom})
