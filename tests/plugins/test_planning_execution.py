"""Planning and execution workers on constructed series: FVG limit entries, liquidity exits, TWAP slices,
threat-aware sizing, DCA scale-in, structure trailing, first-target activation, 50 % partials."""

from __future__ import annotations

import numpy as np
import pytest

from s1mple_engine.workers import Opportunities, PlanDraft

from .helpers import backtest, bars, blueprint, ctx, plugin
from .test_opportunity import FLAT, fvg_rows
from .test_structure import HIGHS, equal_highs_rows, rising_rows


def opps(data, bar_dirs: list[tuple[int, int]], meta=None) -> Opportunities:
    b = np.array([x for x, _ in bar_dirs], dtype=np.int64)
    d = np.array([x for _, x in bar_dirs], dtype=np.int8)
    m = len(b)
    return Opportunities(b, d, np.zeros(m, np.int16), data.close[b], meta or {}, np.zeros(m, np.int8))


def plan(name: str, data, o: Opportunities, **params) -> PlanDraft:
    draft = PlanDraft(len(o))
    plugin(name, **params).plan(ctx(data), o, draft)
    return draft


# ------------------------------------------------------------------------------------ limit_entry_at_fvg

FVG_ENTRY = [{"plugin": "fvg_entry_detector", "params": {"min_gap_size": 5.0}}]


@pytest.mark.parametrize(("midpoint", "fill"), [(False, (5, 11.0)), (True, None)])
def test_limit_entry_at_fvg_edge_fills_midpoint_does_not(midpoint, fill):
    d = bars(fvg_rows(10.8, 11.6))  # gap [10.5, 11] at bar 2; price comes back to 10.8 at bar 5
    bp = blueprint(
        opportunity_workers=FVG_ENTRY,
        entry_planning=[{"plugin": "limit_entry_at_fvg", "params": {"entry_at_midpoint": midpoint}}],
    )
    r = backtest(d, bp)
    entries = [(f.bar, f.price) for f in r.fills if f.reason == "entry"]
    if fill:
        assert entries == [fill]  # the limit at the gap's top (11), touched by bar 5's low
    else:
        assert entries == [] and r.opportunities[0].status == "unfilled"  # 10.75 never reached


def test_limit_entry_at_fvg_without_gap_metadata_is_a_market_entry():
    d = bars(fvg_rows(10.8, 11.6))
    draft = plan("limit_entry_at_fvg", d, opps(d, [(2, 1)]))
    assert draft.entry_type.tolist() == [0]  # ENTRY_MARKET
    meta = {"gap_top": np.array([11.0]), "gap_bottom": np.array([10.5])}
    draft = plan("limit_entry_at_fvg", d, opps(d, [(2, 1)], meta), entry_at_midpoint=True)
    assert draft.entry_type.tolist() == [1] and draft.entry_level.tolist() == [10.75]
    draft = plan("limit_entry_at_fvg", d, opps(d, [(2, -1)], meta))
    assert draft.entry_level.tolist() == [10.5]  # a short's near edge is the gap's bottom


# ------------------------------------------------------------------------------------ liquidity_target_exit


def test_liquidity_target_exit_stop_at_order_block_or_swing():
    rows = rising_rows(HIGHS)
    rows[8] = (12.5, 13.0, 10.0, 10.5)  # the bullish order block [10, 13] made by the break at bar 10
    d = bars(rows)
    o = opps(d, [(10, 1)])  # close 15.5
    common = dict(swing_length=2, stop_buffer_atr=0.0, target_opposite_liquidity=False, risk_reward_ratio=2.0)
    draft = plan("liquidity_target_exit", d, o, stop_below_order_block=True, **common)
    assert draft.stop_dist.tolist() == [5.5] and draft.tp_dist.tolist() == [11.0]  # 15.5 - 10; 2R
    draft = plan("liquidity_target_exit", d, o, stop_below_order_block=False, **common)
    assert draft.stop_dist.tolist() == [7.5]  # the last confirmed swing low: 8


