"""Context workers on constructed series: swings (confirmed N bars late), structure breaks, order blocks,
equal-highs/lows liquidity, regimes - each shown firing and not firing."""

from __future__ import annotations

import numpy as np

from s1mple_engine.plugins.structure import (
    REGIME_RANGING,
    REGIME_TRENDING,
    REGIME_UNKNOWN,
    REGIME_VOLATILE,
    liquidity,
    order_blocks,
    swings,
)

from .helpers import at, bars, ctx, plugin

# highs: a swing high of 15 at bar 3, a higher one (16) at bar 10; lows 2 below the highs
HIGHS = [10, 11, 12, 15, 12, 11, 10, 11, 12, 13, 16, 14, 13, 12, 13, 14, 15, 17]


def rising_rows(highs):
    return [(h - 1, h, h - 2, h - 0.5) for h in highs]  # bullish candles


def test_swing_high_is_confirmed_n_bars_after_the_pivot():
    s = swings(ctx(bars(rising_rows(HIGHS))), 2)
    assert at(s["swing_high_confirmed"]) == [5, 12]  # pivots at 3 and 10, each known 2 bars later
    assert np.isnan(s["last_swing_high"][:5]).all()  # not usable at the pivot bar: that would be lookahead
    assert s["last_swing_high"][5:12].tolist() == [15.0] * 7 and s["last_swing_high"][12] == 16.0
    assert s["last_swing_high_bar"][5] == 3 and s["last_swing_high_bar"][12] == 10
    assert at(s["swing_low_confirmed"]) == [8, 15]  # lows 8 (bar 6) and 10 (bar 13)


def test_swing_needs_strictly_higher_than_both_sides():
    flat_top = [10, 11, 15, 15, 11, 10, 9, 8]  # two equal highs next to each other: neither is a pivot
    s = swings(ctx(bars(rising_rows(flat_top))), 2)
    assert at(s["swing_high_confirmed"]) == []


def test_structure_break_first_close_beyond_each_level_once():
    s = swings(ctx(bars(rising_rows(HIGHS))), 2)
    # bar 10 closes 15.5 > 15 (the swing confirmed at 5); bar 11 closes above 15 again: not a new break;
    # bar 17 closes 16.5 > 16 (the swing confirmed at 12)
    assert at(s["bos_bull"]) == [10, 17]
    assert at(s["bos_bear"]) == []
    assert s["structure_trend"][9] == 0 and (s["structure_trend"][10:] == 1).all()
    assert not s["choch_bull"].any()  # the first break has no prior trend to change


def test_bearish_break_after_bullish_is_a_change_of_character():
    highs = HIGHS + [14, 12, 9, 7]  # then a collapse through the swing low of 10 (bar 13)
    s = swings(ctx(bars(rising_rows(highs))), 2)
    assert at(s["bos_bear"]) == [20]  # close 8.5 < 10
    assert at(s["choch_bear"]) == [20] and s["structure_trend"][20] == -1


def test_order_block_is_the_last_bearish_candle_before_the_break():
    rows = rising_rows(HIGHS)
    rows[8] = (12.5, 13.0, 10.0, 10.5)  # bar 8: a bearish candle (close < open), zone [10, 13]
    ob = order_blocks(ctx(bars(rows)), 2, 20)
    assert at(ob["bull_ob_formed"]) == [10, 17]  # made by the breaks at bars 10 and 17
    assert ob["bull_ob_bar"][10] == 8 and ob["bull_ob_bar"][17] == 8  # still the last bearish candle
    assert (ob["bull_ob_top"][10], ob["bull_ob_bottom"][10]) == (13.0, 10.0)
    assert np.isnan(ob["bull_ob_top"][:10]).all()  # not before the break
    assert not ob["bear_ob_formed"].any()


