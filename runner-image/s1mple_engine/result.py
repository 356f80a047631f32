"""BacktestResult: metrics, causality, and (optionally) curves and the trade/opportunity/threat lists.

Metric conventions (all finite: never NaN or infinity in JSON):

* ``sharpe_ratio`` = mean(r) / std(r, ddof=1) x sqrt(P), where r are the per-bar simple returns of the
  close-marked equity (the first against the initial cash), risk-free rate 0, and P = bars per year from
  the bar frequency and the trading calendar (:attr:`MarketData.bars_per_year`, so a hole in the data
  does not change it).  0 when std(r) = 0 or there are fewer than 2 bars.
* ``sortino_ratio`` = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(P) (downside deviation against 0 over
  all bars).  Without downside it is :data:`RATIO_CAP` when mean(r) > 0 (a run that never loses ranks
  first, not last), else 0; it never exceeds the cap.
* ``total_return`` % = (final equity / initial cash - 1) x 100; >= -100 (equity never goes below zero:
  see the bankruptcy rule in :mod:`s1mple_engine.simulate`).
* ``max_drawdown`` % = max over bars of (1 - equity / running peak) x 100, the peak starting at the
  initial cash; a positive number, at most 100.
* ``calmar_ratio`` = CAGR % / max_drawdown %, CAGR over the data's span in years; without drawdown
  :data:`RATIO_CAP` when CAGR > 0, else 0; it never exceeds the cap.
* A **ruined** run (its equity reached 0) has ``sharpe_ratio`` and ``sortino_ratio`` at most 0: its mean
  simple return can be positive (big gains before the loss) while its growth is -100 %.
* ``win_rate`` % of trades with pnl > 0 (0 without trades).
* ``total_trades`` – closed trade records; a partial exit is its own record (same opportunity id).
* ``avg_trade_duration`` – mean of (exit bar - entry bar), in **bars**.
* ``profit_factor`` = gross profit / gross loss, capped at :data:`PROFIT_FACTOR_CAP`; with no losing
  trade it is the cap if there was any profit, else 0.
* ``exposure`` % of bars in which a position was held (entry bar through exit bar, inclusive).

Return statistics (:class:`ReturnStats`, what the overfitting statistics of a sweep need, see
docs/meta.md): the per-bar Sharpe (mean / std, ddof=1, not annualised), skewness and kurtosis (not excess)
of the same per-bar returns, and for S equal consecutive blocks of them the bar count, sum and sum of
squares; no per-bar series unless asked for (variant tests, whose significance needs them).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
from pydantic import BaseModel

PROFIT_FACTOR_CAP = 1000.0
#: Sortino and Calmar of a run without downside / drawdown (and their upper bound): a large finite number,
#: so such a run ranks first and every JSON/Parquet writer keeps it.
RATIO_CAP = 1000.0


class Metrics(BaseModel):
    sharpe_ratio: float
    sortino_ratio: float
    total_return: float
    max_drawdown: float
    win_rate: float
    total_trades: int
    avg_trade_duration: float
    profit_factor: float
    exposure: float
    calmar_ratio: float
    final_equity: float


class RejectionReason(BaseModel):
    threat_type: str
    count: int


class SkipReason(BaseModel):
    reason: str
    count: int


class Causality(BaseModel):
    opportunities_detected: int
    opportunities_rejected: int
    opportunities_skipped: int
    threats_detected: int
    top_rejection_reasons: list[RejectionReason]
    skip_reasons: list[SkipReason]


class TradeRecord(BaseModel):
    opportunity_id: str
    side: str
    entry_time: str
    entry_bar: int
    entry_price: float
    exit_time: str
    exit_bar: int
    exit_price: float
    size: float
    pnl: float
    return_pct: float
    exit_reason: str
    duration_bars: int


class OpportunityRecord(BaseModel):
    opportunity_id: str
    bar: int
    time: str
    direction: str
    source: str
    status: str
    reason: str | None = None
    threat_ids: list[str] = []


class ThreatRecord(BaseModel):
    threat_id: str
    bar: int
    time: str
    threat_type: str
    plugin: str
    severity: str


class FillRecord(BaseModel):
    bar: int
    time: str
    opportunity_id: str
    side: str
    size: float
    price: float
    commission: float
    reason: str


class Curve(BaseModel):
    time: list[str]
    values: list[float]


class MonthlyReturn(BaseModel):
    month: str
    return_pct: float


#: Blocks of the per-bar returns a run records by default (CSCV's S; docs/meta.md).
DEFAULT_BLOCKS = 16


class ReturnBlocks(BaseModel):
    """Per block of consecutive bars: bar count, sum and sum of squares of the per-bar returns."""

    bars: list[int]
    sum: list[float]
    sumsq: list[float]


class ReturnStats(BaseModel):
    """Moments of the per-bar returns (Sharpe per bar, not annualised; kurtosis not excess)."""

    bars: int
    sharpe: float
    skewness: float
    kurtosis: float
    blocks: ReturnBlocks | None = None
    #: the per-bar returns themselves, only when asked for (variant tests)
    series: list[float] | None = None


class BacktestResult(BaseModel):
    """One backtest.  ``summary()`` is the compact form sweeps store; ``to_json()`` has everything."""

    operation: str
    strategy: str
    symbol: str | None
    start: str
    end: str
    bars: int
    initial_cash: float
    metrics: Metrics
    causality: Causality
    equity_curve: Curve | None = None
    drawdown_curve: Curve | None = None
    monthly_returns: list[MonthlyReturn] = []
    trades: list[TradeRecord] = []
    opportunities: list[OpportunityRecord] = []
    threats: list[ThreatRecord] = []
    fills: list[FillRecord] = []
    #: how workers behaved on this data, when worth saying (e.g. a TWAP that is one slice on these bars)
    notes: list[str] = []
    returns: ReturnStats | None = None
    #: name -> metrics (and per-bar returns) of each of ``operation.segments`` (s1mple_engine.segments)
    segments: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """``{"metrics": {...}, "causality": {...}, "returns": {...}[, "segments": {...}]}`` - no curves,
        no lists of trades."""
        out = {"metrics": self.metrics.model_dump(), "causality": self.causality.model_dump()}
        if self.returns is not None:
            out["returns"] = self.returns.model_dump(exclude_none=True)
        if self.segments is not None:
            out["segments"] = self.segments
        return out

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)


def _finite(x: float, cap: float = 1e12) -> float:
    x = float(x)
    if math.isnan(x):
        return 0.0
    return max(-cap, min(cap, x))


def ratio_or_cap(reward: float, risk: float) -> float:
    """reward / risk, at most :data:`RATIO_CAP`; without risk the cap for a positive reward, else 0."""
    if risk > 1e-12:
        return min(reward / risk, RATIO_CAP)
    return RATIO_CAP if reward > 1e-15 else 0.0


def compute_metrics(
    eqx: np.ndarray,
    cash: float,
    years: float,
    pnls: list[float],
    durations: list[int],
    intervals: list[tuple[int, int]],
    bars_per_year: float | None = None,
    rets: np.ndarray | None = None,
) -> tuple[Metrics, np.ndarray]:
    """Metrics from the close-marked equity ``eqx`` (eqx[0] = cash) and the trades; also the drawdown (%).
    ``bars_per_year`` annualises Sharpe and Sortino (a series without timestamps: (bars - 1) / years);
    ``rets``: :func:`bar_returns` of ``eqx`` when the caller has them already."""
    n = len(eqx) - 1
    if rets is None:
        rets = bar_returns(eqx)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.maximum.accumulate(eqx)
        dd = (1.0 - eqx / peak) * 100.0
    if peak[0] <= 0:  # equity at or below zero (a running maximum is <= 0 somewhere iff at its start)
        dd = np.where(peak > 0, dd, 100.0)
    ppy = bars_per_year or ((n - 1) / years if years > 0 and n > 1 else 252.0)
    sharpe = sortino = 0.0
    if n >= 2:
        mean = float(rets.sum()) / n
        dev = rets - mean
        sd = math.sqrt(float(dev.dot(dev)) / (n - 1))
        if sd > 1e-15:
            sharpe = mean / sd * math.sqrt(ppy)
        neg = np.minimum(rets, 0.0)
        downside = math.sqrt(float(neg.dot(neg)) / n)
        sortino = ratio_or_cap(mean * math.sqrt(ppy), downside)
    final = float(eqx[-1])
    if final <= 0:  # ruined: no risk-adjusted reward, whatever the mean of the returns before
        sharpe, sortino = min(sharpe, 0.0), min(sortino, 0.0)
    mdd = float(dd.max())
    span = years if years > 0 else n / ppy
    cagr = 0.0
    if final <= 0:
        cagr = -100.0
    elif span > 0:
        cagr = ((final / cash) ** (1.0 / span) - 1.0) * 100.0
    calmar = ratio_or_cap(cagr, mdd)
    nt = len(pnls)
    if nt:  # a few dozen trades: Python's sum is cheaper than numpy's call overhead
        wins = [x for x in pnls if x > 0]
        gross_win = float(sum(wins))
        gross_loss = float(-sum(x for x in pnls if x < 0))
        win_rate = len(wins) / nt * 100.0
        if gross_loss > 0:
            pf = min(gross_win / gross_loss, PROFIT_FACTOR_CAP)
        else:
            pf = PROFIT_FACTOR_CAP if gross_win > 0 else 0.0
        avg_dur = float(sum(durations) / nt)
    else:
        win_rate = pf = avg_dur = 0.0
    exposure = bars_covered(intervals, n) / n * 100.0 if n else 0.0
    metrics = Metrics.model_construct(
        sharpe_ratio=_finite(sharpe),
        sortino_ratio=_finite(sortino),
        total_return=_finite((final / cash - 1.0) * 100.0),
        max_drawdown=_finite(mdd),
        win_rate=_finite(win_rate),
        total_trades=nt,
        avg_trade_duration=_finite(avg_dur),
        profit_factor=_finite(pf),
        exposure=_finite(exposure),
        calmar_ratio=_finite(calmar),
        final_equity=_finite(final),
    )
    return metrics, dd[1:]


def bars_covered(intervals: list[tuple[int, int]], n: int) -> int:
    """How many of bars 0 .. n-1 lie in at least one interval [entry bar, exit bar] (a reversal's exit and
    entry share a bar: counted once)."""
    covered, end = 0, -1
    for a, b in sorted(intervals):
        lo, hi = max(a, end + 1, 0), min(b, n - 1)
        if hi >= lo:
            covered += hi - lo + 1
        end = max(end, b)
    return covered


def bar_returns(eqx: np.ndarray) -> np.ndarray:
    """Per-bar simple returns of the close-marked equity ``eqx`` (eqx[0] = cash), finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = eqx[1:] / eqx[:-1] - 1.0
    if not math.isfinite(rets.sum()):  # equity at or below zero (a sum is finite only if every term is)
        rets = np.nan_to_num(rets, nan=0.0, posinf=0.0, neginf=-1.0)
    return rets


