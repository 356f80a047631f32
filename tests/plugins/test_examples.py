"""The design document's 12 examples (config/optimizations, config/variants) on the plugin library:

* each plans (``s1mple plan``) with the combination count its ranges imply, counted by hand below;
* each runs to completion with ``s1mple optimize`` / ``s1mple variant-test`` on small real data
  (backtesting.py's EURUSD hourly / GOOG daily, a few hundred bars);
* the threat-aware variant of the robustness test rejects opportunities the baseline trades, and says why;
* ``s1mple plugins --json`` lists every plugin of the library with its manifest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s1mple.meta.planner import plan_file
from s1mple_engine.backtest import run_backtest
from s1mple_engine.config import Operation

ROOT = Path(__file__).resolve().parents[2]
S1MPLE = [str(Path(sys.executable).with_name("s1mple"))]

#: combinations implied by each example's ranges, by hand
EXPECTED = {
    # min_gap_size 3..10 step 1 (8) x require_structure_break [true, false] (2)
    "optimizations/optimize_fvg_params.yaml": 16,
    # one subtype variant per run: technical_pattern, momentum_signal, mean_reversion
    "optimizations/optimize_opportunity_types.yaml": 3,
    # entry: 3 variants x exit: liquidity_target_exit (1) + atr_based_stops 1.0..3.0 step 0.5 (5)
    "optimizations/optimize_planning_phases.yaml": 3 * (1 + 5),
    # PlanningOperator SEQUENTIAL|PARALLEL (2) x OpportunityOperator PARALLEL (1)
    "optimizations/optimize_operator_strategies.yaml": 2 * 1,
    # implicit_chain_variant, custom_event_chain_variant
    "optimizations/optimize_event_workflows.yaml": 2,
    # fvg 8*2 x liquidity exit 2*2 x risk 0.5..2.0 step 0.25 (7) x operator 1*1
    "optimizations/comprehensive_ict_optimization.yaml": 8 * 2 * 2 * 2 * 7,
    "variants/fvg_strategy_variants.yaml": 3,
    "variants/opportunity_type_variants.yaml": 3,
    "variants/exit_strategy_variants.yaml": 3,
    "variants/operator_strategy_variants.yaml": 3,
    "variants/event_chain_variants.yaml": 2,
    # baseline, strict_entry, relaxed_entry, threat_aware, liquidity_exits, atr_exits,
    # parallel_opportunity, aggressive_management
    "variants/comprehensive_robustness_test.yaml": 8,
}
assert EXPECTED["optimizations/comprehensive_ict_optimization.yaml"] == 448


def s1mple(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*S1MPLE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> dict[str, str]:
    """A few hundred bars of backtesting.py's real data: EURUSD hourly (ICT bases), GOOG daily (others)."""
    from backtesting.test import EURUSD, GOOG

    d = tmp_path_factory.mktemp("data")
    EURUSD.iloc[:800].to_csv(d / "eurusd.csv")
    GOOG.iloc[:400].to_csv(d / "goog.csv")
    return {"hourly": str(d / "eurusd.csv"), "daily": str(d / "goog.csv")}


def test_every_example_is_covered():
    found = {f"{p.parent.name}/{p.name}" for p in (ROOT / "config").glob("*/*.yaml")}
    assert set(EXPECTED) <= found


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_plans_with_the_expected_count(example):
    r = s1mple("plan", f"config/{example}", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    count = out.get("total_combinations", out.get("total_variants"))
    assert count == EXPECTED[example], out


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_runs_to_completion_on_small_data(example, small_data, tmp_path):
    text = (ROOT / "config" / example).read_text()
    data = small_data["hourly" if "ict_smc_backtest" in text else "daily"]
    command = "optimize" if example.startswith("optimizations/") else "variant-test"
    r = s1mple(
        command,
        f"config/{example}",
        "--data",
        data,
        "--out",
        str(tmp_path),
        "--json",
        "--quiet",
        "--max-workers",
        "2",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "result.json").read_text())
    total = result.get("total_combinations", result.get("total_variants"))
    assert total == EXPECTED[example]
    assert result["successful_runs"] == total and result["failed_runs"] == 0
    assert len(result["results"]) == total


def test_threat_aware_rejects_what_the_baseline_takes_and_says_why():
    plan = plan_file(ROOT / "config/variants/comprehensive_robustness_test.yaml")  # sample:synthetic_hourly
    names = [v.name for v in plan.config.variants]
    run = {
        n: run_backtest(Operation.model_validate(plan.payload(names.index(n))["operation"]))
        for n in ("baseline", "threat_aware")
    }
    base, aware = run["baseline"], run["threat_aware"]
    assert base.causality.opportunities_detected == aware.causality.opportunities_detected  # same entries
    assert aware.causality.opportunities_rejected > base.causality.opportunities_rejected
    traded = {o.opportunity_id for o in base.opportunities if o.status == "traded"}
    taken_then_rejected = [
        o for o in aware.opportunities if o.status == "rejected" and o.opportunity_id in traded
    ]
    assert len(taken_then_rejected) >= 3
    # why: every rejection names threats, of the threat-aware workers' types, and the counts add up
    threats = {t.threat_id: t for t in aware.threats}
    reasons = {r.threat_type: r.count for r in aware.causality.top_rejection_reasons}
    assert (
        set(reasons) <= {"MAX_DRAWDOWN_BREACHED", "VOLATILITY_SPIKE"}
        and reasons.get("VOLATILITY_SPIKE", 0) > 0
    )
    for o in taken_then_rejected:
        # the threat (a spike episode's onset, or the day's drawdown breach) is known at the decision bar
        assert o.threat_ids and all(threats[t].bar <= o.bar for t in o.threat_ids)
    per_type: dict[str, int] = {}
    for o in aware.opportunities:
        for t in o.threat_ids:
            per_type[threats[t].threat_type] = per_type.get(threats[t].threat_type, 0) + 1
    assert per_type == reasons
    # and the adaptive sizer de-risked some of the entries it did take, after threats
    assert any(o.reason == "SIZE_REDUCED_ON_THREAT" for o in aware.opportunities if o.status == "traded")


