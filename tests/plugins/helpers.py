"""Helpers for the plugin tests: hand-made bar series, a Context over them, one-call backtests."""

from __future__ import annotations

from typing import Any

import numpy as np

from s1mple_engine.backtest import run_backtest
from s1mple_engine.config import Blueprint, MarketDataConfig, Operation, StrategyLink
from s1mple_engine.data import MarketData
from s1mple_engine.registry import all_plugins
from s1mple_engine.workers import Context


def bars(
    rows: list[tuple[float, float, float, float]],
    volume: list[float] | float = 1000.0,
    start: str = "2024-01-01",
    unit: str = "D",
) -> MarketData:
    """A dataset from (open, high, low, close) rows; one bar per day (``unit='h'``: per hour)."""
    arr = np.asarray(rows, dtype=float)
    time = np.datetime64(start, unit) + np.arange(len(rows))
    vol = np.full(len(rows), volume) if np.isscalar(volume) else np.asarray(volume, dtype=float)
    return MarketData(time, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], vol, symbol="T")


def candles(closes: list[float], spread: float = 0.5) -> list[tuple[float, float, float, float]]:
    """Rows whose open is the previous close and whose range is the body +/- ``spread``."""
    rows = []
    prev = closes[0]
    for c in closes:
        rows.append((prev, max(prev, c) + spread, min(prev, c) - spread, c))
        prev = c
    return rows


def ctx(data: MarketData) -> Context:
    return Context(data)


def plugin(name: str, **params: Any):
    cls = all_plugins()[name]
    return cls(cls.Params.model_validate(params))


def blueprint(**workers: Any) -> Blueprint:
    data: dict[str, Any] = {"name": "test", "planning_workers": {}, "execution_workers": {}}
    for key, value in workers.items():
        if key in ("entry_planning", "exit_planning", "size_planning", "order_routing"):
            data["planning_workers"][key] = value
        elif key in ("position_management", "risk_safety", "operational"):
            data["execution_workers"][key] = value
        else:
            data[key] = value
    return Blueprint.model_validate(data)


def backtest(data: MarketData, bp: Blueprint, curves: bool = True, **op: Any):
    operation = Operation(
        name="test",
        strategy_links=[StrategyLink(blueprint=bp)],
        market_data=MarketDataConfig(path="sample:synthetic_daily"),
        **op,
    )
    return run_backtest(operation, bp, data, curves=curves)


def at(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()
