"""Helpers for the engine tests: tiny hand-made datasets, scripted test plugins, one-call backtests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import Field

from s1mple_engine.backtest import run_backtest
from s1mple_engine.config import Blueprint, MarketDataConfig, Operation, StrategyLink
from s1mple_engine.data import MarketData
from s1mple_engine.registry import register
from s1mple_engine.workers import (
    Context,
    EventDrivenWorker,
    ExecutionWorker,
    OpportunityWorker,
    PluginParams,
    Signals,
    ThreatWorker,
)

# ------------------------------------------------------------------------------------------------ plugins
# Registered for the whole test session; the no-lookahead property test covers them like any plugin.


@register
class ScriptedSignals(OpportunityWorker):
    """Test plugin: opportunities at fixed bars (long bars, short bars)."""

    name = "test_scripted_signals"
    subtype = "test"

    class Params(PluginParams):
        longs: list[int] = Field(default_factory=list, description="bars with a long signal")
        shorts: list[int] = Field(default_factory=list, description="bars with a short signal")
        confirm_window: int = Field(0, ge=0, description="bars a signal confirms others (CHAIN_THROUGH)")

    def detect(self, ctx: Context) -> Signals:
        long = np.zeros(ctx.n, dtype=bool)
        short = np.zeros(ctx.n, dtype=bool)
        long[[b for b in self.params.longs if b < ctx.n]] = True
        short[[b for b in self.params.shorts if b < ctx.n]] = True
        return Signals.from_masks(long, short & ~long)


class _ScriptedThreat(ThreatWorker):
    kind = "market"
    triggers = ("on_context_ready", "on_opportunity_detected")
    default_triggers = ("on_opportunity_detected",)

    class Params(PluginParams):
        bars: list[int] = Field(default_factory=list, description="bars where the threat condition holds")
        severity: str = Field("MEDIUM", description="severity")

    def flags(self, ctx: Context) -> np.ndarray:
        f = np.zeros(ctx.n, dtype=bool)
        f[[b for b in self.params.bars if b < ctx.n]] = True
        return f


@register
class ScriptedThreatA(_ScriptedThreat):
    """Test plugin: market threat A at fixed bars."""

    name = "test_threat_a"
    subtype = "test"
    threat_type = "THREAT_A"


@register
class ScriptedThreatB(_ScriptedThreat):
    """Test plugin: market threat B at fixed bars."""

    name = "test_threat_b"
    subtype = "test"
    threat_type = "THREAT_B"


@register
class PingWorker(EventDrivenWorker, ExecutionWorker):
    """Test plugin: publishes ``test_ping``, listens to ``test_pong`` (half of a cycle)."""

    name = "test_ping"
    subtype = "test"
    phase = "operational"
    publishes = ("test_ping",)
    listens = ("test_pong",)

    def configure(self, ctx: Context) -> dict[str, Any]:
        return {}


@register
class PongWorker(EventDrivenWorker, ExecutionWorker):
    """Test plugin: publishes ``test_pong``, listens to ``test_ping`` (other half of the cycle)."""

    name = "test_pong"
    subtype = "test"
    phase = "operational"
    publishes = ("test_pong",)
    listens = ("test_ping",)

    def configure(self, ctx: Context) -> dict[str, Any]:
        return {}


@register
class DeafWorker(EventDrivenWorker, ExecutionWorker):
    """Test plugin: listens to an event nobody can publish."""

    name = "test_deaf"
    subtype = "test"
    phase = "operational"
    listens = ("on_nothing_ever",)

    def configure(self, ctx: Context) -> dict[str, Any]:
        return {}


#: test plugins the no-lookahead test cannot place on their own (they need partners or are broken on purpose)
BROKEN_TEST_PLUGINS = {"test_ping", "test_pong", "test_deaf"}

# ------------------------------------------------------------------------------------------------ helpers


def bars(
    rows: list[tuple[float, float, float, float]], start: str = "2024-01-01", volume: float = 1000.0
) -> MarketData:
    """A daily dataset from (open, high, low, close) rows."""
    arr = np.asarray(rows, dtype=float)
    time = np.datetime64(start, "D") + np.arange(len(rows))
    return MarketData(
        time, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.full(len(rows), volume), symbol="T"
    )


def flat(n: int, price: float = 100.0) -> list[tuple[float, float, float, float]]:
    """n bars at ``price`` with a +/-0.5 range (nothing touches levels further away)."""
    return [(price, price + 0.5, price - 0.5, price)] * n


def blueprint(**workers: Any) -> Blueprint:
    data: dict[str, Any] = {"name": "test"}
    planning = {}
    execution = {}
    for key, value in workers.items():
        if key in ("entry_planning", "exit_planning", "size_planning", "order_routing"):
            planning[key] = value
        elif key in ("position_management", "risk_safety", "operational"):
            execution[key] = value
        else:
            data[key] = value
    data["planning_workers"] = planning
    data["execution_workers"] = execution
    return Blueprint.model_validate(data)


def operation(bp: Blueprint | None = None, **kw: Any) -> Operation:
    bp = bp or blueprint()
    return Operation(
        name="test",
        strategy_links=[StrategyLink(blueprint=bp)],
        market_data=MarketDataConfig(path="sample:synthetic_daily"),
        **kw,
    )


def backtest(data: MarketData, bp: Blueprint, curves: bool = True, **op: Any):
    return run_backtest(operation(bp, **op), bp, data, curves=curves)


def scripted(longs=(), shorts=(), **params: Any) -> dict[str, Any]:
    return {
        "plugin": "test_scripted_signals",
        "params": {"longs": list(longs), "shorts": list(shorts), **params},
    }


@pytest.fixture(scope="session")
def daily() -> MarketData:
    from s1mple_engine.data import load_market_data

    return load_market_data(MarketDataConfig(path="sample:synthetic_daily"))
