"""Each operator strategy combination is observable in results (see operators.py / docs/operators.md)."""

from __future__ import annotations

import pytest
from conftest import backtest, bars, blueprint, flat, scripted

from s1mple_engine.operators import default_operators
from s1mple_engine.validation import validate_blueprint

MKT = [{"plugin": "market_entry_immediate"}]
REV = [{"plugin": "opposite_signal_exit"}]
PARALLEL = {"execution_strategy": "PARALLEL", "aggregation_strategy": "COLLECT_ALL"}
SEQUENTIAL = {"execution_strategy": "SEQUENTIAL", "aggregation_strategy": "CHAIN_THROUGH"}
EVENTS = {"execution_strategy": "EVENT_DRIVEN", "aggregation_strategy": "NONE"}


def test_packaged_defaults():
    ops = default_operators()
    assert ops["OpportunityOperator"].aggregation_strategy == "COLLECT_ALL"
    assert ops["PlanningOperator"].aggregation_strategy == "CHAIN_THROUGH"
    assert ops["ThreatOperator"].aggregation_strategy == "COLLECT_ALL"


def _opps(strategy):
    a = scripted(longs=[5, 10], shorts=[15])
    b = scripted(longs=[5, 12], shorts=[20])
    b["params"]["longs"].append(15)  # B long at 15 while A is short: a same-bar conflict
    bp = blueprint(
        opportunity_workers=[a, b],
        entry_planning=MKT,
        exit_planning=REV,
        operator_overrides={"OpportunityOperator": strategy},
    )
    return backtest(bars(flat(30)), bp)


def test_opportunity_collect_chain_none_differ():
    collected = _opps(PARALLEL)
    chained = _opps(SEQUENTIAL)
    events = _opps(EVENTS)
    # COLLECT_ALL: union, same-bar duplicates merged (bar 5), the conflict at 15 recorded as skipped
    assert [(o.bar, o.direction, o.source, o.status) for o in collected.opportunities] == [
        (5, "long", "test_scripted_signals", "traded"),
        (10, "long", "test_scripted_signals", "skipped"),
        (12, "long", "test_scripted_signals", "skipped"),
        (15, "short", "test_scripted_signals", "traded"),
        (15, "long", "test_scripted_signals", "skipped"),
        (20, "short", "test_scripted_signals", "skipped"),
    ]
    assert collected.opportunities[4].reason == "CONFLICTING_OPPORTUNITY"
    assert collected.causality.opportunities_detected == 6
    # CHAIN_THROUGH: A's signals survive only where B agrees at that bar -> only bar 5
    assert [(o.bar, o.direction) for o in chained.opportunities] == [(5, "long")]
    assert chained.causality.opportunities_detected == 1
    # NONE: every signal is its own opportunity (two at bar 5), later same-bar ones are skipped
    assert [o.opportunity_id for o in events.opportunities[:2]] == ["OPP-5-0", "OPP-5-1"]
    assert events.causality.opportunities_detected == 7
    assert events.opportunities[1].reason == "DUPLICATE_SAME_BAR"
    assert (
        len(
            {
                collected.causality.opportunities_detected,
                chained.causality.opportunities_detected,
                events.causality.opportunities_detected,
            }
        )
        == 3
    )


def test_chain_confirmation_window():
    a = scripted(longs=[10])
    b = scripted(longs=[8], confirm_window=2)  # B's signal at 8 still agrees at 10
    bp = blueprint(
        opportunity_workers=[a, b], entry_planning=MKT, operator_overrides={"OpportunityOperator": SEQUENTIAL}
    )
    assert [o.bar for o in backtest(bars(flat(20)), bp).opportunities] == [10]
    b["params"]["confirm_window"] = 1
    bp = blueprint(
        opportunity_workers=[a, b], entry_planning=MKT, operator_overrides={"OpportunityOperator": SEQUENTIAL}
    )
    assert backtest(bars(flat(20)), bp).opportunities == []


def test_chain_filters_real_plugins(daily):
    workers = [
        {"plugin": "ma_crossover", "params": {"fast": 5, "slow": 20}},
        {"plugin": "fvg_entry_detector", "params": {"min_gap_size": 1.0, "confirm_window": 20}},
    ]
    runs = {}
    for name, strat in (("collect", PARALLEL), ("chain", SEQUENTIAL)):
        bp = blueprint(
            opportunity_workers=workers,
            entry_planning=MKT,
            exit_planning=REV,
            operator_overrides={"OpportunityOperator": strat},
        )
        runs[name] = backtest(daily, bp, curves=False)
    assert (
        0 < runs["chain"].causality.opportunities_detected < runs["collect"].causality.opportunities_detected
    )


def _planning(strategy):
    bp = blueprint(
        opportunity_workers=[scripted(longs=[0])],
        entry_planning=MKT,
        exit_planning=[
            {"plugin": "fixed_rr_exit", "params": {"stop_percent": 5.0, "risk_reward_ratio": 3.0}}
        ],
        size_planning=[
            {
                "plugin": "fixed_risk_sizer",
                "params": {"risk_per_trade_percent": 1.0, "fallback_stop_percent": 2.0},
            }
        ],
        operator_overrides={"PlanningOperator": strategy},
    )
    return backtest(bars(flat(5)), bp, cash=1000.0)