def test_liquidity_target_exit_targets_equal_highs():
    d = bars(equal_highs_rows(15.05, 15.4))  # buy-side pool at 15.05 from bar 11 to bar 15
    o = opps(d, [(12, 1)])  # close 9.5; last swing low 9 (bar 6)
    common = dict(
        swing_length=2, tolerance_atr=0.1, atr_period=3, stop_buffer_atr=0.0, stop_below_order_block=True
    )
    draft = plan("liquidity_target_exit", d, o, target_opposite_liquidity=True, **common)
    assert draft.stop_dist.tolist() == [0.5]
    assert draft.tp_dist[0] == pytest.approx(15.05 - 9.5)  # the opposite (buy-side) liquidity
    draft = plan("liquidity_target_exit", d, o, target_opposite_liquidity=False, **common)
    assert draft.tp_dist.tolist() == [1.0]  # 2R
    draft = plan(
        "liquidity_target_exit", d, o, target_opposite_liquidity=True, min_reward_risk=20.0, **common
    )
    assert draft.tp_dist.tolist() == [1.0]  # the pool is nearer than 20R: not used


def test_liquidity_target_exit_always_has_a_stop():
    d = bars([FLAT] * 5)
    draft = plan("liquidity_target_exit", d, opps(d, [(1, 1)]), fallback_stop_percent=2.0)
    assert draft.stop_dist.tolist() == [pytest.approx(0.2)]  # ATR still warming up: 2 % of 10


# ------------------------------------------------------------------------------------ twap_entry


def test_twap_slices_on_hourly_bars_and_one_slice_on_daily_bars():
    rows = [(o, o + 0.5, o - 0.5, o + 0.2) for o in np.arange(10.0, 20.0)]
    breakout = [{"plugin": "breakout_scanner", "params": {"lookback": 2, "allow_short": False}}]
    twap = [{"plugin": "twap_entry", "params": {"duration_minutes": 240}}]
    r = backtest(
        bars(rows, unit="h"), blueprint(opportunity_workers=breakout, entry_planning=twap), cash=1200.0
    )
    first = [f for f in r.fills if f.opportunity_id == r.trades[0].opportunity_id]
    assert [(f.bar, f.reason) for f in first[:4]] == [
        (3, "entry"),
        (4, "entry_slice"),
        (5, "entry_slice"),
        (6, "entry_slice"),
    ]
    assert len({round(f.size, 9) for f in first[:4]}) == 1  # equal slices
    assert r.trades[0].entry_price == pytest.approx(np.mean([13.0, 14.0, 15.0, 16.0]))  # the average
    assert r.notes == []
    daily = backtest(bars(rows), blueprint(opportunity_workers=breakout, entry_planning=twap))
    assert [f.reason for f in daily.fills if f.reason != "end_of_data"][:1] == ["entry"]
    assert "entry_slice" not in {f.reason for f in daily.fills}
    assert any("1 slice" in n and "1440-minute" in n for n in daily.notes)  # said, not hidden


def test_twap_on_daily_bars_equals_market_entry():
    d = bars([(o, o + 0.5, o - 0.5, o + 0.2) for o in np.arange(10.0, 30.0)])
    bo = [{"plugin": "breakout_scanner", "params": {"lookback": 3}}]
    a = backtest(d, blueprint(opportunity_workers=bo, entry_planning=[{"plugin": "twap_entry"}]))
    b = backtest(d, blueprint(opportunity_workers=bo, entry_planning=[{"plugin": "market_entry_immediate"}]))
    assert a.metrics == b.metrics


# ------------------------------------------------------------------------------------ adaptive_risk_sizer


def spike_then_breakout(spike_bar: int = 15, breakout_bar: int = 18):
    rows = [FLAT] * 30
    rows[spike_bar] = (10.0, 10.9, 9.1, 10.0)  # a wide bar: a volatility spike
    rows[breakout_bar] = (10.0, 11.2, 10.0, 11.1)  # closes above the channel
    for i in range(breakout_bar + 1, 30):
        rows[i] = (11.1, 11.6, 10.6, 11.1)
    return bars(rows)


