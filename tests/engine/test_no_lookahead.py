"""No lookahead, for EVERY registered plugin (parametrized over the registry: new plugins are covered).

For each plugin a blueprint containing it is run on a dataset, on the same dataset truncated at bar t, and
on the dataset with a different future after bar t (mirrored prices, other volumes, timestamps 60 times
closer together: :func:`replace_future`), for several t (fixed fractions plus adversarial bars:
opportunity and fill bars of the full run).  Up to t the truncated and the replaced runs must make
identical decisions - opportunities (ids, bars, directions), threats (ids,
bars, types), orders/fills (bars, sides, sizes, prices, reasons) - and have identical equity before t
(bar t itself differs only by the forced end-of-data exit).  The plugin's own outputs are checked too
(both ways of changing the future):
context features, opportunity signals and bias, market-threat flags.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from conftest import BROKEN_TEST_PLUGINS, backtest, blueprint

from s1mple_engine.config import MarketDataConfig, WorkerConfig
from s1mple_engine.data import MarketData, load_market_data
from s1mple_engine.registry import all_plugins
from s1mple_engine.validation import validate_blueprint
from s1mple_engine.workers import Context, ContextWorker, OpportunityWorker, ThreatWorker
from tests.plugins.helpers import replace_future

#: params that make a plugin fire often enough on the sample data to be a meaningful test
ACTIVE_PARAMS: dict[str, dict[str, Any]] = {
    "max_drawdown_monitor": {"max_daily_drawdown": 0.5},
    "volatility_spike_detector": {
        "volatility_threshold_percentile": 80.0,
        "lookback": 50,
        "severity": "HIGH",
    },
    "fvg_entry_detector": {"min_gap_size": 1.0},
    "emergency_exit_agent": {"exit_on_severity": ["MEDIUM", "HIGH", "CRITICAL"]},
    "test_scripted_signals": {"longs": list(range(30, 1500, 97)), "shorts": list(range(70, 1500, 89))},
    "test_threat_a": {"bars": list(range(40, 1500, 31))},
    "test_threat_b": {"bars": list(range(41, 1500, 53))},
    "limit_entry": {"offset_percent": 0.2, "valid_bars": 3},
    "stop_entry": {"offset_percent": 0.2, "valid_bars": 3},
    "trailing_stop_manager": {"trail_percent": 2.0},
    "partial_profit_taker": {"target_r": 0.5},
}

PLUGINS = sorted(n for n in all_plugins() if n not in BROKEN_TEST_PLUGINS)


def _worker(name: str, **extra: Any) -> dict[str, Any]:
    return {"plugin": name, "params": dict(ACTIVE_PARAMS.get(name, {})), **extra}


def blueprint_with(name: str):
    cls = all_plugins()[name]
    parts: dict[str, Any] = {
        "opportunity_workers": [_worker("ma_crossover") | {"params": {"fast": 5, "slow": 15}}],
        "entry_planning": [_worker("market_entry_immediate")],
        "exit_planning": [
            _worker("atr_based_stops") | {"params": {"atr_multiplier": 3.0}},
            _worker("opposite_signal_exit"),
        ],
        "size_planning": [_worker("fixed_fraction_sizer") | {"params": {"fraction": 0.9}}],
    }
    w = _worker(name)
    if cls.category in ("context", "threat"):
        parts[f"{cls.category}_workers"] = [w]
    elif cls.category == "opportunity":
        parts["opportunity_workers"] = [w]
    elif cls.phase == "exit_planning":
        parts["exit_planning"] = [w] + (
            [_worker("opposite_signal_exit")] if name != "opposite_signal_exit" else []
        )
    else:
        parts[cls.phase] = [w]
    bp = blueprint(**parts)
    problems = validate_blueprint(bp)
    if any("no worker in this blueprint publishes it" in p and "on_threat_detected" in p for p in problems):
        parts["threat_workers"] = [_worker("max_drawdown_monitor"), _worker("volatility_spike_detector")]
        bp = blueprint(**parts)
        problems = validate_blueprint(bp)
    # custom events (e.g. adaptive_dca_planner listens to dca_opportunity_scored): add a registered publisher
    no_publisher = r"listens to '(\w+)' but no worker in this blueprint publishes it"
    missing = re.findall(no_publisher, "\n".join(problems))
    for event in sorted(set(missing)):
        pubs = [c for n, c in all_plugins().items() if event in c.publishes and n not in BROKEN_TEST_PLUGINS]
        pub = pubs[0]
        key = f"{pub.category}_workers" if pub.phase is None else pub.phase
        parts[key] = [_worker(pub.name)] + list(parts.get(key, []))
    if missing:
        bp = blueprint(**parts)
        problems = validate_blueprint(bp)
    assert problems == [], problems
    return bp


def _decisions(result, t: int) -> dict[str, list]:
    return {
        "opportunities": [
            (o.opportunity_id, o.bar, o.direction, o.source) for o in result.opportunities if o.bar <= t
        ],
        "threats": [(x.threat_id, x.bar, x.threat_type) for x in result.threats if x.bar <= t],
        "fills": [
            (f.bar, f.opportunity_id, f.side, f.size, f.price, f.reason)
            for f in result.fills
            if f.bar <= t and f.reason != "end_of_data"
        ],
    }


@pytest.fixture(scope="module")
def datasets() -> dict[str, MarketData]:
    daily = load_market_data(MarketDataConfig(path="sample:synthetic_daily")).slice(0, 900)
    hourly = load_market_data(MarketDataConfig(path="sample:synthetic_hourly")).slice(0, 1500)
    return {"daily": daily, "hourly": hourly}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _plugin_outputs(plugin, data: MarketData, t: int, other: MarketData | None = None) -> None:
    """The plugin's own vectorized outputs up to t do not change when the future is cut off (or replaced
    by ``other``'s)."""
    full, cut = Context(data), Context(other if other is not None else data.slice(0, t + 1))
    if other is not None:  # compare the same prefix: keep bars <= t of both
        return _plugin_outputs_prefix(plugin, full, cut, t)
    if isinstance(plugin, ContextWorker):
        fa, fb = plugin.compute(full), plugin.compute(cut)
        for k in fa:
            assert _same(fa[k][: t + 1], fb[k]), f"feature {k} changes before bar {t}"
    elif isinstance(plugin, OpportunityWorker):
        sa, sb = plugin.detect(full), plugin.detect(cut)
        keep = sa.bars <= t
        assert _same(sa.bars[keep], sb.bars) and _same(sa.dirs[keep], sb.dirs)
        for k in sa.meta:
            assert _same(sa.meta[k][keep], sb.meta[k])
        assert _same(plugin.bias(full)[: t + 1], plugin.bias(cut))
    elif isinstance(plugin, ThreatWorker) and plugin.kind == "market":
        assert _same(plugin.flags(full)[: t + 1], plugin.flags(cut))