def return_stats(rets: np.ndarray, blocks: int = DEFAULT_BLOCKS, series: bool = False) -> ReturnStats:
    """Per-bar Sharpe, skewness, kurtosis and (``blocks`` > 0, at least 2 bars a block) block sums.

    Blocks are consecutive and as equal as integers allow (edges ``k * n // blocks``).  With zero
    variance the Sharpe is 0 and the moments are the normal distribution's (skewness 0, kurtosis 3)."""
    n = len(rets)
    sharpe, skew, kurt = 0.0, 0.0, 3.0
    if n >= 2:
        # sum / n: numpy's mean to the bit, without its per-call overhead (a sweep calls this per run)
        mean = float(rets.sum()) / n
        dev = rets - mean
        m2 = float(dev.dot(dev)) / n
        if m2 > 1e-30:
            sharpe = mean / math.sqrt(m2 * n / (n - 1))
            # products, not dev**3 / dev**4: numpy's power calls pow() per bar, ~10x slower than a multiply
            sq = dev * dev
            skew = float((sq * dev).sum()) / n / m2**1.5
            kurt = float((sq * sq).sum()) / n / m2**2
    block_stats = None
    if blocks > 0 and n >= 2 * blocks:
        edges = [k * n // blocks for k in range(blocks)]
        block_stats = ReturnBlocks.model_construct(
            bars=[b - a for a, b in zip(edges, edges[1:] + [n], strict=True)],
            sum=np.add.reduceat(rets, edges).tolist(),
            sumsq=np.add.reduceat(rets * rets, edges).tolist(),
        )
    return ReturnStats.model_construct(
        bars=n,
        sharpe=_finite(sharpe),
        skewness=_finite(skew),
        kurtosis=_finite(kurt),
        blocks=block_stats,
        series=rets.tolist() if series else None,
    )


def times_iso(time: np.ndarray) -> list[str]:
    return np.datetime_as_string(time, unit="s").tolist()


def monthly_returns(time: np.ndarray, eqx: np.ndarray) -> list[MonthlyReturn]:
    if not len(time):
        return []
    month = time.astype("datetime64[M]")
    ends = np.flatnonzero(month[1:] != month[:-1]).tolist() + [len(time) - 1]
    out = []
    prev = float(eqx[0])
    for e in ends:
        cur = float(eqx[e + 1])
        r = (cur / prev - 1.0) * 100.0 if prev > 0 else 0.0
        out.append(MonthlyReturn.model_construct(month=str(month[e]), return_pct=_finite(r)))
        prev = cur
    return out


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=json_default)


def count_reasons(items: list[str]) -> list[tuple[str, int]]:
    return sorted(Counter(items).items(), key=lambda kv: (-kv[1], kv[0]))
