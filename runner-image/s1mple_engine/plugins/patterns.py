"""Opportunity workers, subtype ``technical_pattern``: fair value gap retests and channel breakouts.

(``fvg_entry_detector``, the FVG *formation* detector, lives in :mod:`.opportunity`.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field

from .. import features as F
from ..registration import register
from ..workers import Context, OpportunityWorker, PluginParams, Signals


def first_touch(values: np.ndarray, starts: np.ndarray, levels: np.ndarray, window: int, below: bool):
    """For each start bar s: the first bar k in (s, s+window] with values[k] <= level (``below``) or >= level;
    returns (k, found) arrays (k undefined where not found)."""
    n = len(values)
    if not len(starts):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
    pad = np.concatenate((values, np.full(window, np.nan)))
    win = sliding_window_view(pad[1:], window)[starts]  # row i: values[s+1 .. s+window]
    with np.errstate(invalid="ignore"):
        hit = win <= levels[:, None] if below else win >= levels[:, None]
    found = hit.any(axis=1)
    k = starts + 1 + np.argmax(hit, axis=1)
    return np.minimum(k, n - 1), found


class FvgDetectorParams(PluginParams):
    min_gap_atr: float = Field(
        0.1, ge=0, le=20, description="minimum gap size in ATRs (0 = any positive gap)"
    )
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars (Wilder)")
    max_age: int = Field(20, ge=1, le=500, description="bars after the gap in which a retest counts")
    touch: Literal["edge", "midpoint"] = Field(
        "edge", description="retest level: the gap's near edge or its midpoint"
    )
    confirm_window: int = Field(
        3, ge=0, le=500, description="bars a retest keeps confirming another worker's opportunity"
    )


@register
class FvgDetector(OpportunityWorker[FvgDetectorParams]):
    """Fair value gap retest: a signal when price first returns into a fresh FVG and the gap holds.

    A bullish FVG forms at bar g when low[g] > high[g-2] by at least ``min_gap_atr`` x ATR[g] (zone
    [high[g-2], low[g]]).  Within the next ``max_age`` bars, the first bar k whose low reaches the zone's
    top (``touch: edge``) or its midpoint (``touch: midpoint``) signals long at k if close[k] stays at or
    above the zone's bottom (otherwise the gap failed: no signal).  Bearish mirrors.  The signal is at the
    retest bar, never at the gap bar: it needs bars after g.  Metadata: ``gap_top``, ``gap_bottom``.
    """

    name = "fvg_detector"
    subtype = "technical_pattern"

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        d = ctx.data
        h, lo, c = d.high, d.low, d.close
        atr = ctx.atr(p.atr_period)
        h2, l2 = F.shift(h, 2), F.shift(lo, 2)
        with np.errstate(invalid="ignore"):
            thr = np.maximum(p.min_gap_atr * atr, 1e-12)
            bull_g = np.flatnonzero(lo - h2 >= thr)
            bear_g = np.flatnonzero(l2 - h >= thr)
        bars, dirs, tops, bottoms = [], [], [], []
        for g, sign in ((bull_g, 1), (bear_g, -1)):
            top = lo[g] if sign > 0 else l2[g]
            bottom = h2[g] if sign > 0 else h[g]
            edge = top if sign > 0 else bottom
            level = edge if p.touch == "edge" else (top + bottom) / 2.0
            k, found = first_touch(lo if sign > 0 else h, g, level, p.max_age, below=sign > 0)
            held = c[k] >= bottom if sign > 0 else c[k] <= top
            ok = found & held
            bars.append(k[ok])
            dirs.append(np.full(int(ok.sum()), sign, np.int8))
            tops.append(top[ok])
            bottoms.append(bottom[ok])
        b = np.concatenate(bars)
        dr = np.concatenate(dirs)
        t = np.concatenate(tops)
        bt = np.concatenate(bottoms)
        order = np.lexsort((-dr, b))  # by bar; a long first on a (rare) two-sided bar
        b, dr, t, bt = b[order], dr[order], t[order], bt[order]
        keep = np.ones(len(b), dtype=bool)
        keep[1:] = b[1:] != b[:-1]  # one signal per bar (two gaps retested together: the first)
        return Signals(b[keep].astype(np.int64), dr[keep], {"gap_top": t[keep], "gap_bottom": bt[keep]})


class BreakoutScannerParams(PluginParams):
    lookback: int = Field(20, ge=2, le=1000, description="bars in the channel (excluding the current)")
    min_breakout_atr: float = Field(
        0.0, ge=0, le=20, description="close beyond the channel by at least this many ATRs"
    )
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars (Wilder)")
    require_volume_confirmation: bool = Field(False, description="also require above-average volume")
    volume_factor: float = Field(1.5, gt=0, le=20, description="volume multiple of its average")
    volume_lookback: int = Field(20, ge=2, le=500, description="bars in the average volume")
    allow_short: bool = Field(True, description="also signal downside breakouts (short)")
    confirm_window: int = Field(
        5, ge=0, le=500, description="bars a breakout keeps confirming another worker's opportunity"
    )


@register
class BreakoutScanner(OpportunityWorker[BreakoutScannerParams]):
    """Channel breakout: the first close above the highest high (below the lowest low) of the previous
    ``lookback`` bars, by at least ``min_breakout_atr`` x ATR.

    Optional volume confirmation: the breakout bar's volume >= ``volume_factor`` x the average volume of
    the ``volume_lookback`` bars before it.  Long above, short below (``allow_short``)."""

    name = "breakout_scanner"
    subtype = "technical_pattern"

    def detect(self, ctx: Context) -> Signals:
        p = self.params
        d = ctx.data
        h, lo, c = d.high, d.low, d.close
        L = p.lookback
        hh = F.shift(ctx.memo(("rollmax", "high", L), lambda: F.rolling_max(h, L)), 1)
        ll = F.shift(ctx.memo(("rollmin", "low", L), lambda: F.rolling_min(lo, L)), 1)
        buf = p.min_breakout_atr * ctx.atr(p.atr_period) if p.min_breakout_atr > 0 else 0.0
        with np.errstate(invalid="ignore"):
            up = c > hh + buf
            dn = c < ll - buf
            if p.require_volume_confirmation:
                avg = F.shift(ctx.sma(p.volume_lookback, "volume"), 1)
                vol_ok = d.volume >= p.volume_factor * avg
                up &= vol_ok
                dn &= vol_ok
        up[1:] &= ~up[:-1]
        dn[1:] &= ~dn[:-1]
        if not p.allow_short:
            dn[:] = False
        return Signals.from_masks(up, dn & ~up)
