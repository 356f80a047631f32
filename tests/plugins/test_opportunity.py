"""Opportunity workers on constructed series: each shown firing (bar, direction, metadata) and not firing."""

from __future__ import annotations

import numpy as np

from .helpers import bars, candles, ctx, plugin

FLAT = (10.0, 10.5, 9.5, 10.0)


def signals(name: str, data, **params):
    s = plugin(name, **params).detect(ctx(data))
    return list(zip(s.bars.tolist(), s.dirs.tolist(), strict=True)), s


# ------------------------------------------------------------------------------------------ fvg_detector


def fvg_rows(retest_low: float, retest_close: float, retest_bar_offset: int = 0):
    rows = [FLAT, (10.0, 12.0, 10.0, 12.0), (12.0, 13.0, 11.0, 12.8)]  # gap [10.5, 11] at bar 2
    rows += [(12.8, 13.2, 11.5, 12.5)] * (2 + retest_bar_offset)  # above the gap
    rows += [(12.5, 12.6, retest_low, retest_close)]  # the retest
    rows += [(12.0, 12.5, 11.5, 12.0)] * 3
    return rows


def test_fvg_retest_fires_when_price_returns_and_the_gap_holds():
    sig, s = signals("fvg_detector", bars(fvg_rows(10.8, 11.6)), atr_period=1, min_gap_atr=0.0)
    assert sig == [(5, 1)]  # the retest bar, never the gap bar (2): the retest needs later bars
    assert (s.meta["gap_top"][0], s.meta["gap_bottom"][0]) == (11.0, 10.5)


def test_fvg_retest_does_not_fire_when_the_gap_fails_or_is_too_old_or_too_small():
    assert signals("fvg_detector", bars(fvg_rows(10.0, 10.2)), atr_period=1, min_gap_atr=0.0)[0] == []
    late = bars(fvg_rows(10.8, 11.6, retest_bar_offset=3))
    assert signals("fvg_detector", late, atr_period=1, min_gap_atr=0.0, max_age=4)[0] == []
    assert signals("fvg_detector", late, atr_period=1, min_gap_atr=0.0, max_age=6)[0] == [(8, 1)]
    # the gap (0.5) is smaller than 1 ATR(1) of the gap bar (range 2)
    assert signals("fvg_detector", bars(fvg_rows(10.8, 11.6)), atr_period=1, min_gap_atr=1.0)[0] == []


def test_fvg_retest_at_the_midpoint():
    rows = fvg_rows(10.8, 11.6)  # 10.8 does not reach the midpoint 10.75
    rows[6] = (11.6, 12.0, 10.7, 11.5)
    sig, _ = signals("fvg_detector", bars(rows), atr_period=1, min_gap_atr=0.0, touch="midpoint")
    assert sig == [(6, 1)]


def test_fvg_entry_detector_fires_at_the_gap_with_bp_units():
    d = bars(fvg_rows(10.8, 11.6))
    sig, s = signals("fvg_entry_detector", d, min_gap_size=5.0)  # 0.5 / close[1] 12 = 417 bp
    assert sig == [(2, 1)] and s.meta["gap_top"][0] == 11.0
    assert signals("fvg_entry_detector", d, min_gap_size=500.0)[0] == []  # 500 bp = 0.6: too big


def test_fvg_entry_detector_swing_structure_break():
    from .test_structure import HIGHS, rising_rows

    d = bars(rising_rows(HIGHS))  # bullish swing breaks (BOS) at 10 and 17, no bearish ones
    plain, _ = signals("fvg_entry_detector", d, min_gap_size=1.0)
    assert plain == [(3, 1), (5, -1), (10, 1), (12, -1), (17, 1)]
    swing, _ = signals(
        "fvg_entry_detector",
        d,
        min_gap_size=1.0,
        require_structure_break=True,
        structure_mode="swing",
        swing_length=2,
    )
    assert swing == [(10, 1), (17, 1)]  # the gap at 3 broke no confirmed swing: there was none yet


# ------------------------------------------------------------------------------------------ breakout


def test_breakout_first_close_above_the_channel():
    rows = [FLAT] * 25 + [(10.0, 11.2, 9.9, 11.0), (11.0, 11.5, 10.8, 11.2)] + [FLAT] * 3
    sig, _ = signals("breakout_scanner", bars(rows), lookback=20)
    assert sig == [(25, 1)]  # bar 26 is still above but not a new breakout
    rows2 = [FLAT] * 25 + [(10.0, 10.4, 8.9, 9.0)] + [FLAT] * 3
    assert signals("breakout_scanner", bars(rows2), lookback=20)[0] == [(25, -1)]
    assert signals("breakout_scanner", bars(rows2), lookback=20, allow_short=False)[0] == []


def test_breakout_volume_confirmation():
    rows = [FLAT] * 25 + [(10.0, 11.2, 9.9, 11.0)] + [FLAT] * 3
    vol = [1000.0] * len(rows)
    on = dict(lookback=20, require_volume_confirmation=True, volume_factor=1.5, volume_lookback=20)
    assert signals("breakout_scanner", bars(rows, volume=vol), **on)[0] == []  # average volume: no
    vol[25] = 2000.0
    assert signals("breakout_scanner", bars(rows, volume=vol), **on)[0] == [(25, 1)]


