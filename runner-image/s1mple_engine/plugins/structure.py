"""Market structure (ICT / SMC) features and the context workers that publish them.

The feature functions are pure, causal and memoized per dataset (``ctx.memo``); context workers publish
them into ``ctx.features`` and the opportunity/planning/execution plugins call the same functions with
their own params, so no plugin depends on a context worker being listed first.

Definitions (standard ones; docs/plugins.md has pictures in words):

* **swing high** with length N: ``high[p]`` strictly greater than the N highs before and the N highs after
  it.  It is only *confirmed* at bar ``p + N`` (the N bars after it must exist), and every feature here
  uses it from its confirmation bar on, never from ``p`` (the classic lookahead trap).  Swing lows mirror.
* **structure break** (BOS): the first close above the most recent confirmed swing high (bullish) or below
  the most recent confirmed swing low (bearish); each swing level breaks at most once.  A break against
  the prevailing structure trend (the direction of the previous break) is a change of character (CHoCH).
* **order block**: the last opposite candle before a structure break: for a bullish break at bar t, the
  last bearish candle (close < open) at or before t-1 and at most ``max_ob_age`` bars back; the zone is
  that candle's [low, high].  It stays the active bullish order block until a close below its low
  (invalidated) or the next bullish break (replaced).  Bearish order blocks mirror.
* **liquidity (equal highs / equal lows)**: two consecutive confirmed swing highs within ``tolerance_atr``
  x ATR of each other form a buy-side liquidity pool at the higher of the two; it is active from the
  second swing's confirmation until a later high trades above it (the pool is *swept*).  Sell-side pools
  from equal lows mirror.
* **regime**: volatile when ATR/close ranks at or above ``volatile_percentile`` of its previous
  ``vol_lookback`` values; otherwise trending when Kaufman's efficiency ratio
  |close[t] - close[t-n]| / sum(|close[k] - close[k-1]|, n bars) is at least ``trend_threshold``;
  otherwise ranging.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from .. import features as F
from ..registration import register
from ..workers import Context, ContextWorker, PluginParams

REGIME_UNKNOWN, REGIME_RANGING, REGIME_TRENDING, REGIME_VOLATILE = -1, 0, 1, 2
REGIME_NAMES = {
    REGIME_UNKNOWN: "unknown",
    REGIME_RANGING: "ranging",
    REGIME_TRENDING: "trending",
    REGIME_VOLATILE: "volatile",
}


# --------------------------------------------------------------------------------------------------------
# helpers


def ffill_index(mask: np.ndarray) -> np.ndarray:
    """Index of the latest True at or before t (-1 before the first)."""
    return np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1))


def take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]`` with NaN where ``idx`` < 0."""
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)


