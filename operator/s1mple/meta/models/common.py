"""Metric names, range caps, directions: what the research specs and the reports share."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from s1mple_engine.config import (
    EXECUTION_PHASES,
    PLANNING_PHASES,
)

#: Metrics of a backtest summary (s1mple_engine.backtest.BacktestResult.summary()["metrics"]).
METRICS = (
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "max_drawdown",
    "win_rate",
    "total_trades",
    "avg_trade_duration",
    "profit_factor",
    "exposure",
    "calmar_ratio",
)
#: Causality counts of a backtest summary.
CAUSALITY_COUNTS = (
    "opportunities_detected",
    "opportunities_rejected",
    "opportunities_skipped",
    "threats_detected",
)

WORKER_CATEGORIES = (
    "context_workers",
    "opportunity_workers",
    "threat_workers",
    "planning_workers",
    "execution_workers",
)
PHASED_CATEGORIES = {"planning_workers": PLANNING_PHASES, "execution_workers": EXECUTION_PHASES}
VISUALIZATIONS = ("equity_curves", "drawdown_curves", "monthly_returns", "trade_distribution")
CAUSALITY_ANALYSES = ("opportunities_per_variant", "threats_per_variant", "rejection_reasons")

#: Largest number of values one range may expand to (a guard against ``step: 0.0000001`` typos).
MAX_RANGE_VALUES = 1_000_000
DEFAULT_MAX_COMBINATIONS = 100_000

WorkerCategory = Literal[
    "context_workers", "opportunity_workers", "threat_workers", "planning_workers", "execution_workers"
]
Scalar = bool | int | float | str


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


#: Direction of a metric when the spec does not say: drawdown is better small, everything else big.
DEFAULT_DIRECTIONS: dict[str, Direction] = {"max_drawdown": Direction.MINIMIZE}


def metric_direction(metric: str, overrides: dict[str, Direction] | None = None) -> Direction:
    if overrides and metric in overrides:
        return Direction(overrides[metric])
    return DEFAULT_DIRECTIONS.get(metric, Direction.MAXIMIZE)


# --------------------------------------------------------------------------------------------------------
# Ranges