# ------------------------------------------------------------------------------------------ momentum


def test_trend_follower_long_on_pullback_resume_in_uptrend_only():
    closes = [10.0 + i for i in range(15)] + [21.0, 25.0, 26.0]  # bar 15 dips under the fast SMA
    sig, _ = signals("trend_follower", bars(candles(closes)), fast=3, slow=6, kind="sma", slope_bars=2)
    assert sig == [(16, 1)]
    down = [40.0 - c for c in closes]  # the mirror: a short in the downtrend
    assert signals("trend_follower", bars(candles(down)), fast=3, slow=6, kind="sma", slope_bars=2)[0] == [
        (16, -1)
    ]
    flat = [10.0, 10.2] * 9  # no trend: no signal
    assert signals("trend_follower", bars(candles(flat)), fast=3, slow=6, kind="sma", slope_bars=2)[0] == []


def test_momentum_scanner_move_in_atrs():
    closes = [10.0] * 10 + [10.5, 11.5, 13.0, 13.1]
    d = bars(candles(closes, spread=0.2))
    sig, _ = signals("momentum_scanner", d, period=3, threshold_atr=2.0, atr_period=3)
    assert sig == [(12, 1)]  # (13 - 10.5) / ATR(3) first exceeds 2 ATRs at bar 12
    assert signals("momentum_scanner", d, period=3, threshold_atr=20.0, atr_period=3)[0] == []


# ------------------------------------------------------------------------------------------ mean reversion


def test_oversold_detector_zscore():
    closes = [10.0, 10.2] * 10 + [8.0, 7.9, 10.0, 10.2]
    sig, _ = signals("oversold_detector", bars(candles(closes)), period=10, z_threshold=2.0)
    assert sig == [(20, 1)]  # the first bar at -2 sigma or below; bar 21 is still oversold: no repeat
    assert signals("oversold_detector", bars(candles(closes)), period=10, z_threshold=4.0)[0] == []
    up = [10.0, 10.2] * 10 + [12.5]
    assert signals("oversold_detector", bars(candles(up)), period=10, z_threshold=2.0)[0] == [(20, -1)]
    assert (
        signals("oversold_detector", bars(candles(up)), period=10, z_threshold=2.0, allow_short=False)[0]
        == []
    )


def test_rsi_reversal_crosses_back():
    closes = [20.0 - i for i in range(10)] + [10.5, 11.5, 12.5]
    sig, _ = signals("rsi_reversal", bars(candles(closes)), period=3, oversold=30.0, overbought=70.0)
    assert sig == [(11, 1)]  # RSI(3) was < 30 during the decline, back above 30 at bar 11
    assert signals("rsi_reversal", bars(candles(closes[:11])), period=3)[0] == []  # not yet turned


# ------------------------------------------------------------------------------------------ DCA


def test_dca_scorer_schedule_and_score():
    closes = [100.0] * 20 + [90.0] * 20  # 2024-01-01 is a Monday; one bar per calendar day
    d = bars(candles(closes, spread=0.1))
    sig, s = signals(
        "dca_opportunity_scorer", d, frequency="weekly", ma_period=5, full_score_discount_percent=10
    )
    assert [b for b, _ in sig] == [0, 7, 14, 21, 28, 35] and {x for _, x in sig} == {1}
    score = dict(zip(s.bars.tolist(), s.meta["dca_score"].tolist(), strict=True))
    assert score[0] == 0.5  # the average is still warming up
    assert score[14] == 0.5  # at the average
    assert score[21] > 0.5  # 21: close 90 below the 5-day average (still ~96): a better buy
    monthly, _ = signals("dca_opportunity_scorer", d, frequency="monthly")
    assert [b for b, _ in monthly] == [0, 31]  # Jan 1, Feb 1
    assert np.all(s.dirs == 1)


# ------------------------------------------------------------------------------------------ ma_crossover


def test_crossover_ignores_rounding_where_the_averages_are_equal():
    # SMA(2) and SMA(3) at bar 3 are both 14.52 in exact (decimal) arithmetic: the fast average touches the
    # slow one and moves up again; floating point makes their difference -1.8e-16 there, which used to
    # report a death cross at 3 and a golden cross at 4
    closes = [6.19, 14.52, 9.64, 19.4, 24.4]
    data = bars(candles(closes, spread=0.1))
    fast, slow = plugin("ma_crossover", fast=2, slow=3)._mas(ctx(data))
    assert fast[3] - slow[3] != 0.0, "the rounding this test is about"
    sig, _ = signals("ma_crossover", data, fast=2, slow=3)
    assert sig == []
    assert plugin("ma_crossover", fast=2, slow=3).bias(ctx(data)).tolist() == [0, 0, 1, 0, 1]


def test_crossover_still_sees_a_real_cross():
    closes = [6.19, 14.52, 9.64, 19.4, 4.4, 3.0, 30.0]
    sig, _ = signals("ma_crossover", bars(candles(closes, spread=0.1)), fast=2, slow=3)
    assert sig == [(5, -1), (6, 1)]