LIBRARY = {
    # context: indicators and structure
    "ema": ("context", "indicator"),
    "atr": ("context", "volatility"),
    "rsi": ("context", "momentum"),
    "swing_structure": ("context", "market_structure"),
    "order_blocks": ("context", "market_structure"),
    "liquidity_levels": ("context", "liquidity"),
    "regime_classifier": ("context", "regime"),
    # opportunity
    "fvg_entry_detector": ("opportunity", "technical_pattern"),
    "fvg_detector": ("opportunity", "technical_pattern"),
    "breakout_scanner": ("opportunity", "technical_pattern"),
    "trend_follower": ("opportunity", "momentum_signal"),
    "momentum_scanner": ("opportunity", "momentum_signal"),
    "oversold_detector": ("opportunity", "mean_reversion"),
    "rsi_reversal": ("opportunity", "mean_reversion"),
    "dca_opportunity_scorer": ("opportunity", "accumulation"),
    # threat
    "max_drawdown_monitor": ("threat", "portfolio_risk"),
    "volatility_spike_detector": ("threat", "market_risk"),
    "market_risk_monitor": ("threat", "market_risk"),
    # planning
    "limit_entry_at_fvg": ("planning", "limit_order"),
    "market_entry_immediate": ("planning", "market_order"),
    "twap_entry": ("planning", "twap"),
    "liquidity_target_exit": ("planning", "structure_exit"),
    "atr_based_stops": ("planning", "volatility_stop"),
    "fixed_rr_exit": ("planning", "target_exit"),
    "fixed_risk_sizer": ("planning", "risk_based"),
    "adaptive_risk_sizer": ("planning", "risk_based"),
    "simple_dca_planner": ("planning", "dca"),
    "adaptive_dca_planner": ("planning", "dca"),
    # execution
    "partial_profit_taker": ("execution", "partial_exit"),
    "trailing_stop_manager": ("execution", "trailing_stop"),
    "emergency_exit_agent": ("execution", "emergency_exit"),
}

DESIGN_PARAMS = {
    "fvg_entry_detector": {"min_gap_size", "require_structure_break", "require_volume_confirmation"},
    "max_drawdown_monitor": {"max_daily_drawdown"},
    "volatility_spike_detector": {"volatility_threshold_percentile"},
    "limit_entry_at_fvg": {"entry_at_midpoint"},
    "twap_entry": {"duration_minutes"},
    "liquidity_target_exit": {"target_opposite_liquidity", "stop_below_order_block"},
    "atr_based_stops": {"atr_multiplier"},
    "fixed_rr_exit": {"risk_reward_ratio"},
    "fixed_risk_sizer": {"risk_per_trade_percent"},
    "adaptive_risk_sizer": {"base_risk_percent", "reduce_on_high_threat"},
    "partial_profit_taker": {"take_50_percent_at_first_target", "move_stop_to_breakeven"},
    "trailing_stop_manager": {"trail_after_first_target", "trail_by_structure"},
    "emergency_exit_agent": {"exit_on_severity"},
}


def test_plugins_json_lists_the_library():
    r = s1mple("plugins", "--json")
    assert r.returncode == 0, r.stderr
    listed = {p["name"]: p for p in json.loads(r.stdout)}
    for name, (category, subtype) in LIBRARY.items():
        p = listed[name]
        assert (p["category"], p["subtype"]) == (category, subtype), name
        assert p["description"] and "  " not in p["description"]
        for field, spec in p["params"].items():
            assert {"type", "default", "bounds", "description"} <= set(spec), (name, field)
        assert {"capabilities", "triggers", "publishes", "listens"} <= set(p)
    for name, params in DESIGN_PARAMS.items():
        assert params <= set(listed[name]["params"]), name
    assert listed["twap_entry"]["params"]["duration_minutes"]["bounds"] == {"ge": 1, "le": 525_600}
    assert listed["simple_dca_planner"]["worker_type"] == "StandardWorker"
    assert listed["simple_dca_planner"]["capabilities"] == []
    adaptive = listed["adaptive_dca_planner"]
    assert adaptive["worker_type"] == "EventDrivenWorker" and adaptive["capabilities"] == ["events"]
    assert adaptive["listens"] == ["dca_opportunity_scored"]
    assert adaptive["triggers"] == ["on_opportunity_detected"]
    assert listed["dca_opportunity_scorer"]["publishes"] == ["dca_opportunity_scored"]
    assert listed["max_drawdown_monitor"]["default_triggers"] == ["on_ledger_update"]
    assert listed["volatility_spike_detector"]["default_triggers"] == ["on_context_ready"]
    assert listed["emergency_exit_agent"]["default_triggers"] == ["on_threat_detected"]
