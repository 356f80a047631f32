"""Every metric, hand-computed on tiny series; finite-JSON conventions for the degenerate cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import backtest, bars, blueprint, scripted

from s1mple_engine.result import PROFIT_FACTOR_CAP, compute_metrics, monthly_returns


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
    assert m.sortino_ratio == 0.0  # no downside: 0 by convention
    assert m.profit_factor == PROFIT_FACTOR_CAP  # no losing trade
    bust = np.array([100.0, 50.0, 0.0, 0.0])
    m, _ = compute_metrics(bust, 100.0, 1.0, [-100.0], [2], [(0, 2)])
    assert m.max_drawdown == 100.0 and m.total_return == -100.0 and m.profit_factor == 0.0
    for value in m.model_dump().values():
        assert math.isfinite(value)
    json.dumps(m.model_dump(), allow_nan=False)


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
    ppy = (len(rows) - 1) / (9 / 365.25)
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
