"""Deterministic synthetic market data: the demo and tests run offline (``market_data.path: sample:NAME``).

The generator is a seeded geometric Brownian motion with Markov regime switching (bull, bear, sideways
and a high-volatility crash regime), plus realistic bar structure: overnight gaps, intrabar ranges that
always contain open and close, and volume that rises with the absolute return.  Same name, same bars,
on every machine (numpy's PCG64 with a fixed seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampleSpec:
    bars: int
    freq: str  # "daily" (weekdays) | "hourly" (24h on weekdays)
    seed: int
    start: str
    start_price: float
    description: str


SAMPLES: dict[str, SampleSpec] = {
    "synthetic_daily": SampleSpec(2520, "daily", 42, "2014-01-02", 100.0, "~10 years of weekday bars"),
    "synthetic_hourly": SampleSpec(
        10_000, "hourly", 7, "2021-01-04", 1.1, "~1.6 years of 24x5 hourly FX-like bars"
    ),
    "synthetic_hourly_100k": SampleSpec(
        100_000, "hourly", 11, "2008-01-07", 50.0, "100,000 hourly bars (benchmarks)"
    ),
}

# regime: (annual drift, annual volatility)
_REGIMES = np.array([[0.18, 0.15], [-0.22, 0.25], [0.0, 0.12], [-0.6, 0.55]])
# per-bar-day transition probabilities (rows: from, cols: to); long-lived regimes, short crashes
_TRANSITIONS = np.array(
    [
        [0.990, 0.004, 0.005, 0.001],
        [0.006, 0.985, 0.008, 0.001],
        [0.006, 0.004, 0.989, 0.001],
        [0.030, 0.030, 0.040, 0.900],
    ]
)


def _timestamps(spec: SampleSpec) -> np.ndarray:
    start = np.datetime64(spec.start, "h")
    if spec.freq == "daily":
        days = np.arange(np.datetime64(spec.start, "D"), np.datetime64(spec.start, "D") + spec.bars * 2)
        days = days[np.is_busday(days)][: spec.bars]
        return days.astype("datetime64[ns]")
    hours = start + np.arange(spec.bars * 2, dtype=np.int64).astype("timedelta64[h]")
    hours = hours[np.is_busday(hours.astype("datetime64[D]"))][: spec.bars]
    return hours.astype("datetime64[ns]")


def generate(spec: SampleSpec) -> dict[str, np.ndarray]:
    """OHLCV arrays + ``time`` (datetime64[ns]) for ``spec``; pure function of the spec."""
    rng = np.random.default_rng(spec.seed)
    n = spec.bars
    per_year = 252.0 if spec.freq == "daily" else 252.0 * 24
    bars_per_day = 1 if spec.freq == "daily" else 24
    # regimes change at most once a day
    days = n // bars_per_day + 1
    u = rng.random(days)
    regime = np.empty(days, dtype=np.int64)
    state = 0
    cum = np.cumsum(_TRANSITIONS, axis=1)
    for d in range(days):
        state = int(np.searchsorted(cum[state], u[d]))
        regime[d] = min(state, 3)
    reg = np.repeat(regime, bars_per_day)[:n]
    mu, sigma = _REGIMES[reg, 0] / per_year, _REGIMES[reg, 1] / np.sqrt(per_year)
    if spec.freq == "hourly":
        hour = np.arange(n) % 24
        sigma = sigma * (0.6 + 0.8 * np.exp(-(((hour - 14) / 4.0) ** 2)))  # intraday volatility smile
    z = rng.standard_normal(n)
    z = np.where(rng.random(n) < 0.01, z * 3.0, z)  # fat tails
    gap = rng.standard_normal(n) * sigma * 0.25
    ret = mu - 0.5 * sigma**2 + sigma * z
    log_close = np.log(spec.start_price) + np.cumsum(gap + ret)
    close = np.exp(log_close)
    open_ = np.exp(log_close - ret)
    open_[0] = spec.start_price
    wick_hi = np.abs(rng.standard_normal(n)) * sigma * 0.5
    wick_lo = np.abs(rng.standard_normal(n)) * sigma * 0.5
    high = np.maximum(open_, close) * np.exp(wick_hi)
    low = np.minimum(open_, close) * np.exp(-wick_lo)
    base_volume = 1_000_000.0 if spec.freq == "daily" else 50_000.0
    volume = np.round(base_volume * rng.lognormal(0.0, 0.35, n) * (1.0 + 8.0 * np.abs(ret) / sigma.mean()))
    decimals = 4 if spec.start_price < 10 else 2
    out = {
        "open": np.round(open_, decimals),
        "high": np.round(high, decimals),
        "low": np.round(low, decimals),
        "close": np.round(close, decimals),
        "volume": volume,
    }
    # rounding must not break the bar invariants
    out["high"] = np.maximum(out["high"], np.maximum(out["open"], out["close"]))
    out["low"] = np.minimum(out["low"], np.minimum(out["open"], out["close"]))
    out["time"] = _timestamps(spec)
    return out