def _plugin_outputs_prefix(plugin, a: Context, b: Context, t: int) -> None:
    if isinstance(plugin, ContextWorker):
        fa, fb = plugin.compute(a), plugin.compute(b)
        for k in fa:
            assert _same(fa[k][: t + 1], fb[k][: t + 1]), f"feature {k} up to bar {t} sees the future"
    elif isinstance(plugin, OpportunityWorker):
        sa, sb = plugin.detect(a), plugin.detect(b)
        ka, kb = sa.bars <= t, sb.bars <= t
        assert _same(sa.bars[ka], sb.bars[kb]) and _same(sa.dirs[ka], sb.dirs[kb])
        for k in sa.meta:
            assert _same(sa.meta[k][ka], sb.meta[k][kb])
        assert _same(plugin.bias(a)[: t + 1], plugin.bias(b)[: t + 1])
    elif isinstance(plugin, ThreatWorker) and plugin.kind == "market":
        assert _same(plugin.flags(a)[: t + 1], plugin.flags(b)[: t + 1])


@pytest.mark.parametrize("dataset", ["daily", "hourly"])
@pytest.mark.parametrize("name", PLUGINS)
def test_no_lookahead(name, dataset, datasets):
    data = datasets[dataset]
    n = len(data)
    bp = blueprint_with(name)
    full = backtest(data, bp, commission=0.001, slippage=0.0005)
    assert full.opportunities, "the test blueprint must produce decisions"
    cuts = {n // 5, n // 2, (4 * n) // 5, n - 2}
    cuts |= {o.bar for o in full.opportunities[:3]} | {o.bar + 1 for o in full.opportunities[:3]}
    cuts |= {f.bar for f in full.fills[:4]} | {x.bar for x in full.threats[:3]}
    cls = all_plugins()[name]
    wc = next(w for _, _, w in bp.workers() if w.plugin == name)
    plugin = cls(cls.Params.model_validate(wc.params), None)
    for t in sorted(c for c in cuts if 2 <= c < n - 1):
        cut = backtest(data.slice(0, t + 1), bp, commission=0.001, slippage=0.0005)
        a, b = _decisions(full, t), _decisions(cut, t)
        for key in a:
            assert a[key] == b[key], f"{name}: {key} up to bar {t} differ when the data ends at bar {t}"
        np.testing.assert_array_equal(full.equity_curve.values[:t], cut.equity_curve.values[:t])
        _plugin_outputs(plugin, data, t)
        other = replace_future(data, t)
        alt = backtest(other, bp, commission=0.001, slippage=0.0005)
        b = _decisions(alt, t)
        for key in a:
            assert a[key] == b[key], f"{name}: {key} up to bar {t} differ when the bars after {t} differ"
        np.testing.assert_array_equal(full.equity_curve.values[: t + 1], alt.equity_curve.values[: t + 1])
        _plugin_outputs(plugin, data, t, other)


def test_everything_together(datasets):
    """All shipped plugins in one blueprint (the five-category pipeline), truncated at several bars."""
    bp = blueprint(
        context_workers=[_worker("ema"), _worker("atr"), _worker("rsi")],
        opportunity_workers=[_worker("ma_crossover"), _worker("fvg_entry_detector")],
        threat_workers=[_worker("max_drawdown_monitor"), _worker("volatility_spike_detector")],
        entry_planning=[_worker("market_entry_immediate")],
        exit_planning=[_worker("atr_based_stops"), _worker("fixed_rr_exit"), _worker("opposite_signal_exit")],
        size_planning=[_worker("fixed_risk_sizer")],
        position_management=[_worker("trailing_stop_manager"), _worker("partial_profit_taker")],
        risk_safety=[_worker("emergency_exit_agent")],
    )
    assert validate_blueprint(bp) == []
    data = datasets["hourly"]
    full = backtest(data, bp, commission=0.0005)
    reasons = {t.exit_reason for t in full.trades}
    assert full.causality.threats_detected and full.causality.opportunities_rejected
    assert {"partial_take_profit", "emergency_exit"} <= reasons and reasons & {"stop_loss", "trailing_stop"}
    for t in (300, 777, 1200, len(data) - 2):
        cut = backtest(data.slice(0, t + 1), bp, commission=0.0005)
        assert _decisions(full, t) == _decisions(cut, t)
        np.testing.assert_array_equal(full.equity_curve.values[:t], cut.equity_curve.values[:t])


def test_worker_config_roundtrip():
    # the blueprints built here are plain configuration: they survive a YAML-ish dump/load
    bp = blueprint_with("fvg_entry_detector")
    assert WorkerConfig.model_validate(bp.opportunity_workers[0].model_dump()).plugin == "fvg_entry_detector"
