"""Hand-computed fills, fees, slippage, stops, targets, partial exits, limit/stop entries, shorts."""

from __future__ import annotations

import pytest
from conftest import backtest, bars, blueprint, flat, scripted

MKT = [{"plugin": "market_entry_immediate"}]
REV = [{"plugin": "opposite_signal_exit", "params": {"reverse": True}}]
ALL_IN = [{"plugin": "fixed_fraction_sizer", "params": {"fraction": 1.0}}]


def rr_exit(stop_percent: float, rr: float = 2.0) -> list[dict]:
    return [{"plugin": "fixed_rr_exit", "params": {"stop_percent": stop_percent, "risk_reward_ratio": rr}}]


def test_market_fill_next_open_commission_reversal_and_end_of_data():
    rows = [(o, o + 0.5, o - 0.5, o + 0.2) for o in (10.0, 11.0, 12.0, 13.0, 14.0, 15.0)]
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0], shorts=[2])],
        entry_planning=MKT,
        exit_planning=REV,
        size_planning=ALL_IN,
    )
    r = backtest(bars(rows), bp, cash=1000.0, commission=0.01)
    c = 0.01
    u1 = 1000 / (11 * (1 + c))  # all-in: notional / (price x (1 + commission))
    cash1 = 1000 - u1 * 11 * (1 + c)  # = 0
    cash2 = cash1 + u1 * 13 * (1 - c)  # exit at bar 3's open
    u2 = cash2 / (13 * (1 + c))
    cash3 = cash2 + u2 * 13 * (1 - c)  # short sale proceeds
    final = cash3 - u2 * 15.2 * (1 + c)  # closed at the last close
    t1, t2 = r.trades
    assert (t1.side, t1.entry_bar, t1.entry_price, t1.exit_bar, t1.exit_price) == ("long", 1, 11.0, 3, 13.0)
    assert t1.size == pytest.approx(u1) and t1.exit_reason == "opposite_signal"
    assert t1.pnl == pytest.approx(u1 * (13 - 11) - u1 * 11 * c - u1 * 13 * c)
    assert t1.return_pct == pytest.approx(t1.pnl / (u1 * 11) * 100)
    assert (t2.side, t2.entry_bar, t2.exit_bar, t2.exit_price, t2.exit_reason) == (
        "short",
        3,
        5,
        15.2,
        "end_of_data",
    )
    assert t2.pnl == pytest.approx(u2 * (13 - 15.2) - u2 * 13 * c - u2 * 15.2 * c)
    eq = r.equity_curve.values
    assert eq[0] == pytest.approx(1000.0)  # decided at bar 0, filled at bar 1: no lookahead
    assert eq[1] == pytest.approx(cash1 + u1 * 11.2)
    assert eq[2] == pytest.approx(cash1 + u1 * 12.2)
    assert eq[3] == pytest.approx(cash3 - u2 * 13.2)
    assert eq[4] == pytest.approx(cash3 - u2 * 14.2)
    assert eq[5] == pytest.approx(final)
    assert r.metrics.final_equity == pytest.approx(final)
    assert sum(f.commission for f in r.fills) == pytest.approx((u1 * 11 + u1 * 13 + u2 * 13 + u2 * 15.2) * c)
    assert [f.side for f in r.fills] == ["buy", "sell", "sell", "buy"]


def test_fill_at_close_and_slippage():
    rows = [(o, o + 0.5, o - 0.5, o + 0.2) for o in (10.0, 11.0, 12.0)]
    bp = blueprint(opportunity_workers=[scripted(longs=[0])], entry_planning=MKT, size_planning=ALL_IN)
    r = backtest(bars(rows), bp, cash=1000.0, slippage=0.01, fill_at="close")
    buy = 10.2 * 1.01
    u = 1000 / buy
    (t,) = r.trades
    assert (t.entry_bar, t.entry_price) == (0, pytest.approx(buy))
    assert t.exit_price == pytest.approx(12.2 * 0.99)  # sells get price x (1 - slippage)
    assert r.equity_curve.values[0] == pytest.approx(u * 10.2)  # marked at the close it filled at
    assert r.metrics.final_equity == pytest.approx(u * 12.2 * 0.99)


@pytest.mark.parametrize(
    "bar2, exit_price, reason",
    [
        ((100.0, 101.0, 94.0, 100.0), 95.0, "stop_loss"),  # low touches the stop
        ((100.0, 111.0, 99.0, 100.0), 110.0, "take_profit"),  # high touches the target
        ((100.0, 111.0, 94.0, 100.0), 95.0, "stop_loss"),  # both in one bar: the stop first (conservative)
        ((90.0, 92.0, 89.0, 91.0), 90.0, "stop_loss"),  # gap through the stop: fills at the open
        ((112.0, 113.0, 111.0, 112.0), 112.0, "take_profit"),  # gap over the target: the (better) open
    ],
)
def test_long_stop_and_target(bar2, exit_price, reason):
    rows = [(100.0, 100.5, 99.5, 100.0)] * 2 + [bar2] + flat(2)
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        exit_planning=rr_exit(5.0),
        size_planning=ALL_IN,
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    (t,) = r.trades
    assert (t.entry_bar, t.entry_price, t.exit_bar) == (1, 100.0, 2)
    assert (t.exit_price, t.exit_reason) == (pytest.approx(exit_price), reason)
    assert t.pnl == pytest.approx(10.0 * (exit_price - 100.0))  # 1000 / 100 = 10 units


