"""Risk plugins: the market-risk threat (MARKET_RISK_HIGH) and the threat-aware position sizer."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..registration import register
from ..workers import (
    SEVERITIES,
    Context,
    Opportunities,
    PlanDraft,
    PlanningWorker,
    ThreatWorker,
)
from .planning import RiskSizingParams, plan_risk_size
from .structure import REGIME_VOLATILE, RegimeParams, regime_of

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]


class MarketRiskMonitorParams(RegimeParams):
    require_downtrend: bool = Field(True, description="only while the close is below its average")
    trend_period: int = Field(50, ge=2, le=2000, description="bars in the simple average (downtrend)")
    severity: Severity = Field(
        "HIGH", description="severity attached to the threat: LOW|MEDIUM|HIGH|CRITICAL"
    )


@register
class MarketRiskMonitor(ThreatWorker[MarketRiskMonitorParams]):
    """Market risk regime: a MARKET_RISK_HIGH threat while the market is volatile (ATR/close in the top
    ``volatile_percentile`` of its last ``vol_lookback`` bars, the ``regime_classifier`` definition) and,
    with ``require_downtrend``, the close is below its ``trend_period``-bar simple average.

    Unlike ``volatility_spike_detector`` (one bar's true range) this is a smoothed, multi-bar regime: its
    threat episodes last longer.  Triggered ``on_context_ready`` (default) it is evaluated every bar, one
    threat per episode; ``on_opportunity_detected``: evaluated when an opportunity is vetted."""

    name = "market_risk_monitor"
    subtype = "market_risk"
    kind = "market"
    threat_type = "MARKET_RISK_HIGH"
    triggers = ("on_context_ready", "on_opportunity_detected")
    default_triggers = ("on_context_ready",)

    def flags(self, ctx: Context) -> np.ndarray:
        p = self.params
        out = regime_of(ctx, p)["regime"] == REGIME_VOLATILE
        if p.require_downtrend:
            with np.errstate(invalid="ignore"):
                out = out & (ctx.data.close < ctx.sma(p.trend_period))
        return out


class AdaptiveRiskSizerParams(RiskSizingParams):
    base_risk_percent: float = Field(1.0, gt=0, le=100, description="equity risked per trade, percent")
    reduce_on_high_threat: bool = Field(True, description="scale the risk down after recent threats")
    threat_risk_factor: float = Field(
        0.5, gt=0, le=1, description="risk multiplier (0..1] after a recent threat"
    )
    threat_window_bars: int = Field(
        20, ge=0, le=100_000, description="bars back from the opportunity in which a threat counts"
    )
    min_threat_severity: Severity = Field("MEDIUM", description="lowest severity that counts")


@register
class AdaptiveRiskSizer(PlanningWorker[AdaptiveRiskSizerParams]):
    """Risk-based sizing that de-risks after threats: units = equity x risk / stop distance, with risk =
    ``base_risk_percent`` %, multiplied by ``threat_risk_factor`` when ``reduce_on_high_threat`` is set
    and a threat of severity ``min_threat_severity`` or higher was detected in the ``threat_window_bars``
    bars up to the opportunity (the opportunity itself passed vetting: it is not under an active veto).

    The distance is the planned stop (CHAIN_THROUGH after an exit planner), else ``fallback_stop_percent``
    % of the opportunity's close; notional is capped at ``max_position_fraction`` x equity.  Reduced
    opportunities say ``SIZE_REDUCED_ON_THREAT`` in the result."""

    name = "adaptive_risk_sizer"
    subtype = "risk_based"
    phase = "size_planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        p = self.params
        plan_risk_size(p, p.base_risk_percent, opps, draft)
        if p.reduce_on_high_threat:
            draft.threat_scale = draft.fill(p.threat_risk_factor)
            draft.threat_window = draft.fill(p.threat_window_bars, np.int64)
            draft.threat_min_sev = draft.fill(SEVERITIES.index(p.min_threat_severity), np.int64)