def test_order_block_too_old_or_invalidated():
    rows = rising_rows(HIGHS)
    rows[2] = (12.5, 13.0, 10.0, 10.5)  # bearish candle 8 bars before the break
    assert not order_blocks(ctx(bars(rows)), 2, 5)["bull_ob_formed"].any()  # searched only 5 bars back
    ob = order_blocks(ctx(bars(rows)), 2, 20)
    assert ob["bull_ob_bar"][10] == 2
    rows = rising_rows(HIGHS)
    rows[8] = (12.5, 13.0, 10.0, 10.5)
    rows[13] = (12.0, 12.5, 9.0, 9.5)  # closes below the order block's low (10): invalidated from bar 13
    ob = order_blocks(ctx(bars(rows)), 2, 20)
    assert ob["bull_ob_bottom"][12] == 10.0 and np.isnan(ob["bull_ob_bottom"][13])


def equal_highs_rows(second_high: float, sweep_high: float):
    highs = [10, 11, 12, 15, 12, 11, 10, 11, 12, second_high, 12, 11, 10, 11, 12, 13, sweep_high, 12]
    return [(h - 0.8, h, h - 1.0, h - 0.5) for h in highs]


def test_equal_highs_form_buy_side_liquidity_until_swept():
    d = bars(equal_highs_rows(15.05, 15.4))
    liq = liquidity(ctx(d), 2, 0.1, 3)  # tolerance 0.1 ATR(3) ~ 0.15 here
    assert at(liq["bsl_formed"]) == [11]  # the second swing high (bar 9) is confirmed at bar 11
    assert liq["bsl_level"][11] == 15.05 and np.isnan(liq["bsl_level"][10])
    assert at(liq["bsl_swept"]) == [16]  # a high of 15.4 trades through it
    assert liq["bsl_level"][15] == 15.05 and np.isnan(liq["bsl_level"][16:]).all()


def test_unequal_highs_are_no_liquidity_pool():
    liq = liquidity(ctx(bars(equal_highs_rows(14.0, 15.4))), 2, 0.1, 3)  # 1.0 apart: > 0.1 ATR
    assert not liq["bsl_formed"].any() and np.isnan(liq["bsl_level"]).all()


def test_liquidity_worker_publishes_the_same_features():
    d = bars(equal_highs_rows(15.05, 15.4))
    out = plugin("liquidity_levels", swing_length=2, tolerance_atr=0.1, atr_period=3).compute(ctx(d))
    assert set(out) >= {"bsl_level", "ssl_level", "bsl_swept", "ssl_swept", "bsl_formed", "ssl_formed"}
    assert out["bsl_level"][11] == 15.05


def test_regime_classifier_trending_ranging_volatile():
    rng = np.random.default_rng(3)
    trend = 100 + np.arange(60) * 1.0 + rng.normal(0, 0.05, 60)
    chop = trend[-1] + np.tile([0.6, -0.6], 30) + rng.normal(0, 0.05, 60)
    burst = chop[-1] + np.tile([6.0, -6.0], 5)
    closes = np.concatenate((trend, chop, burst))
    rows = [(c, c + 0.3, c - 0.3, c) for c in closes]
    for i in range(120, 130):  # wide bars during the burst
        rows[i] = (
            closes[i - 1],
            max(closes[i - 1], closes[i]) + 3,
            min(closes[i - 1], closes[i]) - 3,
            closes[i],
        )
    r = plugin(
        "regime_classifier",
        er_period=10,
        trend_threshold=0.3,
        vol_lookback=20,
        volatile_percentile=90.0,
        atr_period=5,
    ).compute(ctx(bars(rows)))
    reg = r["regime"]
    assert reg[0] == REGIME_UNKNOWN  # warm-up
    assert (reg[40:60] == REGIME_TRENDING).all() and (r["regime_dir"][40:60] == 1).all()
    assert (reg[90:120] == REGIME_RANGING).all()
    assert (reg[121:124] == REGIME_VOLATILE).all()