def test_planning_sequential_sizer_sees_the_stop_parallel_uses_fallback():
    chained = _planning(SEQUENTIAL)
    parallel = _planning(PARALLEL)
    assert chained.trades[0].size == pytest.approx(1000 * 0.01 / 5.0)  # risk over the planned 5 % stop
    assert parallel.trades[0].size == pytest.approx(1000 * 0.01 / 2.0)  # fallback 2 % of the close
    none = _planning(EVENTS)
    assert none.trades[0].size == parallel.trades[0].size  # NONE plans like COLLECT_ALL


def test_planning_chain_target_uses_earlier_stop_collect_keeps_own(daily):
    exit_workers = [
        {"plugin": "atr_based_stops", "params": {"atr_multiplier": 1.0}},
        {"plugin": "fixed_rr_exit", "params": {"risk_reward_ratio": 2.0, "stop_percent": 10.0}},
    ]
    out = {}
    for name, strat in (("chain", SEQUENTIAL), ("collect", PARALLEL)):
        bp = blueprint(
            opportunity_workers=[{"plugin": "ma_crossover"}],
            entry_planning=MKT,
            exit_planning=exit_workers,
            operator_overrides={"PlanningOperator": strat},
        )
        out[name] = backtest(daily, bp, curves=False)
    assert out["chain"].metrics.model_dump() != out["collect"].metrics.model_dump()


def _threats(strategy, trigger="on_opportunity_detected"):
    threats = [
        {"plugin": "test_threat_a", "params": {"bars": [3, 7]}, "triggers": [trigger]},
        {"plugin": "test_threat_b", "params": {"bars": [3]}, "triggers": [trigger]},
    ]
    bp = blueprint(
        opportunity_workers=[scripted(longs=[3])],
        threat_workers=threats,
        entry_planning=MKT,
        operator_overrides={"ThreatOperator": strategy},
    )
    return backtest(bars(flat(10)), bp)


def test_threat_collect_all_vs_chain_through_vs_none():
    collect = _threats(PARALLEL)
    chain = _threats(SEQUENTIAL)
    none = _threats(EVENTS)
    # COLLECT_ALL: both threats evaluated and recorded on the rejected opportunity
    assert collect.causality.opportunities_rejected == 1
    assert collect.causality.threats_detected == 2
    assert [(r.threat_type, r.count) for r in collect.causality.top_rejection_reasons] == [
        ("THREAT_A", 1),
        ("THREAT_B", 1),
    ]
    assert collect.opportunities[0].threat_ids == ["THR-3-0", "THR-3-1"]
    # CHAIN_THROUGH: stops at the first rejecting threat; B is never evaluated
    assert chain.causality.opportunities_rejected == 1
    assert chain.causality.threats_detected == 1
    assert [(r.threat_type, r.count) for r in chain.causality.top_rejection_reasons] == [("THREAT_A", 1)]
    assert chain.opportunities[0].threat_ids == ["THR-3-0"]
    # NONE: threats are only published (for listeners), they veto nothing
    assert none.causality.opportunities_rejected == 0 and none.causality.threats_detected == 2
    assert none.trades and none.trades[0].opportunity_id == "OPP-3-0"


def test_threat_triggers_change_evaluation_points():
    every_bar = _threats(PARALLEL, trigger="on_context_ready")
    on_opportunity = _threats(PARALLEL, trigger="on_opportunity_detected")
    # every bar: A's episodes at 3 and 7 and B's at 3 are all detected; on opportunity: only at bar 3
    assert every_bar.causality.threats_detected == 3
    assert on_opportunity.causality.threats_detected == 2
    assert [t.threat_id for t in every_bar.threats] == ["THR-3-0", "THR-3-1", "THR-7-0"]


def test_operator_combination_validation():
    bp = blueprint(
        opportunity_workers=[{"plugin": "ma_crossover"}],
        operator_overrides={
            "OpportunityOperator": {"execution_strategy": "PARALLEL", "aggregation_strategy": "CHAIN_THROUGH"}
        },
    )
    (problem,) = validate_blueprint(bp)
    assert "CHAIN_THROUGH needs execution_strategy SEQUENTIAL" in problem


def test_context_strategies_are_equivalent(daily):
    ctx_workers = [{"plugin": "ema", "params": {"period": 30}}, {"plugin": "rsi"}, {"plugin": "atr"}]
    results = []
    for strat in (SEQUENTIAL, PARALLEL, EVENTS):
        bp = blueprint(
            context_workers=ctx_workers,
            opportunity_workers=[{"plugin": "ma_crossover"}],
            entry_planning=MKT,
            exit_planning=REV,
            operator_overrides={"ContextOperator": strat},
        )
        results.append(backtest(daily, bp, curves=False).summary())
    assert results[0] == results[1] == results[2]