@pytest.mark.parametrize(("reduce", "window", "factor"), [(True, 5, 0.5), (True, 2, 1.0), (False, 5, 1.0)])
def test_adaptive_risk_sizer_reduces_after_a_recent_threat(reduce, window, factor):
    bp = blueprint(
        opportunity_workers=[{"plugin": "breakout_scanner", "params": {"lookback": 5, "allow_short": False}}],
        threat_workers=[
            {
                "plugin": "volatility_spike_detector",
                "params": {"lookback": 10, "volatility_threshold_percentile": 95},
            }
        ],
        size_planning=[
            {
                "plugin": "adaptive_risk_sizer",
                "params": {
                    "base_risk_percent": 1.0,
                    "reduce_on_high_threat": reduce,
                    "threat_risk_factor": 0.5,
                    "threat_window_bars": window,
                    "fallback_stop_percent": 2.0,
                },
            }
        ],
    )
    r = backtest(spike_then_breakout(), bp)
    assert [t.bar for t in r.threats] == [15]
    (o,) = [o for o in r.opportunities if o.bar == 18]
    assert o.status == "traded"  # the spike is over: not vetoed, only sized down
    units = 10_000 * 0.01 / (0.02 * 11.1) * factor  # 1 % risk over a 2 % stop
    assert r.trades[0].size == pytest.approx(units)
    assert (o.reason == "SIZE_REDUCED_ON_THREAT") == (factor < 1)


def test_adaptive_risk_sizer_ignores_threats_below_its_severity():
    bp = blueprint(
        opportunity_workers=[{"plugin": "breakout_scanner", "params": {"lookback": 5, "allow_short": False}}],
        threat_workers=[
            {
                "plugin": "volatility_spike_detector",
                "params": {"lookback": 10, "volatility_threshold_percentile": 95, "severity": "LOW"},
            }
        ],
        size_planning=[{"plugin": "adaptive_risk_sizer", "params": {"min_threat_severity": "MEDIUM"}}],
    )
    r = backtest(spike_then_breakout(), bp)
    assert r.opportunities[0].reason is None


# ------------------------------------------------------------------------------------ DCA planners


def dca_data():
    closes = [100.0] * 20 + [80.0] * 15
    return bars([(c, c + 0.5, c - 0.5, c) for c in closes])


def test_simple_dca_planner_buys_a_fixed_amount_and_scales_in():
    bp = blueprint(
        opportunity_workers=[
            {"plugin": "dca_opportunity_scorer", "params": {"frequency": "weekly", "ma_period": 5}}
        ],
        entry_planning=[{"plugin": "simple_dca_planner", "params": {"amount": 1000.0}}],
    )
    r = backtest(dca_data(), bp, cash=3500.0)
    buys = [(f.bar, f.reason, round(f.size * f.price, 6)) for f in r.fills if f.side == "buy"]
    assert buys == [
        (1, "entry", 1000.0),
        (8, "scale_in", 1000.0),
        (15, "scale_in", 1000.0),
        (22, "scale_in", 500.0),
    ]
    assert [o.status for o in r.opportunities] == ["traded"] * 4 + ["unfilled"]  # cash ran out
    assert r.opportunities[-1].reason == "INSUFFICIENT_EQUITY"
    assert len(r.trades) == 1 and r.trades[0].exit_reason == "end_of_data"  # one position, held


def test_adaptive_dca_planner_buys_more_below_the_average():
    bp = blueprint(
        opportunity_workers=[
            {
                "plugin": "dca_opportunity_scorer",
                "params": {"frequency": "weekly", "ma_period": 5, "full_score_discount_percent": 10},
            }
        ],
        entry_planning=[
            {
                "plugin": "adaptive_dca_planner",
                "params": {"base_amount": 1000.0, "min_multiplier": 0.5, "max_multiplier": 1.5},
            }
        ],
    )
    r = backtest(dca_data(), bp, cash=100_000.0)
    spent = {f.bar - 1: f.size * f.price for f in r.fills if f.side == "buy"}
    assert spent[14] == pytest.approx(1000.0)  # at its average: score 0.5
    assert spent[21] == pytest.approx(1500.0)  # 20 % below the 5-day average: score 1 -> 1.5x


