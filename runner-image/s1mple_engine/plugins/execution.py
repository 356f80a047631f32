"""Execution workers: position management (trailing stops, partial exits) and risk/safety reactions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..registration import register
from ..workers import THREAT_EVENT, Context, EventDrivenWorker, ExecutionWorker, PluginParams


class TrailingStopManagerParams(PluginParams):
    trail_percent: float = Field(3.0, gt=0, le=90, description="trail distance, percent of the best price")
    atr_multiplier: float | None = Field(
        None, gt=0, le=50, description="if set: trail distance in ATRs instead"
    )
    atr_period: int = Field(14, ge=1, le=1000, description="ATR length in bars (with atr_multiplier)")
    trail_after_first_target: bool = Field(
        False, description="start trailing only after the best price reached the first target"
    )
    first_target_r: float = Field(
        1.0, gt=0, le=100, description="first target in multiples of the stop distance (R)"
    )
    fallback_target_percent: float = Field(
        2.0, gt=0, le=100, description="first target, percent from the fill, when no stop is planned"
    )
    trail_by_structure: bool = Field(
        False, description="trail behind the latest confirmed swing low (high) instead of a distance"
    )
    swing_length: int = Field(
        3, ge=1, le=100, description="bars each side of a swing (with trail_by_structure)"
    )
    structure_buffer_atr: float = Field(
        0.0, ge=0, le=20, description="buffer beyond the swing, in ATRs (with trail_by_structure)"
    )


@register
class TrailingStopManager(ExecutionWorker[TrailingStopManagerParams]):
    """Trail the stop behind the best price since entry; the stop only ever tightens.

    For a long, the stop during bar t is max(previous stop, highest high from entry to t-1 minus the
    distance); the distance is ``trail_percent`` % of that high, or ``atr_multiplier`` x ATR[t-1] when
    set.  The entry bar uses the fill price as the best price.  Mirrored for shorts.

    ``trail_by_structure``: instead of a distance, the stop trails the market structure: for a long, the
    latest confirmed swing low as known at the close of t-1 (swing length ``swing_length``; a swing is
    confirmed ``swing_length`` bars after its pivot) minus ``structure_buffer_atr`` x ATR[t-1]; for a
    short the latest swing high plus the buffer.
    ``trail_after_first_target``: trailing starts only once the best price since entry (up to t-1) has
    reached the first target, ``first_target_r`` x the planned stop distance from the fill (the
    ``partial_profit_taker``'s default target), or ``fallback_target_percent`` % without a stop."""

    name = "trailing_stop_manager"
    subtype = "trailing_stop"
    phase = "position_management"

    def configure(self, ctx: Context) -> dict[str, Any]:
        p = self.params
        act = (p.first_target_r, p.fallback_target_percent / 100.0) if p.trail_after_first_target else None
        if p.trail_by_structure:
            from .structure import swings

            s = swings(ctx, p.swing_length)
            buf = p.structure_buffer_atr * ctx.atr(p.atr_period) if p.structure_buffer_atr else 0.0
            levels = (s["last_swing_low"] - buf, s["last_swing_high"] + buf)
            return {"trail": ("levels", 0.0, levels, act)}
        if p.atr_multiplier is not None:
            return {"trail": ("atr", p.atr_multiplier, ctx.atr(p.atr_period), act)}
        return {"trail": ("percent", p.trail_percent / 100.0, None, act)}


class PartialProfitTakerParams(PluginParams):
    target_r: float = Field(
        1.0, gt=0, le=100, description="target distance in multiples of the stop distance"
    )
    fraction: float = Field(0.5, gt=0, lt=1, description="fraction of the open units taken off")
    move_stop_to_breakeven: bool = Field(True, description="after the partial exit, stop at the entry price")
    fallback_target_percent: float = Field(2.0, gt=0, le=100, description="target, percent, when no stop")
    take_50_percent_at_first_target: bool = Field(
        False, description="take 50 % off at the first target (target_r), overriding fraction"
    )


@register
class PartialProfitTaker(ExecutionWorker[PartialProfitTakerParams]):
    """Take ``fraction`` of the position off at ``target_r`` x the stop distance (R) from the fill, once;
    optionally move the stop to the entry price (breakeven) from the next bar.

    Without a planned stop the target is ``fallback_target_percent`` % from the fill.
    ``take_50_percent_at_first_target`` (the design document's spelling) takes exactly 50 % at that first
    target, whatever ``fraction`` says."""

    name = "partial_profit_taker"
    subtype = "partial_exit"
    phase = "position_management"

    def configure(self, ctx: Context) -> dict[str, Any]:
        p = self.params
        fraction = 0.5 if p.take_50_percent_at_first_target else p.fraction
        fallback = p.fallback_target_percent / 100.0
        return {"partial": (p.target_r, fraction, p.move_stop_to_breakeven, fallback)}


Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]


def _severe() -> list[Severity]:
    return ["CRITICAL", "HIGH"]


class EmergencyExitAgentParams(PluginParams):
    exit_on_severity: list[Severity] = Field(
        default_factory=_severe,
        min_length=1,
        description="threat severities that close",
    )


@register
class EmergencyExitAgent(EventDrivenWorker, ExecutionWorker[EmergencyExitAgentParams]):
    """Close the open position with a market order when a threat of a listed severity is detected
    (next bar's open; this bar's close with ``fill_at: close``)."""

    name = "emergency_exit_agent"
    subtype = "emergency_exit"
    phase = "risk_safety"
    triggers = (THREAT_EVENT,)
    default_triggers = (THREAT_EVENT,)

    def configure(self, ctx: Context) -> dict[str, Any]:
        return {"emergency": frozenset(self.params.exit_on_severity)}
