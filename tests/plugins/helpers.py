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


def replace_future(data: MarketData, t: int, spacing_divisor: int = 60) -> MarketData:
    """``data`` with every bar after ``t`` replaced by a different future: prices mirrored around
    ``close[t]`` (c^2 / price, so rallies become sell-offs and OHLC stays consistent), volume tripled, and
    timestamps ``spacing_divisor`` times closer together.  A causal engine decides the same up to t."""
    c = data.close[t]
    k = slice(t + 1, None)
    mirror = lambda a: np.concatenate((a[: t + 1], c * c / a[k]))  # noqa: E731
    step = (data.time[t] - data.time[t - 1]) // spacing_divisor if t >= 1 else np.timedelta64(1, "m")
    time = np.concatenate((data.time[: t + 1], data.time[t] + step * np.arange(1, len(data) - t)))
    return MarketData(
        time,
        mirror(data.open),
        np.concatenate((data.high[: t + 1], c * c / data.low[k])),
        np.concatenate((data.low[: t + 1], c * c / data.high[k])),
        mirror(data.close),
        np.concatenate((data.volume[: t + 1], 3.0 * data.volume[k] + 1.0)),
        symbol=data.symbol,
        timeframe=data.timeframe,
        source=data.source,
    )