def first_per_group(bars: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The entries of ``bars`` (ascending) that are the first of their ``group`` value run."""
    if not len(bars):
        return bars
    g = group[bars]
    keep = np.ones(len(bars), dtype=bool)
    keep[1:] = g[1:] != g[:-1]
    return bars[keep]


def alive_until(formed: np.ndarray, breach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments start at every ``formed`` bar; within a segment, the first ``breach`` strictly after the
    formation bar ends it.  Returns (alive, first_breach): alive[t] = t is in a segment not yet breached
    at or before t; first_breach[t] = t is the breach that ended its segment."""
    n = len(formed)
    seg = ffill_index(formed)
    b = breach & (np.arange(n) > seg) & (seg >= 0)
    cs = np.cumsum(b)
    since: np.ndarray = cs - np.where(seg >= 0, cs[np.maximum(seg, 0)], 0)
    alive = (seg >= 0) & (since == 0)
    return alive, b & (since == 1)


# --------------------------------------------------------------------------------------------------------
# swings and structure


def swings(ctx: Context, length: int) -> dict[str, np.ndarray]:
    """Confirmed swings of ``length`` bars each side, and structure breaks (memoized).

    Keys: ``swing_high_confirmed`` / ``swing_low_confirmed`` (bool at the confirmation bar p+N),
    ``last_swing_high`` / ``last_swing_low`` (price of the latest confirmed swing, NaN before any),
    ``last_swing_high_bar`` / ``last_swing_low_bar`` (its pivot bar p, -1 before any), ``bos_bull`` /
    ``bos_bear`` (bool at the break bar), ``structure_trend`` (+1 after a bullish break, -1 after a
    bearish one, 0 before any), ``choch_bull`` / ``choch_bear`` (breaks against the previous trend).
    """

    def compute() -> dict[str, np.ndarray]:
        d = ctx.data
        h, lo, c = d.high, d.low, d.close
        n, N = len(c), length
        out: dict[str, np.ndarray] = {}
        for side, x, sign in (("high", h, 1.0), ("low", lo, -1.0)):
            y = sign * x  # lows are swing "highs" of -low
            conf = np.zeros(n, dtype=bool)
            if n > 2 * N:
                rm = F.rolling_max(y, N)  # max of y[t-N+1 .. t]
                left = rm[N - 1 : n - N - 1]  # max of y[p-N .. p-1] for p = N .. n-N-1
                right = rm[2 * N :]  # max of y[p+1 .. p+N]
                p = np.arange(N, n - N)
                piv = (y[p] > left) & (y[p] > right)
                conf[p[piv] + N] = True
            last_bar = np.where(conf, np.arange(n) - N, -1)
            last_bar = np.maximum.accumulate(last_bar)
            out[f"swing_{side}_confirmed"] = conf
            out[f"last_swing_{side}_bar"] = last_bar
            out[f"last_swing_{side}"] = take(x, last_bar)
        # structure breaks: the first close beyond the level known before the bar
        for side, key, sign in (("bull", "high", 1.0), ("bear", "low", -1.0)):
            lvl_prev = F.shift(out[f"last_swing_{key}"], 1)
            sid_prev = F.shift(out[f"last_swing_{key}_bar"].astype(float), 1, fill=-1.0)
            with np.errstate(invalid="ignore"):
                cross = np.flatnonzero(sign * c > sign * lvl_prev)
            first = first_per_group(cross, sid_prev)
            mask = np.zeros(n, dtype=bool)
            mask[first] = True
            out[f"bos_{side}"] = mask
        ev = np.where(out["bos_bull"], 1, np.where(out["bos_bear"], -1, 0)).astype(np.int8)
        # a bar can break both sides only on an outside bar; then the close decides (close vs open)
        both = out["bos_bull"] & out["bos_bear"]
        ev[both] = np.where(c[both] >= d.open[both], 1, -1)
        idx = ffill_index(ev != 0)
        trend = np.where(idx >= 0, ev[np.maximum(idx, 0)], 0).astype(np.int8)
        prev_trend = np.concatenate(([0], trend[:-1])).astype(np.int8)
        out["structure_trend"] = trend
        out["choch_bull"] = (ev == 1) & (prev_trend == -1)
        out["choch_bear"] = (ev == -1) & (prev_trend == 1)
        return out

    return ctx.memo(("ict_swings", length), compute)


def order_blocks(ctx: Context, length: int, max_ob_age: int) -> dict[str, np.ndarray]:
    """Active order blocks after structure breaks (memoized).

    Keys: ``bull_ob_top`` / ``bull_ob_bottom`` (zone of the active bullish order block at t, NaN if none),
    ``bull_ob_bar`` (its candle, -1), ``bull_ob_formed`` (bool at the break bar that made it), and the
    ``bear_ob_*`` mirrors."""

    def compute() -> dict[str, np.ndarray]:
        d = ctx.data
        o, h, lo, c = d.open, d.high, d.low, d.close
        n = len(c)
        s = swings(ctx, length)
        out: dict[str, np.ndarray] = {}
        for side, opposite, brk in (("bull", c < o, s["bos_bull"]), ("bear", c > o, s["bos_bear"])):
            last_opp = np.concatenate(([-1], ffill_index(opposite)[:-1]))  # latest opposite candle <= t-1
            ok = brk & (last_opp >= 0) & (np.arange(n) - last_opp <= max_ob_age)
            ob_at = np.where(ok, last_opp, -1)
            seg = ffill_index(ok)
            ob_bar = np.where(seg >= 0, ob_at[np.maximum(seg, 0)], -1)
            top, bottom = take(h, ob_bar), take(lo, ob_bar)
            with np.errstate(invalid="ignore"):
                breach = c < bottom if side == "bull" else c > top
            alive, _ = alive_until(ok, breach)
            out[f"{side}_ob_top"] = np.where(alive, top, np.nan)
            out[f"{side}_ob_bottom"] = np.where(alive, bottom, np.nan)
            out[f"{side}_ob_bar"] = np.where(alive, ob_bar, -1)
            out[f"{side}_ob_formed"] = ok
        return out

    return ctx.memo(("ict_order_blocks", length, max_ob_age), compute)


def liquidity(ctx: Context, length: int, tolerance_atr: float, atr_period: int = 14) -> dict[str, np.ndarray]:
    """Equal-highs (buy-side) and equal-lows (sell-side) liquidity pools (memoized).

    Keys: ``bsl_level`` / ``ssl_level`` (the active pool's price at t, NaN if none or swept),
    ``bsl_formed`` / ``ssl_formed`` (bool at the bar a pool forms), ``bsl_swept`` / ``ssl_swept`` (bool at
    the bar a high trades above the buy-side pool / a low below the sell-side pool)."""

    def compute() -> dict[str, np.ndarray]:
        d = ctx.data
        n = len(d)
        s = swings(ctx, length)
        atr = ctx.atr(atr_period)
        out: dict[str, np.ndarray] = {}
        for pool, key, x, sign in (("bsl", "high", d.high, 1.0), ("ssl", "low", d.low, -1.0)):
            cb = np.flatnonzero(s[f"swing_{key}_confirmed"])  # confirmation bars
            prices = s[f"last_swing_{key}"][cb]
            formed = np.zeros(n, dtype=bool)
            level_at = np.full(n, np.nan)
            if len(cb) > 1:
                tol = tolerance_atr * atr[cb[1:]]
                with np.errstate(invalid="ignore"):
                    eq = np.abs(prices[1:] - prices[:-1]) <= tol
                bars = cb[1:][eq]
                formed[bars] = True
                pair = np.stack((prices[1:][eq], prices[:-1][eq]))
                level_at[bars] = sign * np.max(sign * pair, axis=0)
            seg = ffill_index(formed)
            level = take(level_at, seg)
            with np.errstate(invalid="ignore"):
                breach = sign * x > sign * level
            alive, swept = alive_until(formed, breach)
            out[f"{pool}_level"] = np.where(alive, level, np.nan)
            out[f"{pool}_formed"] = formed
            out[f"{pool}_swept"] = swept
        return out

    return ctx.memo(("ict_liquidity", length, float(tolerance_atr), atr_period), compute)


def regime(
    ctx: Context,
    er_period: int,
    trend_threshold: float,
    atr_period: int,
    vol_lookback: int,
    volatile_percentile: float,
) -> dict[str, np.ndarray]:
    """Regime codes per bar (memoized): ``regime`` (-1 unknown, 0 ranging, 1 trending, 2 volatile),
    ``regime_dir`` (sign of the move over ``er_period``), ``efficiency_ratio``, ``volatility_rank`` (0..1)."""

    def compute() -> dict[str, np.ndarray]:
        c = ctx.data.close
        n = len(c)
        absdiff = np.abs(np.diff(c, prepend=c[0]))
        path = np.full(n, np.nan)
        move = np.full(n, np.nan)
        if n > er_period:
            cs = np.cumsum(absdiff)
            path[er_period:] = cs[er_period:] - cs[:-er_period]
            move[er_period:] = c[er_period:] - c[:-er_period]
        with np.errstate(invalid="ignore", divide="ignore"):
            er = np.where(path > 0, np.abs(move) / path, 0.0)
        er[np.isnan(path)] = np.nan
        rank = ctx.memo(
            ("atr_pct_rank", atr_period, vol_lookback),
            lambda: F.rolling_rank(ctx.atr(atr_period) / c, vol_lookback),
        )
        code = np.full(n, REGIME_UNKNOWN, dtype=np.int8)
        with np.errstate(invalid="ignore"):
            known = ~np.isnan(er) & ~np.isnan(rank)
            code[known] = REGIME_RANGING
            code[known & (er >= trend_threshold)] = REGIME_TRENDING
            code[known & (rank >= volatile_percentile / 100.0)] = REGIME_VOLATILE
        return {
            "regime": code,
            "regime_dir": np.sign(np.nan_to_num(move)).astype(np.int8),
            "efficiency_ratio": er,
            "volatility_rank": rank,
        }

    key = ("regime", er_period, float(trend_threshold), atr_period, vol_lookback, float(volatile_percentile))
    return ctx.memo(key, compute)


# --------------------------------------------------------------------------------------------------------
# context workers


class SwingParams(PluginParams):
    swing_length: int = Field(
        3, ge=1, le=100, description="bars on each side a swing high/low must exceed (confirmed N bars later)"
    )


@register
class SwingStructure(ContextWorker[SwingParams]):
    """Swing highs/lows (confirmed ``swing_length`` bars after the pivot) and structure breaks (BOS/CHoCH).

    Publishes ``swing_high_confirmed``, ``swing_low_confirmed``, ``last_swing_high``, ``last_swing_low``
    (prices), ``last_swing_high_bar``, ``last_swing_low_bar`` (pivot bars), ``bos_bull``, ``bos_bear``,
    ``choch_bull``, ``choch_bear`` (bools at the break bar) and ``structure_trend`` (+1/-1/0).
    A swing is used only from its confirmation bar on."""

    name = "swing_structure"
    subtype = "market_structure"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        return dict(swings(ctx, self.params.swing_length))


class OrderBlocksParams(SwingParams):
    max_ob_age: int = Field(
        20, ge=1, le=1000, description="bars back from the break in which the opposite candle is sought"
    )


@register
class OrderBlocks(ContextWorker[OrderBlocksParams]):
    """Order blocks: the last opposite candle before a structure break, active until a close through it.

    Publishes ``bull_ob_top``, ``bull_ob_bottom`` (price zone, NaN when no active bullish order block),
    ``bull_ob_bar``, ``bull_ob_formed`` and the ``bear_ob_*`` mirrors."""

    name = "order_blocks"
    subtype = "market_structure"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        return dict(order_blocks(ctx, self.params.swing_length, self.params.max_ob_age))


class LiquidityLevelsParams(SwingParams):
    tolerance_atr: float = Field(
        0.1, ge=0, le=10, description="max price difference of 'equal' swings, in ATRs"
    )
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars for the tolerance")


@register
class LiquidityLevels(ContextWorker[LiquidityLevelsParams]):
    """Liquidity pools: equal highs (buy-side) / equal lows (sell-side) within a tolerance, until swept.

    Two consecutive confirmed swing highs whose prices differ by at most ``tolerance_atr`` x ATR form a
    buy-side pool at the higher one.  Publishes ``bsl_level``, ``ssl_level`` (prices, NaN when no active
    pool), ``bsl_formed``, ``ssl_formed``, ``bsl_swept``, ``ssl_swept`` (bools)."""

    name = "liquidity_levels"
    subtype = "liquidity"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        p = self.params
        return dict(liquidity(ctx, p.swing_length, p.tolerance_atr, p.atr_period))


class RegimeParams(PluginParams):
    er_period: int = Field(20, ge=2, le=1000, description="bars in the efficiency ratio")
    trend_threshold: float = Field(
        0.3, gt=0, le=1, description="efficiency ratio (0..1) at or above which the market is trending"
    )
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars for volatility")
    vol_lookback: int = Field(100, ge=10, le=5000, description="bars of history ranking ATR/close")
    volatile_percentile: float = Field(
        90.0, ge=50, le=100, description="percentile (0..100) of ATR/close at or above which it is volatile"
    )


def regime_of(ctx: Context, p: RegimeParams) -> dict[str, np.ndarray]:
    return regime(ctx, p.er_period, p.trend_threshold, p.atr_period, p.vol_lookback, p.volatile_percentile)


@register
class RegimeClassifier(ContextWorker[RegimeParams]):
    """Market regime per bar: volatile (ATR/close in its top percentile), trending (efficiency ratio at or
    above a threshold) or ranging.

    Publishes ``regime`` (-1 unknown during warm-up, 0 ranging, 1 trending, 2 volatile), ``regime_dir``
    (+1/-1: direction of the move over ``er_period``), ``efficiency_ratio`` (0..1) and
    ``volatility_rank`` (0..1)."""

    name = "regime_classifier"
    subtype = "regime"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        return dict(regime_of(ctx, self.params))
