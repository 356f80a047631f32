"""No lookahead for the shipped blueprints and for non-default plugin configurations (the registry-wide
test in tests/engine runs every plugin with default params in a fixed pipeline; these cover the paths
defaults do not reach: structure trailing with first-target activation, TWAP slices, FVG limit entries,
DCA scale-in, threat-aware sizing).  Truncating the data at bar t, or replacing the bars after t with a
different future (prices, volumes and timestamps: :func:`replace_future`), must not change anything up to
t."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s1mple_engine.config import Blueprint, MarketDataConfig, load_blueprint
from s1mple_engine.data import load_market_data
from s1mple_engine.validation import validate_blueprint

from .helpers import backtest, replace_future

ROOT = Path(__file__).resolve().parents[2]


def shipped(name: str) -> dict[str, Any]:
    return load_blueprint(ROOT / "config/blueprints" / f"{name}.yaml").model_dump()


def ict_aggressive() -> dict[str, Any]:
    bp = shipped("ict_smc")
    bp["threat_workers"] += [
        {"plugin": "volatility_spike_detector", "params": {"volatility_threshold_percentile": 90}}
    ]
    bp["planning_workers"]["entry_planning"] = [{"plugin": "twap_entry", "params": {"duration_minutes": 180}}]
    bp["planning_workers"]["size_planning"] = [
        {"plugin": "adaptive_risk_sizer", "params": {"threat_window_bars": 30, "max_position_fraction": 5.0}}
    ]
    bp["execution_workers"] = {
        "position_management": [
            {"plugin": "partial_profit_taker", "params": {"take_50_percent_at_first_target": True}},
            {
                "plugin": "trailing_stop_manager",
                "params": {"trail_after_first_target": True, "trail_by_structure": True},
            },
        ],
        "risk_safety": [
            {"plugin": "emergency_exit_agent", "params": {"exit_on_severity": ["HIGH", "CRITICAL"]}}
        ],
    }
    return bp


def fvg_retest_limit() -> dict[str, Any]:
    return {
        "name": "fvg_retest_limit",
        "context_workers": [{"plugin": "regime_classifier"}, {"plugin": "swing_structure"}],
        "opportunity_workers": [
            {"plugin": "fvg_detector", "params": {"touch": "midpoint", "min_gap_atr": 0.05}},
            {
                "plugin": "fvg_entry_detector",
                "params": {"min_gap_size": 2.0, "require_volume_confirmation": True},
            },
            {"plugin": "momentum_scanner", "params": {"threshold_atr": 2.0}},
            {"plugin": "rsi_reversal"},
            {"plugin": "oversold_detector", "params": {"z_threshold": 1.5}},
        ],
        "threat_workers": [{"plugin": "market_risk_monitor", "triggers": ["on_opportunity_detected"]}],
        "planning_workers": {
            "entry_planning": [
                {"plugin": "limit_entry_at_fvg", "params": {"entry_at_midpoint": False, "valid_bars": 5}}
            ],
            "exit_planning": [
                {"plugin": "liquidity_target_exit", "params": {"stop_below_order_block": False}}
            ],
            "size_planning": [{"plugin": "fixed_risk_sizer", "params": {"max_position_fraction": 3.0}}],
        },
        "execution_workers": {
            "position_management": [
                {"plugin": "trailing_stop_manager", "params": {"trail_by_structure": True}}
            ]
        },
    }


def dca_simple() -> dict[str, Any]:
    bp = shipped("smart_dca")
    bp["planning_workers"]["entry_planning"] = [{"plugin": "simple_dca_planner", "params": {"amount": 300.0}}]
    return bp


CONFIGS = {
    "ict_smc": lambda: shipped("ict_smc"),
    "ict_aggressive": ict_aggressive,
    "multi_strategy": lambda: shipped("multi_strategy"),
    "fvg_retest_limit": fvg_retest_limit,
    "smart_dca": lambda: shipped("smart_dca"),
    "dca_simple": dca_simple,
}


@pytest.fixture(scope="module")
def data():
    return {
        "hourly": load_market_data(MarketDataConfig(path="sample:synthetic_hourly")).slice(2000, 3500),
        "daily": load_market_data(MarketDataConfig(path="sample:synthetic_daily")).slice(0, 900),
    }


def decisions(result, t: int) -> dict[str, list]:
    return {
        "opportunities": [
            (o.opportunity_id, o.direction, o.source) for o in result.opportunities if o.bar <= t
        ],
        "threats": [(x.threat_id, x.threat_type, x.severity) for x in result.threats if x.bar <= t],
        "fills": [
            (f.bar, f.opportunity_id, f.side, f.size, f.price, f.reason)
            for f in result.fills
            if f.bar <= t and f.reason != "end_of_data"
        ],
    }


@pytest.mark.parametrize("dataset", ["hourly", "daily"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_no_lookahead(config, dataset, data):
    bp = Blueprint.model_validate(CONFIGS[config]())
    assert validate_blueprint(bp) == []
    d = data[dataset]
    n = len(d)
    full = backtest(d, bp, cash=100_000.0, commission=0.0005)
    assert full.fills, "the configuration must trade on this data"
    cuts = {n // 3, n // 2, (4 * n) // 5}
    cuts |= (
        {f.bar for f in full.fills[:6]}
        | {f.bar - 1 for f in full.fills[:6]}
        | {x.bar for x in full.threats[:3]}
    )
    for t in sorted(c for c in cuts if 5 <= c < n - 1):
        cut = backtest(d.slice(0, t + 1), bp, cash=100_000.0, commission=0.0005)
        a, b = decisions(full, t - 1), decisions(cut, t - 1)
        for key in a:
            assert a[key] == b[key], (
                f"{config}/{dataset}: {key} up to bar {t - 1} change when the data ends at {t}"
            )
        np.testing.assert_array_equal(full.equity_curve.values[:t], cut.equity_curve.values[:t])
        alt = backtest(replace_future(d, t), bp, cash=100_000.0, commission=0.0005)
        b = decisions(alt, t)
        a = decisions(full, t)
        for key in a:
            assert a[key] == b[key], f"{config}/{dataset}: {key} up to bar {t} change with another future"
        np.testing.assert_array_equal(full.equity_curve.values[: t + 1], alt.equity_curve.values[: t + 1])


def test_the_paths_are_exercised(data):
    r = backtest(data["hourly"], Blueprint.model_validate(ict_aggressive()), cash=100_000.0)
    reasons = {f.reason for f in r.fills} | {t.exit_reason for t in r.trades}
    assert {"entry_slice", "partial_take_profit", "trailing_stop"} <= reasons
    assert any(o.reason == "SIZE_REDUCED_ON_THREAT" for o in r.opportunities)
    r = backtest(data["daily"], Blueprint.model_validate(fvg_retest_limit()), cash=100_000.0)
    fvg_ids = {
        o.opportunity_id for o in r.opportunities if o.source.startswith("fvg") and o.status == "traded"
    }
    opens = data["daily"].open
    limit_fills = [
        f for f in r.fills if f.opportunity_id in fvg_ids and f.reason == "entry" and f.price < opens[f.bar]
    ]
    assert limit_fills  # filled inside the bar at the gap's edge, below the open
    r = backtest(data["daily"], Blueprint.model_validate(dca_simple()), cash=100_000.0)
    assert "scale_in" in {f.reason for f in r.fills}
