"""Out-of-sample validation of an optimization: holdout, walk-forward, CSCV."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from s1mple_engine.config import (
    SpecModel,
)
from s1mple_engine.result import DEFAULT_BLOCKS

#: A walk-forward span: a number of bars, or a duration like "365d", "12w", "6h", "30min".
Span = int | str
DURATION_PATTERN = r"^\s*(\d+)\s*(d|w|h|min)\s*$"


class Holdout(SpecModel):
    """Split the data once: rank on the in-sample part, report the out-of-sample metrics."""

    out_of_sample: float | str = Field(
        description="the out-of-sample share of the bars (0 < x < 1, e.g. 0.3) or its first date (2022-01-01)"
    )
    top: int = Field(default=10, ge=1, le=1000, description="report the out-of-sample metrics of the top N")

    @field_validator("out_of_sample", mode="before")
    @classmethod
    def _yaml_date(cls, v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v  # YAML reads 2022-01-01 as a date

    @field_validator("out_of_sample")
    @classmethod
    def _share_or_date(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return v.strip()
        if not 0 < v < 1:
            raise ValueError(
                f"{v} is not a share of the bars: give 0 < out_of_sample < 1 (like 0.3) or a date"
            )
        return v


class WalkForward(SpecModel):
    """Rolling (or anchored) train/test windows: the best configuration on train, measured on test."""

    train: Span = Field(description="train window: bars (e.g. 500) or a duration (e.g. 730d)")
    test: Span = Field(description="test window after it: bars or a duration")
    step: Span | None = Field(default=None, description="how far each next window moves; default: test")
    anchored: bool = Field(default=False, description="train always from the first bar (expanding)")

    @field_validator("train", "test", "step")
    @classmethod
    def _span(cls, v: Span | None, info: Any) -> Span | None:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"{v} bars: give a positive number of bars or a duration like 365d")
        if isinstance(v, str) and not re.match(DURATION_PATTERN, v):
            raise ValueError(f"{v!r} is not a duration: use bars (e.g. 250) or <n>d, <n>w, <n>h, <n>min")
        return v


class CscvSpec(SpecModel):
    """Combinatorially symmetric cross-validation: the runs' per-bar returns cut into ``blocks`` equal
    parts, every half of them in-sample against the other half (C(blocks, blocks/2) splits)."""

    blocks: int = Field(
        default=DEFAULT_BLOCKS, ge=2, le=20, multiple_of=2, description="even; C(16, 8) = 12,870 splits"
    )


class ValidationSpec(SpecModel):
    """How far the best configuration can be trusted (docs/meta.md, "Overfitting statistics" and
    "Holdout and walk-forward")."""

    holdout: Holdout | None = Field(
        default=None, description="rank on the in-sample part, report the out-of-sample metrics"
    )
    walk_forward: WalkForward | None = Field(
        default=None, description="rolling or anchored train/test windows: best on train, measured on test"
    )

    cscv: CscvSpec | bool = Field(
        default_factory=CscvSpec,
        description="PBO by CSCV, on for >= 10 feasible runs: {blocks: 16}, or false to turn it off",
    )
    max_pbo: float = Field(default=0.5, ge=0, le=1, description="OverfitRisk above this PBO")
    min_dsr: float = Field(default=0.5, ge=0, le=1, description="OverfitRisk below this deflated Sharpe")

    @field_validator("cscv", mode="before")
    @classmethod
    def _cscv_flag(cls, value: Any) -> Any:
        return CscvSpec() if value is True else value

    def cscv_blocks(self) -> int | None:
        """Blocks of the CSCV, None when it is turned off."""
        return self.cscv.blocks if isinstance(self.cscv, CscvSpec) else None
