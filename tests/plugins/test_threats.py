"""Threat workers: market_risk_monitor (MARKET_RISK_HIGH) on constructed series; types and severities."""

from __future__ import annotations

import numpy as np

from s1mple_engine.registry import all_plugins

from .helpers import at, bars, ctx, plugin


def crash_rows(recover: bool):
    """60 quiet bars around 100, then 10 wide bars falling (or rising, ``recover``) 2 per bar."""
    rows = [(100.0, 100.5, 99.5, 100.0 + (0.1 if i % 2 else -0.1)) for i in range(60)]
    c = 100.0
    for _ in range(10):
        nxt = c + (2.0 if recover else -2.0)
        rows.append((c, max(c, nxt) + 2.0, min(c, nxt) - 2.0, nxt))
        c = nxt
    return rows


PARAMS = dict(atr_period=3, vol_lookback=20, volatile_percentile=90.0, trend_period=20)


def test_market_risk_high_in_a_volatile_downtrend():
    flags = plugin("market_risk_monitor", **PARAMS).flags(ctx(bars(crash_rows(False))))
    assert not flags[:60].any()  # quiet: no threat
    assert flags[60:].sum() >= 5 and flags[61]  # volatile and below the 20-bar average


def test_market_risk_not_flagged_in_a_volatile_rally_unless_asked():
    d = bars(crash_rows(True))
    assert not plugin("market_risk_monitor", **PARAMS).flags(ctx(d)).any()  # above its average
    loose = plugin("market_risk_monitor", require_downtrend=False, **PARAMS).flags(ctx(d))
    assert at(loose)[:2] == [60, 61]


def test_threat_types_and_severities():
    plugins = all_plugins()
    types = {
        n: plugins[n].threat_type
        for n in ("max_drawdown_monitor", "volatility_spike_detector", "market_risk_monitor")
    }
    assert types == {
        "max_drawdown_monitor": "MAX_DRAWDOWN_BREACHED",
        "volatility_spike_detector": "VOLATILITY_SPIKE",
        "market_risk_monitor": "MARKET_RISK_HIGH",
    }
    assert plugin("market_risk_monitor").severity == "HIGH"
    assert plugin("market_risk_monitor", severity="CRITICAL").severity == "CRITICAL"
    assert plugins["market_risk_monitor"].default_triggers == ("on_context_ready",)
    assert np.dtype(bool) == plugin("market_risk_monitor").flags(ctx(bars(crash_rows(False)))).dtype
