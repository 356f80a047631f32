"""Causal traceability: deterministic OpportunityIDs / ThreatIDs, trades link to opportunities, rejected
opportunities name the threats that rejected them."""

from __future__ import annotations

from conftest import backtest, blueprint

MKT = [{"plugin": "market_entry_immediate"}]


def _threat_aware():
    return blueprint(
        opportunity_workers=[{"plugin": "ma_crossover", "params": {"fast": 5, "slow": 20}}],
        threat_workers=[
            {"plugin": "volatility_spike_detector", "params": {"volatility_threshold_percentile": 85.0}},
            {"plugin": "max_drawdown_monitor", "params": {"max_daily_drawdown": 1.0}},
        ],
        entry_planning=MKT,
        exit_planning=[{"plugin": "atr_based_stops"}, {"plugin": "opposite_signal_exit"}],
        size_planning=[{"plugin": "fixed_risk_sizer"}],
    )


def test_ids_links_and_rejections(daily):
    r = backtest(daily, _threat_aware(), commission=0.001)
    opps = {o.opportunity_id: o for o in r.opportunities}
    threats = {t.threat_id: t for t in r.threats}
    assert len(opps) == r.causality.opportunities_detected and len(threats) == r.causality.threats_detected
    for oid, o in opps.items():
        assert oid.startswith(f"OPP-{o.bar}-")
    for tid, t in threats.items():
        assert tid.startswith(f"THR-{t.bar}-")
    assert r.trades
    for t in r.trades:
        assert opps[t.opportunity_id].status == "traded"
        assert opps[t.opportunity_id].bar < t.entry_bar  # decided at a close, filled later
    rejected = [o for o in r.opportunities if o.status == "rejected"]
    assert len(rejected) == r.causality.opportunities_rejected > 0
    types = {}
    for o in rejected:
        assert o.threat_ids
        for tid in o.threat_ids:
            assert threats[tid].bar <= o.bar  # a threat known when the opportunity was vetted
            types[threats[tid].threat_type] = types.get(threats[tid].threat_type, 0) + 1
    assert {x.threat_type: x.count for x in r.causality.top_rejection_reasons} == types
    assert r.summary()["causality"]["top_rejection_reasons"][0]["count"] == max(types.values())


def test_deterministic(daily):
    a = backtest(daily, _threat_aware(), commission=0.001)
    b = backtest(daily, _threat_aware(), commission=0.001)
    assert a.to_json() == b.to_json()


def test_summary_is_compact(daily):
    r = backtest(daily, _threat_aware(), curves=False)
    full = backtest(daily, _threat_aware(), curves=True)
    assert r.summary() == full.summary()
    assert r.trades == [] and r.equity_curve is None
    assert len(r.to_json()) < 2000