@pytest.mark.parametrize(
    "bar2, exit_price, reason",
    [
        ((100.0, 106.0, 99.0, 100.0), 105.0, "stop_loss"),
        ((100.0, 101.0, 89.0, 100.0), 90.0, "take_profit"),
        ((100.0, 106.0, 89.0, 100.0), 105.0, "stop_loss"),
        ((108.0, 109.0, 107.0, 108.0), 108.0, "stop_loss"),
        ((400.0, 401.0, 399.0, 400.0), 400.0, "stop_loss"),  # a gap that loses more than the account
    ],
)
def test_short_stop_and_target(bar2, exit_price, reason):
    rows = [(100.0, 100.5, 99.5, 100.0)] * 2 + [bar2] + flat(2)
    bp = blueprint(
        opportunity_workers=[scripted(shorts=[0])],
        entry_planning=MKT,
        exit_planning=rr_exit(5.0),
        size_planning=ALL_IN,
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    (t,) = r.trades
    assert (t.side, t.exit_price, t.exit_reason) == ("short", pytest.approx(exit_price), reason)
    assert t.pnl == pytest.approx(10.0 * (100.0 - exit_price))
    # bankruptcy: the account loses what it has, not more
    assert min(r.equity_curve.values) >= 0.0 and r.metrics.final_equity == max(0.0, 1000.0 + t.pnl)


def test_stop_fill_pays_slippage_and_stop_can_hit_in_entry_bar():
    rows = [(100.0, 100.5, 99.5, 100.0), (100.0, 100.5, 94.0, 99.0)] + flat(2)
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        exit_planning=rr_exit(5.0),
        size_planning=ALL_IN,
    )
    r = backtest(bars(rows), bp, cash=1000.0, slippage=0.001)
    (t,) = r.trades
    assert t.entry_price == pytest.approx(100.1)
    stop = 100.1 - 5.0  # distance from the fill price
    assert (t.exit_bar, t.exit_price, t.exit_reason) == (1, pytest.approx(stop * 0.999), "stop_loss")


def test_partial_exit_then_breakeven_stop():
    rows = (
        [(100.0, 100.5, 99.5, 100.0)] * 2
        + [(101.0, 106.0, 100.5, 104.0), (104.0, 104.5, 99.0, 100.0)]
        + flat(2)
    )
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        exit_planning=rr_exit(5.0, rr=3.0),
        size_planning=ALL_IN,
        position_management=[
            {
                "plugin": "partial_profit_taker",
                "params": {"target_r": 1.0, "fraction": 0.5, "move_stop_to_breakeven": True},
            }
        ],
    )
    r = backtest(bars(rows), bp, cash=1000.0, commission=0.001)
    t1, t2 = r.trades
    u = 1000 / (100 * 1.001)
    assert (t1.exit_bar, t1.exit_price, t1.exit_reason, t1.size) == (
        2,
        105.0,
        "partial_take_profit",
        pytest.approx(u / 2),
    )
    assert (t2.exit_bar, t2.exit_price, t2.exit_reason, t2.size) == (
        3,
        100.0,
        "breakeven_stop",
        pytest.approx(u / 2),
    )
    assert t1.opportunity_id == t2.opportunity_id == "OPP-0-0"
    assert t1.pnl == pytest.approx(u / 2 * 5 - u / 2 * 100 * 0.001 - u / 2 * 105 * 0.001)
    assert t2.pnl == pytest.approx(-u / 2 * 100 * 0.001 * 2)
    assert r.metrics.total_trades == 2


def test_trailing_stop_percent():
    rows = [
        (100.0, 100.5, 99.5, 100.0),
        (100.0, 105.0, 99.0, 104.0),  # entry at 100; stop during this bar: 100 x 0.9 = 90
        (104.0, 120.0, 103.0, 118.0),  # best before this bar 105 -> stop 94.5
        (115.0, 116.0, 107.0, 110.0),  # best before: 120 -> stop 108, low 107 touches it
    ] + flat(2, 110.0)
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        size_planning=ALL_IN,
        position_management=[{"plugin": "trailing_stop_manager", "params": {"trail_percent": 10.0}}],
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    (t,) = r.trades
    assert (t.exit_bar, t.exit_price, t.exit_reason) == (3, pytest.approx(108.0), "trailing_stop")


