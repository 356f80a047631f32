"""Every metric, hand-computed on tiny series; finite-JSON conventions for the degenerate cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import backtest, bars, blueprint, scripted

from s1mple_engine.data import MarketData
from s1mple_engine.result import (
    PROFIT_FACTOR_CAP,
    RATIO_CAP,
    bars_covered,
    compute_metrics,
    monthly_returns,
    return_stats,
)


def test_metrics_by_hand():
    eqx = np.array([100.0, 110.0, 99.0, 121.0, 121.0])  # eqx[0] = initial cash
    years = 2.0  # 4 bars over 2 years -> (4 - 1) / 2 = 1.5 bars per year
    pnls = [10.0, -5.0, 20.0]
    durations = [2, 1, 3]
    intervals = [(0, 1), (3, 3)]
    m, dd = compute_metrics(eqx, 100.0, years, pnls, durations, intervals)
    r = np.array([0.10, 99 / 110 - 1, 121 / 99 - 1, 0.0])
    ppy = 1.5
    assert m.sharpe_ratio == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy))
    downside = math.sqrt(((r[r < 0]) ** 2).sum() / len(r))
    assert m.sortino_ratio == pytest.approx(r.mean() / downside * math.sqrt(ppy))
    assert m.total_return == pytest.approx(21.0)
    assert m.max_drawdown == pytest.approx(10.0)  # 110 -> 99
    assert dd.tolist() == pytest.approx([0.0, 10.0, 0.0, 0.0])
    cagr = (1.21 ** (1 / 2) - 1) * 100
    assert m.calmar_ratio == pytest.approx(cagr / 10.0)
    assert m.win_rate == pytest.approx(200 / 3)
    assert m.total_trades == 3
    assert m.avg_trade_duration == pytest.approx(2.0)
    assert m.profit_factor == pytest.approx(30 / 5)
    assert m.exposure == pytest.approx(3 / 4 * 100)  # bars 0, 1 and 3
    assert m.final_equity == 121.0


def test_degenerate_metrics_are_finite_and_documented():
    flat = np.full(6, 100.0)
    m, _ = compute_metrics(flat, 100.0, 1.0, [], [], [])
    assert (m.sharpe_ratio, m.sortino_ratio, m.max_drawdown, m.calmar_ratio) == (0.0, 0.0, 0.0, 0.0)
    assert (m.win_rate, m.profit_factor, m.avg_trade_duration, m.exposure) == (0.0, 0.0, 0.0, 0.0)
    up = np.array([100.0, 101.0, 102.0, 103.0])
    m, _ = compute_metrics(up, 100.0, 1.0, [3.0], [3], [(0, 2)])
    assert m.sortino_ratio == m.calmar_ratio == RATIO_CAP  # no downside, no drawdown: ranks first
    assert m.profit_factor == PROFIT_FACTOR_CAP  # no losing trade
    bust = np.array([100.0, 50.0, 0.0, 0.0])
    m, _ = compute_metrics(bust, 100.0, 1.0, [-100.0], [2], [(0, 2)])
    assert m.max_drawdown == 100.0 and m.total_return == -100.0 and m.profit_factor == 0.0
    for value in m.model_dump().values():
        assert math.isfinite(value)
    json.dumps(m.model_dump(), allow_nan=False)


def test_a_run_that_never_loses_ranks_first_by_sortino_and_calmar():
    never_loses = np.array([100.0, 101.0, 101.0, 103.0, 104.0, 104.0])
    small_loss = np.array([100.0, 101.0, 100.9, 103.0, 104.0, 104.5])
    flat = np.full(6, 100.0)
    runs = {"never_loses": never_loses, "small_loss": small_loss, "flat": flat}
    metrics = {k: compute_metrics(v, 100.0, 1.0, [], [], [], bars_per_year=252.0)[0] for k, v in runs.items()}
    for key in ("sortino_ratio", "calmar_ratio"):
        ranked = sorted(metrics, key=lambda k: -getattr(metrics[k], key))
        assert ranked == ["never_loses", "small_loss", "flat"], key
        assert getattr(metrics["small_loss"], key) < RATIO_CAP
    row = metrics["never_loses"].model_dump()
    assert json.loads(json.dumps(row, allow_nan=False))["sortino_ratio"] == RATIO_CAP  # JSON-safe


def test_a_ruined_run_has_no_positive_sharpe():
    # a huge gain, then everything lost: the mean simple return is positive, the growth is -100 %
    ruined = np.array([100.0, 1000.0, 900.0, 0.0, 0.0])
    m, dd = compute_metrics(ruined, 100.0, 1.0, [], [], [], bars_per_year=12.0)
    assert (m.total_return, m.max_drawdown, m.calmar_ratio) == (-100.0, 100.0, -1.0)
    assert m.sharpe_ratio == 0.0 and m.sortino_ratio == 0.0
    assert dd.max() == 100.0


def test_annualisation_follows_the_bar_frequency_not_the_span():
    """GOOG daily: 252 bars a year (exchange days); a 91-day hole in the data (the second half's
    timestamps moved 13 weeks later, same bars) leaves Sharpe and Sortino unchanged (the old span-based
    estimate changed them by several percent)."""
    from backtesting.test import GOOG

    bp = blueprint(
        opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 10, "slow": 20}}],
        entry_planning=[{"plugin": "market_entry_immediate"}],
        exit_planning=[{"plugin": "opposite_signal_exit", "params": {"reverse": True}}],
    )
    data = MarketData.from_frame(GOOG.iloc[:300], symbol="GOOG", timeframe="1d")
    assert data.bars_per_year == 252.0
    time = data.time.copy()
    time[150:] += np.timedelta64(91, "D")
    holed = MarketData(time, data.open, data.high, data.low, data.close, data.volume, timeframe="1d")
    assert holed.bars_per_year == 252.0
    a, b = backtest(data, bp).metrics, backtest(holed, bp).metrics
    assert a.total_trades > 5 and a.total_return == b.total_return
    assert b.sharpe_ratio == pytest.approx(a.sharpe_ratio, rel=1e-12)
    assert b.sortino_ratio == pytest.approx(a.sortino_ratio, rel=1e-12)
    span_based = (len(data) - 1) / data.years, (len(holed) - 1) / holed.years
    assert abs(math.sqrt(span_based[1] / span_based[0]) - 1) > 0.05, "the span-based estimate moved"


@pytest.mark.parametrize(
    ("start", "step", "per_day", "expected"),
    [
        ("2024-01-01", "D", None, 365.0),  # 24/7 daily (crypto)
        ("2024-01-01", "h", None, 365.0 * 24),  # 24/7 hourly
        ("2024-01-01", "h", "weekdays", 260.0 * 24),  # 24/5 hourly (FX)
        ("2024-01-01T14:30", "30m", "session", 252.0 * 13),  # exchange session, 13 bars a day
        ("2024-01-01", "W", None, 52.0),
        ("2024-01-31", "M", None, 12.0),
    ],
)
def test_bars_per_year_from_the_calendar(start, step, per_day, expected):
    if step == "M":
        time = np.arange(np.datetime64("2020-01", "M"), np.datetime64("2024-01", "M")).astype("datetime64[D]")
    elif step == "30m":
        days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-07-01"))
        days = days[(days.astype(np.int64) + 3) % 7 < 5]
        time = (days[:, None] + np.timedelta64(870, "m") + np.arange(13) * np.timedelta64(30, "m")).ravel()
    else:
        unit = {"D": "D", "h": "h", "W": "W"}[step]
        time = np.datetime64(start, unit) + np.arange(2000 if step == "h" else 200)
        if per_day == "weekdays":
            time = time[(time.astype("datetime64[D]").astype(np.int64) + 3) % 7 < 5]
    n = len(time)
    price = np.full(n, 100.0)
    data = MarketData(time, price, price, price, price)
    assert data.bars_per_year == pytest.approx(expected)


def test_timeframe_contradicting_the_data_is_a_note():
    from backtesting.test import GOOG

    bp = blueprint(opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 10, "slow": 20}}])
    ok = backtest(MarketData.from_frame(GOOG.iloc[:200], timeframe="1d"), bp)
    assert not [n for n in ok.notes if "timeframe" in n]
    wrong = backtest(MarketData.from_frame(GOOG.iloc[:200], timeframe="1h"), bp)
    (note,) = [n for n in wrong.notes if "timeframe" in n]
    assert "'1h' contradicts the data" in note and "1 day" in note and "252 bars per year" in note
    assert wrong.metrics.sharpe_ratio == ok.metrics.sharpe_ratio  # annualised from the data
    odd = backtest(MarketData.from_frame(GOOG.iloc[:200], timeframe="fortnightly"), bp)
    assert any("not understood" in n for n in odd.notes)


def test_monthly_returns():
    time = np.array(
        ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-29", "2024-03-01"], dtype="datetime64[ns]"
    )
    eqx = np.array([100.0, 101.0, 110.0, 99.0, 121.0, 121.0])
    out = monthly_returns(time, eqx)
    assert [x.month for x in out] == ["2024-01", "2024-02", "2024-03"]
    assert [x.return_pct for x in out] == pytest.approx([10.0, 10.0, 0.0])


def test_run_metrics_match_the_equity_curve_and_trades():
    rows = [(o, o + 1, o - 1, o + 0.5) for o in (100, 101, 99, 104, 103, 108, 100, 95, 97, 99)]
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0, 5], shorts=[2, 7])],
        entry_planning=[{"plugin": "market_entry_immediate"}],
        exit_planning=[{"plugin": "opposite_signal_exit"}],
    )
    r = backtest(bars(rows), bp, cash=1000.0, commission=0.001)
    eq = np.array([1000.0] + r.equity_curve.values)
    rets = eq[1:] / eq[:-1] - 1
    ppy = 365.0  # bars on every calendar day, weekends included: the 24/7 calendar
    assert r.metrics.sharpe_ratio == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(ppy))
    peak = np.maximum.accumulate(eq)
    assert r.metrics.max_drawdown == pytest.approx(((1 - eq / peak) * 100).max())
    pnls = np.array([t.pnl for t in r.trades])
    assert r.metrics.final_equity == pytest.approx(1000 + pnls.sum())
    assert r.metrics.win_rate == pytest.approx((pnls > 0).mean() * 100)
    assert r.metrics.avg_trade_duration == pytest.approx(
        np.mean([t.exit_bar - t.entry_bar for t in r.trades])
    )
    assert r.summary().keys() == {"metrics", "causality", "returns"}
    # the return statistics are of the same per-bar returns as the Sharpe ratio
    assert r.returns.bars == len(rets) and r.returns.sharpe == pytest.approx(rets.mean() / rets.std(ddof=1))
    json.loads(r.to_json())


def test_bars_covered_counts_the_union_of_holding_intervals():
    """Exposure's bar count equals marking every held bar in an array, for back-to-back reversals (an exit
    and the next entry on one bar), gaps, one-bar holds and intervals given out of order."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        intervals, bar = [], int(rng.integers(0, 5))
        while bar < n:
            end = min(n - 1, bar + int(rng.integers(0, 8)))
            intervals.append((bar, end))
            bar = end + int(rng.integers(0, 4))  # 0: a reversal shares the exit bar
        held = np.zeros(n, dtype=bool)
        for a, b in intervals:
            held[a : b + 1] = True
        rng.shuffle(intervals)
        assert bars_covered(intervals, n) == int(held.sum())
    assert bars_covered([], 5) == 0


def test_return_moments_match_their_definition():
    rets = np.random.default_rng(3).standard_t(4, size=2148) * 0.01
    stats = return_stats(rets, blocks=16)
    dev = rets - rets.mean()
    m2 = (dev**2).mean()
    assert stats.skewness == pytest.approx((dev**3).mean() / m2**1.5, rel=1e-12)
    assert stats.kurtosis == pytest.approx((dev**4).mean() / m2**2, rel=1e-12)
    assert stats.blocks is not None
    assert stats.blocks.bars == np.diff(np.append(np.arange(16) * 2148 // 16, 2148)).tolist()
    assert sum(stats.blocks.bars) == 2148
