"""The daily drawdown monitor's scan of a marked equity segment (a ledger threat), on a hand-made curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from s1mple_engine.data import MarketData
from s1mple_engine.plugins.threat import MaxDrawdownMonitor, MaxDrawdownMonitorParams
from s1mple_engine.workers import Context


def hourly(days: int, bars_per_day: int) -> Context:
    index = pd.DatetimeIndex(
        [
            pd.Timestamp("2024-01-01") + pd.Timedelta(days=d, hours=h)
            for d in range(days)
            for h in range(bars_per_day)
        ]
    )
    flat = np.full(len(index), 100.0)
    frame = pd.DataFrame(
        {"Open": flat, "High": flat, "Low": flat, "Close": flat, "Volume": flat}, index=index
    )
    return Context(MarketData.from_frame(frame, symbol="T"))


def monitor(percent: float) -> MaxDrawdownMonitor:
    return MaxDrawdownMonitor(MaxDrawdownMonitorParams(max_daily_drawdown=percent))


def test_one_onset_per_day_against_the_days_peak_from_the_previous_close():
    ctx = hourly(days=3, bars_per_day=4)
    day0, day1, day2 = ctx.data.day_list[0], ctx.data.day_list[4], ctx.data.day_list[8]
    # eqx[t + 1] = equity at the close of bar t; eqx[0] = cash
    eqx = np.array(
        [100.0]
        + [101, 103, 100.9, 100.8]  # day 0: peak 103, 100.9 is 2.04 % below it (breach), 100.8 too (same day)
        + [99, 102, 101, 99.9]  # day 1: peak starts at the previous close 100.8; 102 -> 99.9 is 2.06 %
        + [98.5, 98.0, 99.0, 97.0]  # day 2: peak 99.9 (previous close); 97.0 is 2.9 % below
    )
    onsets = monitor(2.0).ledger_scan(ctx, eqx, 0, 11, last_day=-(10**9))
    assert onsets == [2, 7, 11]
    assert [ctx.data.day_list[b] for b in onsets] == [day0, day1, day2]
    # a day that already has an onset gets no second one
    assert monitor(2.0).ledger_scan(ctx, eqx, 0, 11, last_day=day1) == [2, 11]


def test_a_segment_starting_mid_day_sees_the_days_earlier_peak():
    ctx = hourly(days=1, bars_per_day=6)
    eqx = np.array([100.0, 110, 105, 104, 107.7, 107.9, 108])
    # bars 3..5 alone never fall 2 % below their own peak, but they are below 110 (bar 0's close)
    assert monitor(2.0).ledger_scan(ctx, eqx, 3, 5, last_day=-(10**9)) == [3]
    assert monitor(5.0).ledger_scan(ctx, eqx, 3, 5, last_day=-(10**9)) == []
    # bar 2 (104) is 5.45 % below 110, but it lies before the segment
    assert monitor(5.0).ledger_scan(ctx, eqx, 2, 5, last_day=-(10**9)) == [2]
