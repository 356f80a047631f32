"""A run's trading window: warm-up before it, nothing after it, trades and metrics inside it."""

from __future__ import annotations

import numpy as np
import pytest

from s1mple_engine.backtest import windowed
from s1mple_engine.config import ConfigError, Window
from s1mple_engine.data import MarketData
from s1mple_engine.runspec import run_id_of
from s1mple_engine.workers import Context
from tests.engine.conftest import backtest, blueprint, operation

CROSS = blueprint(
    opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 10, "slow": 30}}],
    entry_planning=[{"plugin": "market_entry_immediate"}],
    exit_planning=[{"plugin": "opposite_signal_exit"}],
    size_planning=[{"plugin": "fixed_fraction_sizer", "params": {"fraction": 0.5}}],
)


def scrambled_after(data: MarketData, last: int, seed: int = 7) -> MarketData:
    """The same bars up to ``last``, different (still valid) bars after it."""
    rng = np.random.default_rng(seed)
    n = len(data)
    close = data.close.copy()
    close[last + 1 :] = close[last] * np.exp(np.cumsum(rng.normal(0, 0.03, n - last - 1)))
    open_ = data.open.copy()
    open_[last + 1 :] = close[last + 1 :] * (1 + rng.normal(0, 0.005, n - last - 1))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    high[: last + 1], low[: last + 1] = data.high[: last + 1], data.low[: last + 1]
    return MarketData(data.time, open_, high, low, close, data.volume, symbol=data.symbol)


def test_in_sample_metrics_do_not_see_the_bars_after_the_split(daily):
    split = 600
    window = Window(start=0, end=split - 1)
    a = backtest(daily, CROSS, window=window)
    b = backtest(scrambled_after(daily, split - 1), CROSS, window=window)
    whole = backtest(daily, CROSS)
    assert a.metrics.total_trades > 3
    assert a.metrics.model_dump() == b.metrics.model_dump()
    assert a.metrics.model_dump() != whole.metrics.model_dump()
    assert a.bars == split and a.end == str(daily.time[split - 1])[:19]
    assert all(t.exit_bar <= split - 1 for t in a.trades)
    assert a.trades[-1].exit_reason == "end_of_data"  # the crossover is always in: closed at the end


def test_out_of_sample_part_keeps_its_warm_up(daily):
    split = 600
    seen, lo = windowed(daily, Window(start=split))
    assert lo == split and len(seen) == len(daily)  # every bar before the window is there to warm up
    first_oos = Context(seen).sma(30)[split]
    assert np.isfinite(first_oos) and first_oos == Context(daily).sma(30)[split]
    test_window, _ = windowed(daily, Window(start=split, end=split + 100))  # a walk-forward test window
    assert len(test_window) == split + 101
    assert Context(test_window).sma(30)[split] == first_oos
    assert first_oos == pytest.approx(daily.close[split - 29 : split + 1].mean(), rel=1e-12)
    # an out-of-sample run opens trades from the window's first bar on, with warmed-up averages
    res = backtest(daily, CROSS, window=Window(start=split))
    whole = backtest(daily, CROSS)
    assert res.bars == len(daily) - split and res.start == str(daily.time[split])[:19]
    assert min(t.entry_bar for t in res.trades) >= split
    inside = [o.bar for o in whole.opportunities if o.bar >= split]
    assert [o.bar for o in res.opportunities] == inside
    assert res.equity_curve.values[0] == pytest.approx(res.initial_cash) or res.trades[0].entry_bar == split


def test_window_by_timestamp_matches_window_by_bar(daily):
    lo, hi = 200, 700
    by_bar = backtest(daily, CROSS, window=Window(start=lo, end=hi))
    by_time = backtest(
        daily, CROSS, window=Window(start=str(daily.time[lo])[:10], end=str(daily.time[hi])[:10])
    )
    assert by_bar.metrics.model_dump() == by_time.metrics.model_dump()
    assert by_bar.bars == hi - lo + 1


def test_the_window_is_part_of_the_run_identity():
    plain = operation(CROSS)
    a = operation(CROSS, window=Window(start=0, end=99))
    b = operation(CROSS, window=Window(start=0, end=100))
    assert len({run_id_of(plain), run_id_of(a), run_id_of(b)}) == 3
    assert run_id_of(plain) == run_id_of(operation(CROSS, window=None))


@pytest.mark.parametrize(
    "window",
    [Window(start=5000), Window(start=10, end=5), Window(end="1990-01-01"), Window(start=0, end=0)],
)
def test_a_window_outside_the_data_names_the_field(daily, window):
    with pytest.raises(ConfigError, match="operation.window"):
        windowed(daily, window)


def test_threats_of_the_warm_up_bars_are_not_the_windows(daily):
    threat = {"plugin": "test_threat_a", "params": {"bars": [10, 50, 700]}, "triggers": ["on_context_ready"]}
    bp = type(CROSS).model_validate({**CROSS.model_dump(), "threat_workers": [threat]})
    whole = backtest(daily, bp)
    res = backtest(daily, bp, window=Window(start=600))
    assert whole.causality.threats_detected == 3
    assert res.causality.threats_detected == 1
    assert [t.bar for t in res.threats] == [700]
