"""Segments: parts of one run measured on their own (walk-forward's train and test windows)."""

from __future__ import annotations

import numpy as np
import pytest

from s1mple_engine.config import ConfigError, Segment, Window
from s1mple_engine.result import bar_returns
from s1mple_engine.segments import decode_returns
from tests.engine.conftest import backtest
from tests.engine.test_window import CROSS, scrambled_after

METRICS = ("sharpe_ratio", "total_return", "max_drawdown", "total_trades", "exposure", "final_equity")


def test_a_segment_over_every_bar_is_the_run_itself(daily):
    whole = backtest(daily, CROSS, curves=False)
    seg = backtest(daily, CROSS, curves=False, segments=[Segment(name="all", start=0, end=len(daily) - 1)])
    got = seg.segments["all"]["metrics"]
    assert seg.metrics.model_dump() == whole.metrics.model_dump()  # segments change nothing else
    for m in METRICS:
        assert got[m] == pytest.approx(getattr(whole.metrics, m), rel=1e-9, abs=1e-9), m


def test_segments_measure_their_bars_of_the_continuous_run(daily):
    a, b = 600, 799
    run = backtest(daily, CROSS, segments=[Segment(name="wf0.test", start=a, end=b, per_bar=True)])
    got = run.segments["wf0.test"]
    equity = np.array([run.initial_cash, *run.equity_curve.values])  # eqx: cash, then after each bar
    part = equity[a : b + 2]
    assert got["metrics"]["total_return"] == pytest.approx((part[-1] / part[0] - 1) * 100, rel=1e-9)
    peak = np.maximum.accumulate(part)
    assert got["metrics"]["max_drawdown"] == pytest.approx(((1 - part / peak) * 100).max(), rel=1e-9)
    closed = [t for t in run.trades if a <= t.exit_bar <= b]
    assert got["metrics"]["total_trades"] == len(closed) > 0
    per_bar = decode_returns(got["returns"])  # float32: 4 bytes a bar
    assert len(per_bar) == b - a + 1
    assert per_bar == pytest.approx(bar_returns(part), rel=1e-6, abs=1e-7)
    assert got["bars_per_year"] == daily.bars_per_year


def test_a_train_segment_does_not_see_the_bars_after_it(daily):
    """The choice of a walk-forward window rests on its train segment: bars after it cannot change it."""
    seg = [Segment(name="wf0.train", start=100, end=599)]
    a = backtest(daily, CROSS, curves=False, segments=seg)
    b = backtest(scrambled_after(daily, 599), CROSS, curves=False, segments=seg)
    assert a.segments == b.segments
    assert a.metrics.model_dump() != b.metrics.model_dump()


def test_a_segment_outside_the_run_is_refused(daily):
    with pytest.raises(ConfigError, match="operation.segments"):
        backtest(
            daily, CROSS, window=Window(start=300, end=700), segments=[Segment(name="x", start=0, end=400)]
        )
