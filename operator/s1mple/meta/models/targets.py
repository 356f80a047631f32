"""What a sweep optimises and how: targets, run constraints, parallelism, search strategy."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from s1mple_engine.config import (
    SpecModel,
    suggest,
)

from .common import METRICS, Direction, metric_direction


class OptimizationTargets(SpecModel):
    primary_metric: str = Field(default="sharpe_ratio", description="the metric that ranks runs")
    direction: Direction | None = Field(
        default=None, description="of the primary metric; default maximize (minimize for max_drawdown)"
    )
    secondary_metrics: list[str] = Field(default_factory=list, description="further metrics to report")
    metric_directions: dict[str, Direction] = Field(
        default_factory=dict, description="maximize or minimize, per metric"
    )

    @model_validator(mode="after")
    def _known(self) -> OptimizationTargets:
        for m in [self.primary_metric, *self.secondary_metrics, *self.metric_directions]:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}{suggest(m, METRICS)}")
        return self

    def primary_direction(self) -> Direction:
        if self.direction is not None:
            return self.direction
        return metric_direction(self.primary_metric, self.metric_directions)


class RunConstraints(SpecModel):
    """A run that violates these is infeasible: reported, but never the best."""

    min_trades: int | None = Field(default=None, ge=0, description="fewer trades: the run is infeasible")
    max_drawdown: float | None = Field(default=None, ge=0, description="percent, e.g. 15.0")


class ParallelConfig(SpecModel):
    max_workers: int | None = Field(default=None, ge=1, le=1024, description="default: one per core")
    timeout_per_run: float | None = Field(default=None, gt=0, description="seconds; default: none")


class SearchStrategy(StrEnum):
    GRID = "grid"
    RANDOM = "random"
    BAYESIAN = "bayesian"


class SearchConfig(SpecModel):
    strategy: SearchStrategy = Field(default=SearchStrategy.GRID, description="grid, random or bayesian")
    max_trials: int | None = Field(default=None, ge=1, description="random/bayesian: number of runs")
    seed: int = Field(default=0, description="random/bayesian: the seed (same seed, same runs)")

    @model_validator(mode="after")
    def _trials(self) -> SearchConfig:
        if self.strategy != SearchStrategy.GRID and self.max_trials is None:
            raise ValueError(f"search.max_trials is required for strategy {self.strategy.value}")
        return self
