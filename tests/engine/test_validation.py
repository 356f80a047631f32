"""Blueprint validation: every problem at once, naming the worker path, the plugin and the valid choices;
event-chain errors; trigger overrides; the registry's contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import backtest, bars, blueprint, flat, scripted

from s1mple_engine.config import ConfigError, load_blueprint
from s1mple_engine.registry import all_plugins, describe, get_plugin
from s1mple_engine.validation import validate_blueprint

MKT = [{"plugin": "market_entry_immediate"}]


def test_all_problems_with_paths_and_choices():
    bp = blueprint(
        opportunity_workers=[
            {"plugin": "fvg_entry_detector", "params": {"min_gap_size": -1, "min_gap": 3}},
            {"plugin": "ma_crossover", "subtype": "mean_reversion", "params": {"fast": 5.5}},
            {"plugin": "ma_crosover"},
        ],
        exit_planning=[{"plugin": "fixed_fraction_sizer"}],
    )
    problems = validate_blueprint(bp)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert (
        "opportunity_workers[0] (fvg_entry_detector).params.min_gap_size: "
        "Input should be greater than or equal to 0" in text
    )
    assert "basis points" in text  # the param's description (units) is part of the message
    assert (
        "opportunity_workers[0] (fvg_entry_detector).params.min_gap: "
        "unknown param; did you mean 'min_gap_size'?" in text
    )
    assert "opportunity_workers[1] (ma_crossover).subtype: 'mean_reversion' does not match" in text
    assert "opportunity_workers[1] (ma_crossover).params.fast: Input should be a valid integer" in text
    assert "opportunity_workers[2].plugin: unknown plugin 'ma_crosover'; did you mean 'ma_crossover'?" in text
    assert "(valid: " in text and "fvg_entry_detector, ma_crossover" in text  # valid plugins of that category
    assert (
        "planning_workers.exit_planning[0] (fixed_fraction_sizer): is a planning size_planning plugin" in text
    )


def test_run_backtest_raises_config_error_listing_problems():
    bp = blueprint(opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 30, "slow": 20}}])
    with pytest.raises(ConfigError, match=r"fast \(30\) must be smaller than slow \(20\)"):
        backtest(bars(flat(5)), bp)


def test_listener_without_publisher():
    bp = blueprint(
        opportunity_workers=[{"plugin": "ma_crossover"}], risk_safety=[{"plugin": "emergency_exit_agent"}]
    )
    (problem,) = validate_blueprint(bp)
    assert problem.startswith(
        "execution_workers.risk_safety[0] (emergency_exit_agent): listens to 'on_threat_detected'"
    )
    assert "no worker in this blueprint publishes it" in problem and "max_drawdown_monitor" in problem


def test_unknown_event():
    (problem,) = validate_blueprint(blueprint(operational=[{"plugin": "test_deaf"}]))
    assert (
        "execution_workers.operational[0] (test_deaf): listens to unknown event 'on_nothing_ever'" in problem
    )


def test_event_cycle():
    (problem,) = validate_blueprint(blueprint(operational=[{"plugin": "test_ping"}, {"plugin": "test_pong"}]))
    assert problem.startswith("event cycle:")
    assert "(test_ping) --test_ping--> execution_workers.operational[1] (test_pong) --test_pong-->" in problem
    # half of the pair: a listener with no publisher
    (problem,) = validate_blueprint(blueprint(operational=[{"plugin": "test_ping"}]))
    assert (
        "listens to 'test_pong' but no worker in this blueprint publishes it; "
        "add a worker that publishes it (test_pong)" in problem
    )


def test_trigger_overrides():
    ok = blueprint(
        opportunity_workers=[{"plugin": "ma_crossover"}],
        threat_workers=[{"plugin": "volatility_spike_detector", "triggers": ["on_opportunity_detected"]}],
    )
    assert validate_blueprint(ok) == []
    bad = blueprint(threat_workers=[{"plugin": "max_drawdown_monitor", "triggers": ["on_context_ready"]}])
    (problem,) = validate_blueprint(bad)
    assert (
        "threat_workers[0] (max_drawdown_monitor).triggers: 'on_context_ready' is not an allowed trigger"
        in problem
    )
    assert "(valid: on_ledger_update)" in problem
    std = blueprint(opportunity_workers=[{"plugin": "ma_crossover", "triggers": ["on_context_ready"]}])
    assert "a StandardWorker" in validate_blueprint(std)[0]
    # a volatility threat triggered on opportunities needs an opportunity publisher
    lonely = blueprint(
        threat_workers=[{"plugin": "volatility_spike_detector", "triggers": ["on_opportunity_detected"]}]
    )
    assert "add an opportunity worker" in validate_blueprint(lonely)[0]


def test_emergency_exit_on_threat_detected():
    # long from bar 0; bar 3 drops 10 %: the daily drawdown monitor fires, the agent exits at bar 4's open
    rows = flat(3) + [(100.0, 100.5, 89.0, 90.0), (91.0, 92.0, 90.0, 91.0)] + flat(3, 91.0)
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        threat_workers=[{"plugin": "max_drawdown_monitor", "params": {"max_daily_drawdown": 5.0}}],
        entry_planning=MKT,
        risk_safety=[{"plugin": "emergency_exit_agent"}],
    )
    r = backtest(bars(rows), bp, cash=1000.0)
    (t,) = r.trades
    assert (t.exit_bar, t.exit_price, t.exit_reason) == (4, 91.0, "emergency_exit")
    assert [(x.threat_id, x.threat_type, x.severity) for x in r.threats] == [
        ("THR-3-0", "MAX_DRAWDOWN_BREACHED", "HIGH")
    ]
    # without the agent the position stays open; the threat is still detected
    bp2 = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        threat_workers=[{"plugin": "max_drawdown_monitor", "params": {"max_daily_drawdown": 5.0}}],
        entry_planning=MKT,
    )
    r2 = backtest(bars(rows), bp2, cash=1000.0)
    assert r2.trades[0].exit_reason == "end_of_data" and r2.causality.threats_detected == 1


def test_drawdown_threat_rejects_opportunities_that_day():
    # hourly bars: a loss at 10:00 breaches; the opportunity at 12:00 the same day is rejected
    import numpy as np

    from s1mple_engine.data import MarketData

    closes = [100, 100, 100, 94, 94, 94, 94, 94]
    time = np.datetime64("2024-01-02T08:00") + np.arange(8) * np.timedelta64(1, "h")
    c = np.array(closes, float)
    d = MarketData(time, c, c + 0.1, c - 0.1, c, np.ones(8))
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0], shorts=[5])],
        threat_workers=[{"plugin": "max_drawdown_monitor", "params": {"max_daily_drawdown": 3.0}}],
        entry_planning=MKT,
        exit_planning=[{"plugin": "opposite_signal_exit"}],
    )
    r = backtest(d, bp, cash=1000.0)
    rejected = r.opportunities[1]
    assert (rejected.status, rejected.threat_ids) == ("rejected", ["THR-3-0"])
    assert [(x.threat_type, x.count) for x in r.causality.top_rejection_reasons] == [
        ("MAX_DRAWDOWN_BREACHED", 1)
    ]


def test_registry_contract():
    plugins = all_plugins()
    required = {
        "ema",
        "atr",
        "rsi",
        "ma_crossover",
        "fvg_entry_detector",
        "max_drawdown_monitor",
        "market_entry_immediate",
        "opposite_signal_exit",
        "atr_based_stops",
        "fixed_rr_exit",
        "fixed_fraction_sizer",
        "fixed_risk_sizer",
        "trailing_stop_manager",
    }
    assert required <= set(plugins)
    d = describe(get_plugin("fvg_entry_detector"))
    assert d["category"] == "opportunity" and d["subtype"] == "technical_pattern"
    assert d["params"]["min_gap_size"] == {
        "type": "float",
        "default": 5.0,
        "bounds": {"ge": 0, "le": 10000},
        "description": "minimum gap in basis points of the previous close (1 bp = 0.01 %)",
    }
    d = describe(get_plugin("max_drawdown_monitor"))
    assert d["capabilities"] == ["events"] and d["triggers"] == ["on_ledger_update"]
    assert d["publishes"] == ["on_threat_detected"]
    with pytest.raises(ConfigError, match="did you mean 'ma_crossover'"):
        get_plugin("ma_crossovr")


def test_shipped_blueprint_is_valid():
    root = Path(__file__).resolve().parents[2]
    assert validate_blueprint(load_blueprint(root / "config/blueprints/ma_crossover.yaml")) == []


def test_sweep_validator_remembers_but_reports_like_validate_blueprint():
    """The memoising validator a sweep uses gives exactly validate_blueprint's problems, per blueprint,
    whatever it saw before (a cached worker or event wiring must not leak into another blueprint)."""
    from s1mple_engine.validation import BlueprintValidator

    validator = BlueprintValidator()
    cases = [
        blueprint(opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 5, "slow": 20}}]),
        blueprint(opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 5.5, "slow": 20}}]),
        blueprint(opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": True, "slow": 20}}]),
        blueprint(operational=[{"plugin": "test_ping"}, {"plugin": "test_pong"}]),
        blueprint(operational=[{"plugin": "test_ping"}]),
        blueprint(opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": [5], "slow": 20}}]),
    ]
    for bp in cases + cases:  # second round: every answer from memory
        assert validator(bp) == validate_blueprint(bp)
    assert validator(cases[0]) == []
    assert any("fast" in p for p in validator(cases[1]))
    assert any("event cycle" in p for p in validator(cases[3]))
    assert any("no worker in this blueprint publishes" in p for p in validator(cases[4]))


def test_a_sweeps_blueprints_share_the_workers_they_do_not_vary():
    """Compiling a blueprint reuses the plugin instance of a worker configured as before (a sweep varies a few
    params; plugins hold no run state) and builds new ones for what changed; a bad config is never kept."""
    from s1mple_engine.validation import require_valid

    def bp(fast: int | float, tp: float = 2.0):
        return blueprint(
            opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": fast, "slow": 30}}],
            entry_planning=MKT,
            exit_planning=[{"plugin": "fixed_rr_exit", "params": {"risk_reward_ratio": tp}}],
        )

    first, second = require_valid(bp(5)), require_valid(bp(6))
    assert first.opportunity[0] is not second.opportunity[0]
    assert (first.opportunity[0].params.fast, second.opportunity[0].params.fast) == (5, 6)
    assert first.planning["entry_planning"][0] is second.planning["entry_planning"][0]
    assert first.planning["exit_planning"][0] is second.planning["exit_planning"][0]
    assert require_valid(bp(5, tp=3.0)).planning["exit_planning"][0].params.risk_reward_ratio == 3.0
    for _ in range(2):  # the same bad value fails the same way twice
        with pytest.raises(ConfigError, match=r"opportunity_workers\[0\] \(ma_crossover\)\.params\.fast"):
            require_valid(bp(5.5))
