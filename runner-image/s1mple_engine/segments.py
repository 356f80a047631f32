"""Segments: parts of one run measured on their own, so a walk-forward needs no run per window.

A run with ``operation.segments`` trades as usual over its bars; each segment ``start .. end`` then gets
the metrics :func:`~s1mple_engine.result.compute_metrics` gives for those bars alone: returns and
drawdown from the equity at the close before the segment's first bar, the trades that closed inside it,
the bars it held a position.  A position the run carried into the segment counts from the segment's
first bar (it was opened on earlier bars, by the same causal rules).  With ``per_bar`` the segment's
per-bar returns are recorded too, as float32 little-endian bytes in base64 (4 bytes a bar): enough to
chain test windows into a per-bar equity curve without storing whole series.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from .config import ConfigError, Segment
from .data import MarketData, span_years
from .result import bar_returns, compute_metrics


def encode_returns(rets: np.ndarray) -> str:
    """Per-bar returns as base64 of float32 little-endian (what a segment records)."""
    return base64.b64encode(np.asarray(rets, dtype="<f4").tobytes()).decode("ascii")


def decode_returns(text: str) -> np.ndarray:
    """The per-bar returns :func:`encode_returns` wrote, as float64."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


def segment_bars(data: MarketData, seg: Segment, lo: int) -> tuple[int, int]:
    """(first, last) bar of a segment; it must lie inside the run's bars ``lo`` .. end."""

    def bar(value: int | str | None, default: int, name: str, last: bool) -> int:
        if value is None:
            return default
        if isinstance(value, int):
            return value
        return data.bar_at(value, f"operation.segments.{name}", last=last)

    n = len(data)
    a, b = bar(seg.start, lo, "start", False), bar(seg.end, n - 1, "end", True)
    if not lo <= a < b < n:
        raise ConfigError(
            f"operation.segments: {seg.name or ''} start {seg.start!r} .. end {seg.end!r} selects bars "
            f"{a} .. {b}, but the run trades bars {lo} .. {n - 1}: a segment needs 2 or more of them"
        )
    return a, b


def measure_segments(
    segments: list[Segment],
    data: MarketData,
    eqx: np.ndarray,
    trades: list[tuple[Any, ...]],
    intervals: list[tuple[int, int]],
    cash: float,
    lo: int = 0,
) -> dict[str, dict[str, Any]]:
    """``{name: {"metrics": {...}[, "returns": base64, "bars_per_year": P]}}`` of a simulated run:
    ``eqx`` its close-marked equity (eqx[0] = cash, eqx[i + 1] after bar i), ``trades`` the simulation's
    trade tuples (entry bar at 2, exit bar at 4, pnl at 7), ``intervals`` its (entry, exit) bar pairs."""
    out: dict[str, dict[str, Any]] = {}
    for k, seg in enumerate(segments):
        a, b = segment_bars(data, seg, lo)
        e = eqx[a : b + 2]  # the equity at the close before bar a, then after each bar a .. b
        closed = [t for t in trades if a <= t[4] <= b]
        held = [(max(s, a) - a, min(x, b) - a) for s, x in intervals if x >= a and s <= b]
        metrics, _ = compute_metrics(
            e,
            float(e[0]) if e[0] > 0 else cash,
            span_years(data.time[a : b + 1]),
            [t[7] for t in closed],
            [t[4] - t[2] for t in closed],
            held,
            data.bars_per_year,
        )
        entry: dict[str, Any] = {"metrics": metrics.model_dump()}
        if seg.per_bar:
            entry["returns"] = encode_returns(bar_returns(e))
            entry["bars_per_year"] = data.bars_per_year
        out[seg.name or f"segment{k}"] = entry
    return out