def test_adaptive_dca_planner_needs_the_scored_event():
    from s1mple_engine.validation import validate_blueprint

    bp = blueprint(
        opportunity_workers=[{"plugin": "breakout_scanner"}],
        entry_planning=[{"plugin": "adaptive_dca_planner"}],
    )
    (problem,) = validate_blueprint(bp)
    assert "dca_opportunity_scored" in problem and "dca_opportunity_scorer" in problem


# ------------------------------------------------------------------------------------ execution


def trail_rows():
    rows = [FLAT] * 25
    rows += [
        (10.0, 11.1, 9.9, 11.0),  # 25: breakout (long), entry at 26's open
        (11.0, 11.6, 10.9, 11.5),
        (11.5, 12.6, 12.0, 12.5),
        (12.5, 12.6, 11.8, 12.0),  # 28: a swing low (length 1) at 11.8, confirmed at bar 29
        (12.0, 13.1, 12.2, 13.0),
        (13.0, 13.6, 12.9, 13.5),
        (13.5, 13.6, 11.5, 11.6),  # 31: trades through 11.8
        (11.6, 12.0, 11.0, 11.5),
    ]
    return bars(rows)


def trail_bp(**trail):
    return blueprint(
        opportunity_workers=[
            {"plugin": "breakout_scanner", "params": {"lookback": 20, "allow_short": False}}
        ],
        exit_planning=[
            {"plugin": "fixed_rr_exit", "params": {"stop_percent": 5.0, "risk_reward_ratio": 10.0}}
        ],
        position_management=[{"plugin": "trailing_stop_manager", "params": trail}],
    )


def test_trailing_by_structure_exits_at_the_confirmed_swing_low():
    r = backtest(trail_rows(), trail_bp(trail_by_structure=True, swing_length=1))
    (t,) = r.trades
    assert (t.entry_bar, t.exit_bar, t.exit_price, t.exit_reason) == (26, 31, 11.8, "trailing_stop")


@pytest.mark.parametrize(("first_target_r", "exit_bar"), [(1.0, 31), (5.0, 32)])
def test_trail_only_after_the_first_target(first_target_r, exit_bar):
    # R = 5 % of 11.0 = 0.55: 1R (11.55) is reached in bar 26; 5R (13.75) never is -> no trailing
    bp = trail_bp(
        trail_by_structure=True, swing_length=1, trail_after_first_target=True, first_target_r=first_target_r
    )
    (t,) = backtest(trail_rows(), bp).trades
    assert t.exit_bar == exit_bar
    assert t.exit_reason == ("trailing_stop" if exit_bar == 31 else "end_of_data")


def test_partial_profit_taker_takes_50_percent_at_the_first_target():
    bp = trail_bp()
    bp.execution_workers.position_management = []
    data = bp.model_dump()
    data["execution_workers"]["position_management"] = [
        {
            "plugin": "partial_profit_taker",
            "params": {
                "take_50_percent_at_first_target": True,
                "fraction": 0.3,
                "move_stop_to_breakeven": True,
            },
        }
    ]
    r = backtest(trail_rows(), type(bp).model_validate(data))
    first, rest = r.trades[0], r.trades[1]
    assert first.exit_reason == "partial_take_profit" and first.exit_price == pytest.approx(11.55)
    assert first.size == pytest.approx(rest.size)  # 50 %, not 30 %
    assert rest.exit_reason == "breakeven_stop" and rest.exit_price == 11.0  # bar 32 touches the entry


def test_atr_based_stops_fallback_during_warm_up():
    d = bars([FLAT] * 20)
    draft = plan("atr_based_stops", d, opps(d, [(3, 1), (19, 1)]), atr_multiplier=2.0, atr_period=14)
    assert draft.stop_dist[0] == pytest.approx(0.2)  # ATR(14) undefined at bar 3: 2 % of 10
    assert draft.stop_dist[1] == pytest.approx(2.0)  # 2 x ATR (1.0) once it is defined