def test_limit_entry_fills_at_level_or_better_open_and_expires():
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=[{"plugin": "limit_entry", "params": {"offset_percent": 2.0, "valid_bars": 2}}],
        size_planning=ALL_IN,
    )
    base = [(100.0, 100.5, 99.5, 100.0), (100.0, 100.5, 99.0, 100.0)]
    r = backtest(bars(base + [(99.0, 99.5, 97.5, 98.5)] + flat(2, 98.5)), bp, cash=1000.0, slippage=0.01)
    (t,) = r.trades
    assert (t.entry_bar, t.entry_price) == (2, 98.0)  # limit level, no slippage
    r = backtest(bars(base + [(97.0, 97.5, 96.0, 97.0)] + flat(2, 97.0)), bp, cash=1000.0)
    assert (r.trades[0].entry_bar, r.trades[0].entry_price) == (2, 97.0)  # gapped below: the better open
    r = backtest(bars(base + flat(3)), bp, cash=1000.0)
    assert r.trades == [] and r.opportunities[0].status == "expired"


def test_stop_entry_and_same_bar_stop_after_intrabar_entry():
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=[{"plugin": "stop_entry", "params": {"offset_percent": 2.0, "valid_bars": 3}}],
        exit_planning=rr_exit(5.0),
        size_planning=ALL_IN,
    )
    base = [(100.0, 100.5, 99.5, 100.0), (100.0, 101.0, 99.0, 100.0)]
    r = backtest(bars(base + [(101.0, 103.0, 100.5, 102.5)] + flat(2, 102.5)), bp, cash=1000.0)
    assert (r.trades[0].entry_bar, r.trades[0].entry_price) == (2, 102.0)
    r = backtest(bars(base + [(104.0, 105.0, 103.5, 104.5)] + flat(2, 104.5)), bp, cash=1000.0)
    assert r.trades[0].entry_price == 104.0  # gapped above the stop level: fills at the open
    # entered intrabar at 102, stop 102 - 5 = 97 touched in the same bar: stopped out there (conservative)
    r = backtest(bars(base + [(101.0, 103.0, 96.0, 97.0)] + flat(2, 97.0)), bp, cash=1000.0)
    (t,) = r.trades
    assert (t.entry_bar, t.exit_bar, t.exit_price, t.exit_reason) == (2, 2, 97.0, "stop_loss")


def test_fixed_risk_sizer_integer_units_and_cap():
    rows = [(100.0, 100.5, 99.5, 100.0)] * 4
    sizer = [{"plugin": "fixed_risk_sizer", "params": {"risk_per_trade_percent": 1.0, "integer_units": True}}]
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        exit_planning=rr_exit(3.0),
        size_planning=sizer,
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    assert r.trades[0].size == 3.0  # 1000 x 1 % / (3 % of 100 = 3) = 3.33 -> 3 whole units
    sizer[0]["params"].update(risk_per_trade_percent=50.0, max_position_fraction=0.5)
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        exit_planning=rr_exit(3.0),
        size_planning=sizer,
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    assert r.trades[0].size == 5.0  # capped at 50 % of equity: 500 / 100


def test_mark_to_market_every_bar_and_exposure():
    rows = [(100.0, 101.0, 99.0, c) for c in (100.0, 102.0, 98.0, 105.0, 110.0)]
    bp = blueprint(
        opportunity_workers=[scripted(longs=[1], shorts=[3])],
        entry_planning=MKT,
        exit_planning=[{"plugin": "opposite_signal_exit", "params": {"reverse": False}}],
        size_planning=[{"plugin": "fixed_fraction_sizer", "params": {"fraction": 0.5}}],
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    u = 500 / 100
    assert r.equity_curve.values == pytest.approx([1000, 1000, 500 + u * 98, 500 + u * 105, 500 + u * 100])
    assert r.opportunities[1].status == "closed_position"  # close only, no reversal
    assert r.metrics.exposure == pytest.approx(3 / 5 * 100)  # entry bar 2 .. exit bar 4, inclusive


def test_bankruptcy_liquidates_at_the_close_and_stops_trading():
    # short 10 units at 100 with 1,000 cash: equity = 2,000 - 10 x close, zero at a close of 200
    rows = flat(2) + [(150.0, 151.0, 149.0, 150.0), (250.0, 251.0, 249.0, 250.0)] + flat(3, 300.0)
    bp = blueprint(
        opportunity_workers=[scripted(shorts=[0], longs=[5])],
        entry_planning=MKT,
        exit_planning=REV,
        size_planning=ALL_IN,
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    (t,) = r.trades
    assert (t.side, t.exit_bar, t.exit_price, t.exit_reason) == ("short", 3, 250.0, "bankruptcy")
    assert t.pnl == pytest.approx(-1500.0)  # the trade's loss as it happened ...
    assert r.equity_curve.values == pytest.approx([1000.0, 1000.0, 500.0, 0.0, 0.0, 0.0, 0.0])  # ... capped
    later = [o for o in r.opportunities if o.bar == 5]
    assert [(o.status, o.reason) for o in later] == [("unfilled", "INSUFFICIENT_EQUITY")]
    m = r.metrics
    assert (m.final_equity, m.total_return, m.max_drawdown) == (0.0, -100.0, 100.0)
    assert m.sharpe_ratio <= 0.0 and m.sortino_ratio <= 0.0 and m.calmar_ratio < 0.0
