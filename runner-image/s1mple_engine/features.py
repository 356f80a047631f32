"""Causal indicator math and the per-process feature memo.

Every function here returns an array ``y`` with ``y[t]`` computed from inputs at indexes ``<= t`` only
(no lookahead); values that need more history than is available are NaN.  Recursive filters (EMA,
Wilder's RMA) are seeded with the first valid input value, so truncating the series never changes the
values before the cut.

:func:`memo` caches any per-dataset computation keyed by ``(dataset fingerprint, key)``.  A sweep that
runs 640 MA-crossover combinations on one dataset therefore computes each moving average once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

_MEMO: OrderedDict[tuple[str, Hashable], Any] = OrderedDict()
MEMO_MAX_ENTRIES = 8192


def memo(fingerprint: str, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per process for ``(fingerprint, key)`` (LRU, :data:`MEMO_MAX_ENTRIES`)."""
    full = (fingerprint, key)
    try:
        value = _MEMO[full]
    except KeyError:
        value = compute()
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
        _MEMO[full] = value
        if len(_MEMO) > MEMO_MAX_ENTRIES:
            _MEMO.popitem(last=False)
        return value
    return value


def clear_memo() -> None:
    _MEMO.clear()


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over the last ``n`` values (NaN for the first n-1 bars)."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(x.shape, np.nan)
    if n <= len(x):
        # a mean per window (not a running cumsum): no drift, and exactly the same value at t whatever
        # the series' length, which the no-lookahead test relies on
        out[n - 1 :] = sliding_window_view(x, n).mean(axis=1)
    return out


def _recursive(x: np.ndarray, alpha: float, start: int) -> np.ndarray:
    """y[start] = x[start]; y[t] = alpha*x[t] + (1-alpha)*y[t-1]; NaN before ``start``."""
    out = np.full(len(x), np.nan)
    if start >= len(x):
        return out
    xs = x[start:].tolist()
    beta = 1.0 - alpha
    res = [0.0] * len(xs)
    y = xs[0]
    res[0] = y
    for i in range(1, len(xs)):
        y = alpha * xs[i] + beta * y
        res[i] = y
    out[start:] = res
    return out


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average, alpha = 2/(n+1), seeded with x[first valid]; NaN for the first n-1 bars.

    The first n-1 values are masked (warm-up) so a fast and a slow EMA start comparing only once both
    have seen enough bars.
    """
    start = _first_valid(x)
    out = _recursive(x, 2.0 / (n + 1.0), start)
    out[: start + n - 1] = np.nan
    return out


def rma(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's moving average (alpha = 1/n), seeded with the SMA of the first n valid values."""
    start = _first_valid(x)
    out = np.full(len(x), np.nan)
    if start + n > len(x):
        return out
    seed = float(np.mean(x[start : start + n]))
    tail = x[start + n - 1 :].copy()
    tail[0] = seed
    out[start + n - 1 :] = _recursive(tail, 1.0 / n, 0)
    return out


def _first_valid(x: np.ndarray) -> int:
    valid = np.flatnonzero(~np.isnan(x))
    return int(valid[0]) if len(valid) else len(x)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high-low, |high-prev close|, |low-prev close|); the first bar uses high-low."""
    prev = np.concatenate(([close[0]], close[:-1]))
    return np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average True Range: Wilder's RMA of the true range (price units)."""
    return rma(true_range(high, low, close), n)


def rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder's Relative Strength Index (0..100); NaN for the first n bars; 100 when there are no losses."""
    d = np.diff(close, prepend=np.nan)
    up = np.where(d > 0, d, 0.0)
    down = np.where(d < 0, -d, 0.0)
    up[0] = down[0] = np.nan
    au, ad = rma(up, n), rma(down, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + au / ad)
    out[(ad == 0) & ~np.isnan(au)] = 100.0
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """max(x[t-n+1..t]); NaN for the first n-1 bars."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(len(x), np.nan)
    if n <= len(x):
        out[n - 1 :] = sliding_window_view(x, n).max(axis=1)
    return out


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(len(x), np.nan)
    if n <= len(x):
        out[n - 1 :] = sliding_window_view(x, n).min(axis=1)
    return out


def shift(x: np.ndarray, k: int = 1, fill: float = np.nan) -> np.ndarray:
    """x delayed by k bars (value at t is x[t-k])."""
    out = np.empty_like(x, dtype=float)
    out[:k] = fill
    out[k:] = x[:-k] if k else x
    return out


def rolling_rank(x: np.ndarray, n: int) -> np.ndarray:
    """Fraction (0..1) of the previous ``n`` values strictly below x[t]; NaN without n previous values."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(len(x), np.nan)
    if n < len(x):
        windows = sliding_window_view(x[:-1], n)  # windows[i] = x[i .. i+n-1], compared with x[i+n]
        out[n:] = (windows < x[n:, None]).mean(axis=1)
    return out
