"""Market data: OHLCV bars from CSV, Parquet or the shipped samples, validated and cached per process.

* Columns are matched case-insensitively: ``open, high, low, close`` (required), ``volume`` (optional,
  zeros when absent) and a datetime index/column (``date``, ``datetime``, ``time``, ``timestamp``, or the
  unnamed first column that pandas writes for an index).  Time-zone-aware timestamps become naive UTC.
* Validation reports row-level problems with CSV line numbers (the header is line 1) or Parquet row
  numbers, the first offending rows of each kind, and how to fix them: unparsable/unsorted/duplicate
  timestamps, NaN prices, ``high < max(open, close)``, ``low > min(open, close)``, negative volume.
* ``sample:NAME`` loads a deterministic synthetic dataset (see :mod:`s1mple_engine.samples`).
* :func:`load_market_data` caches by (path, file size and mtime, period): sweeps call it thousands of
  times on the same bars.  :class:`MarketData` carries a content ``fingerprint`` that keys the feature
  memo (:func:`s1mple_engine.features.memo`).
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, MarketDataConfig, Period, suggest

_CACHE: dict[tuple, MarketData] = {}
_TIME_NAMES = ("datetime", "date", "time", "timestamp", "timestamps", "dt", "unnamed: 0", "")
MAX_ROWS_SHOWN = 5


#: trading days per year: exchange sessions (weekdays less ~9 holidays), round-the-clock weekdays (FX
#: 24/5), every day (crypto 24/7)
EXCHANGE_DAYS, WEEKDAYS, ALL_DAYS = 252.0, 260.0, 365.0
#: (spacing in days, bars per year) of weekly, monthly, quarterly and yearly bars
PERIODIC_BARS = ((7.0, 52.0), (30.44, 12.0), (91.31, 4.0), (365.25, 1.0))
#: bars on Saturday/Sunday above this share mean a 7-day calendar (24/7 has 2/7; backtesting.py's 60 %)
WEEKEND_SHARE = 2.0 / 7.0 * 0.6
#: a declared timeframe more than this relative distance from the typical spacing contradicts the data
TIMEFRAME_TOLERANCE = 0.25
_TIMEFRAME = re.compile(r"^\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$")
_TIMEFRAME_UNITS = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1.0 / 86400.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "t"), 1.0 / 1440.0),
    **dict.fromkeys(("h", "hr", "hour", "hours", "hourly"), 1.0 / 24.0),
    **dict.fromkeys(("d", "day", "days", "daily"), 1.0),
    **dict.fromkeys(("w", "wk", "week", "weeks", "weekly"), 7.0),
    **dict.fromkeys(("mo", "mon", "month", "months", "monthly"), 30.44),
    **dict.fromkeys(("y", "yr", "year", "years", "yearly"), 365.25),
}


def timeframe_days(timeframe: str) -> float | None:
    """A timeframe such as ``15m``, ``1h``, ``4h``, ``1d``, ``daily``, ``1w``, ``1mo`` in days, or None."""
    m = _TIMEFRAME.match(timeframe.lower())
    if not m or m.group(2) not in _TIMEFRAME_UNITS:
        return None
    count = float(m.group(1)) if m.group(1) else 1.0
    return count * _TIMEFRAME_UNITS[m.group(2)] if count > 0 else None


def _days_text(days: float) -> str:
    for unit, size in (("day", 1.0), ("hour", 1.0 / 24.0), ("minute", 1.0 / 1440.0)):
        if days >= size:
            return f"{days / size:g} {unit}{'s' if days / size != 1 else ''}"
    return f"{days * 86400.0:g} seconds"


class MarketDataError(ConfigError):
    """Bad market data: missing file/columns or row-level problems (each line names rows and the fix)."""


class MarketData:
    """Bars as contiguous float64 numpy arrays, ``time`` as datetime64[ns], and a content fingerprint."""

    def __init__(
        self,
        time: np.ndarray,
        open: np.ndarray,  # noqa: A002 - the OHLCV vocabulary
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray | None = None,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        source: str = "memory",
    ):
        self.time = np.ascontiguousarray(time, dtype="datetime64[ns]")
        self.open = np.ascontiguousarray(open, dtype=np.float64)
        self.high = np.ascontiguousarray(high, dtype=np.float64)
        self.low = np.ascontiguousarray(low, dtype=np.float64)
        self.close = np.ascontiguousarray(close, dtype=np.float64)
        vol = np.zeros(len(self.close)) if volume is None else volume
        self.volume = np.ascontiguousarray(vol, dtype=np.float64)
        for arr in (self.time, self.open, self.high, self.low, self.close, self.volume):
            arr.setflags(write=False)
        self.symbol = symbol
        self.timeframe = timeframe
        self.source = source

    def __len__(self) -> int:
        return len(self.close)

    def __repr__(self) -> str:
        span = f"{self.time[0]} .. {self.time[-1]}" if len(self) else "empty"
        return f"MarketData({self.symbol or self.source}, {len(self)} bars, {span}, {self.fingerprint})"

    @cached_property
    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=10)
        for arr in (self.time, self.open, self.high, self.low, self.close, self.volume):
            h.update(arr.tobytes())
        return h.hexdigest()

    @cached_property
    def lists(self) -> tuple[list[float], list[float], list[float], list[float]]:
        """open, high, low, close as Python lists (scalar access in the simulation loop is ~3x faster)."""
        return self.open.tolist(), self.high.tolist(), self.low.tolist(), self.close.tolist()

    @cached_property
    def day(self) -> np.ndarray:
        """Calendar day number (days since 1970-01-01) of every bar."""
        return self.time.astype("datetime64[D]").astype(np.int64)

    @cached_property
    def day_start(self) -> np.ndarray:
        """Bool per bar: the first bar of its calendar day."""
        d = self.day
        out = np.ones(len(d), dtype=bool)
        out[1:] = d[1:] != d[:-1]
        return out

    @cached_property
    def day_list(self) -> list[int]:
        """:attr:`day` as a Python list (scalar access in the simulation loop)."""
        return self.day.tolist()

    @cached_property
    def day_first_bar(self) -> list[int]:
        """Per bar, the index of the first bar of its calendar day."""
        starts = self.day_start
        return np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0)).tolist()

    @cached_property
    def years(self) -> float:
        return span_years(self.time)

    @cached_property
    def bars_per_year(self) -> float:
        """Bars per year, to annualise per-bar statistics: from the typical (median) bar spacing and the
        trading calendar, never from the time span (a hole in the data must not change it).

        * spacing of about a week or longer: 52 (weekly), 12 (monthly), 4 (quarterly), 1 (yearly), else
          365.25 days / spacing;
        * daily and intraday bars: trading days per year x bars per day (the median count of bars per
          calendar day; 1 for daily bars), the days from the calendar the bars show: every day (weekend
          bars, crypto 24/7) 365, round-the-clock weekdays (FX 24/5: >= 20 h of bars a day) 260, exchange
          sessions 252 (backtesting.py's 252 / 365 rule for daily bars).
        """
        spacing = self.typical_spacing_days
        if spacing is None:
            return EXCHANGE_DAYS
        if spacing >= 6.0:
            for days, per_year in PERIODIC_BARS:
                if abs(spacing / days - 1.0) < 0.15:
                    return per_year
            return 365.25 / spacing
        weekday = (self.day + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
        per_day = float(np.median(np.unique(self.day, return_counts=True)[1])) if spacing < 0.75 else 1.0
        if (weekday >= 5).mean() > WEEKEND_SHARE:
            days = ALL_DAYS
        elif spacing < 0.75 and per_day * spacing >= 20.0 / 24.0:
            days = WEEKDAYS
        else:
            days = EXCHANGE_DAYS
        return days * per_day

    @cached_property
    def typical_spacing_days(self) -> float | None:
        """The median positive spacing of the timestamps, in days (None with fewer than two bars)."""
        dt = np.diff(self.time).astype("timedelta64[s]").astype(np.int64)
        dt = dt[dt > 0]
        return float(np.median(dt)) / 86400.0 if len(dt) else None

    @cached_property
    def timeframe_note(self) -> str | None:
        """A warning when the declared ``timeframe`` contradicts the bars' typical spacing (or cannot be
        read); annualisation follows the data either way."""
        if not self.timeframe or self.typical_spacing_days is None:
            return None
        declared = timeframe_days(self.timeframe)
        spacing = self.typical_spacing_days
        found = f"the data's typical bar spacing is {_days_text(spacing)}"
        if declared is None:
            return f"timeframe {self.timeframe!r} not understood (use e.g. 15m, 1h, 1d, 1w, 1mo); {found}"
        if abs(spacing / declared - 1.0) > TIMEFRAME_TOLERANCE:
            return (
                f"timeframe {self.timeframe!r} contradicts the data: {found}; Sharpe and Sortino are "
                f"annualised from the data ({self.bars_per_year:g} bars per year): fix market_data.timeframe"
            )
        return None

    def slice(self, start: int, stop: int) -> MarketData:
        """Bars ``[start, stop)`` as a new dataset (own fingerprint)."""
        return MarketData(
            self.time[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            symbol=self.symbol,
            timeframe=self.timeframe,
            source=self.source,
        )

    def head(self, stop: int) -> MarketData:
        """Bars ``[0, stop)``, cached on this dataset: the runs of one trading window share one dataset,
        so its fingerprint and the features memoized under it are computed once per process."""
        heads = self.__dict__.setdefault("_heads", {})
        if stop not in heads:
            heads[stop] = self if stop >= len(self) else self.slice(0, stop)
        return heads[stop]

    def bar_at(self, when: str, where: str, *, last: bool = False) -> int:
        """The first bar at or after ``when`` (``last``: the last bar at or before it; a date-only ``when``
        then means the end of that day); may be -1 or len(self) when ``when`` is outside the data."""
        t = _parse_time(when, where)
        if last:
            if len(when.strip()) <= 10:
                return int(np.searchsorted(self.time, t + np.timedelta64(1, "D"), side="left")) - 1
            return int(np.searchsorted(self.time, t, side="right")) - 1
        return int(np.searchsorted(self.time, t, side="left"))

    def period(self, period: Period | None) -> MarketData:
        """The bars within ``period`` (start inclusive; a date-only end includes that whole day)."""
        if period is None or (period.start is None and period.end is None):
            return self
        lo, hi = 0, len(self)
        if period.start:
            lo = int(np.searchsorted(self.time, _parse_time(period.start, "period.start"), side="left"))
        if period.end:
            end = _parse_time(period.end, "period.end")
            if len(period.end.strip()) <= 10:  # a date: include the whole day
                end = end + np.timedelta64(1, "D")
                hi = int(np.searchsorted(self.time, end, side="left"))
            else:
                hi = int(np.searchsorted(self.time, end, side="right"))
        if hi - lo < 2:
            first, last = (str(self.time[0])[:19], str(self.time[-1])[:19]) if len(self) else ("-", "-")
            raise MarketDataError(
                f"period {period.start or '...'} .. {period.end or '...'} selects {max(hi - lo, 0)} bars; "
                f"the data spans {first} .. {last}: widen operation.period"
            )
        return self.slice(lo, hi)

    @classmethod
    def from_frame(cls, frame: Any, **kw: Any) -> MarketData:
        """From a pandas DataFrame with a DatetimeIndex and OHLCV columns (any case); validated."""
        df = frame.reset_index()
        return _from_columns(
            {str(c): df[c].to_numpy() for c in df.columns}, kw.pop("source", "frame"), "row", **kw
        )


def span_years(time: np.ndarray) -> float:
    """Years from the first to the last timestamp (0 for fewer than 2)."""
    if len(time) < 2:
        return 0.0
    return float((time[-1] - time[0]) / np.timedelta64(1, "s")) / (365.25 * 86400.0)


def _parse_time(value: str, where: str) -> np.datetime64:
    try:
        return np.datetime64(value.strip().replace(" ", "T").rstrip("Z"), "ns")
    except ValueError:
        raise MarketDataError(
            f"{where}: cannot parse {value!r} as a date/time (use YYYY-MM-DD or ISO 8601)"
        ) from None


def load_market_data(cfg: MarketDataConfig, period: Period | None = None) -> MarketData:
    """Load (cached per process), validate and period-filter the bars that ``cfg`` points at."""
    path = cfg.path
    if path.startswith("file://"):
        path = path[len("file://") :]
    stat_key: tuple = ()
    if not path.startswith("sample:"):
        if path.startswith("s3://"):
            raise MarketDataError(
                f"market_data.path {path!r}: s3:// data must be downloaded by the runner first"
            )
        try:
            st = os.stat(path)
        except OSError:
            raise MarketDataError(f"market_data.path: file not found: {path}") from None
        stat_key = (st.st_size, st.st_mtime_ns)
    pkey = (period.start, period.end) if period else (None, None)
    key = (path, stat_key, pkey, cfg.symbol, cfg.timeframe)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    full_key = (path, stat_key, (None, None), cfg.symbol, cfg.timeframe)
    full = _CACHE.get(full_key)
    if full is None:
        full = _load(path, cfg)
        _CACHE[full_key] = full
    data = full.period(period)
    _CACHE[key] = data
    return data


def clear_cache() -> None:
    _CACHE.clear()


def _load(path: str, cfg: MarketDataConfig) -> MarketData:
    if path.startswith("sample:"):
        from .samples import SAMPLES, generate

        name = path[len("sample:") :]
        if name not in SAMPLES:
            raise MarketDataError(f"market_data.path: unknown sample {name!r}{suggest(name, SAMPLES)}")
        cols = generate(SAMPLES[name])
        return MarketData(
            cols["time"],
            cols["open"],
            cols["high"],
            cols["low"],
            cols["close"],
            cols["volume"],
            symbol=cfg.symbol or name,
            timeframe=cfg.timeframe or SAMPLES[name].freq,
            source=path,
        )
    lower = path.lower()
    plain = _read_plain_csv(path) if lower.endswith((".csv", ".txt")) else None
    if plain is not None:
        return _from_columns(
            plain, path, "line", symbol=cfg.symbol or Path(path).stem, timeframe=cfg.timeframe
        )
    import pandas as pd

    try:
        if lower.endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
            if not isinstance(df.index, pd.RangeIndex):
                df = df.reset_index()
            unit = "row"
        elif lower.endswith((".csv", ".csv.gz", ".txt")):
            df = pd.read_csv(path)
            unit = "line"
        else:
            raise MarketDataError(
                f"market_data.path {path!r}: unsupported file type (use .csv, .csv.gz or .parquet)"
            )
    except MarketDataError:
        raise
    except Exception as exc:  # a parser error: name the file
        raise MarketDataError(f"cannot read {path}: {exc}") from None
    columns = {str(c): df[c].to_numpy() for c in df.columns}
    try:
        return _from_columns(
            columns, path, unit, symbol=cfg.symbol or Path(path).stem, timeframe=cfg.timeframe
        )
    except MarketDataError as exc:
        raise MarketDataError(exc.problems, source=path) from None


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?")
_OHLCV = ("open", "high", "low", "close", "volume")
#: larger files go to pandas: its parser is faster there and holds no Python string per field
_PLAIN_CSV_MAX_BYTES = 16 * 2**20


def _read_plain_csv(path: str) -> dict[str, np.ndarray] | None:
    """The columns of a plain CSV, read with numpy alone: a header of distinct names, then rows of as many
    unquoted fields, numbers in every OHLCV column.  None for anything else, which pandas then reads (and
    reports on, naming the line): blank lines, quotes, gaps, text.  Naive ISO times are parsed here; other
    time columns (time zones, other formats) are left as text for pandas to parse.

    Why not pandas for these too: importing it costs 0.3-0.5 s, most of what a sweep spends before its
    pool starts and what a runner pod spends before its first run; the numbers are the same (the shipped
    GOOG, EURUSD and BTCUSD files load bit-identical either way: tests/engine/test_data.py)."""
    try:
        if os.path.getsize(path) > _PLAIN_CSV_MAX_BYTES:
            return None
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    if '"' in text or "\r" in text:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # an empty name is what pandas calls "Unnamed: <position>" (an index written without a label)
    header = [name or f"Unnamed: {i}" for i, name in enumerate(lines[0].split(","))] if lines else []
    if len(lines) < 2 or len(set(header)) != len(header):
        return None
    rows = [line.split(",") for line in lines[1:]]
    if any(len(row) != len(header) for row in rows):
        return None
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(header, zip(*rows, strict=True), strict=True):
        if name.strip().lower() in _OHLCV:
            if any("_" in v for v in values):  # Python's float() takes 1_000, pandas does not
                return None
            try:
                columns[name] = np.array(values, dtype=np.float64)
            except ValueError:  # text or an empty field: pandas' NaN and its row-level report
                return None
        elif all(_ISO_TIME.fullmatch(v) for v in values):
            columns[name] = np.array(values, dtype="datetime64[ns]")
        else:
            columns[name] = np.array(values, dtype=object)
    return columns


def _from_columns(columns: dict[str, np.ndarray], source: str, unit: str, **kw: Any) -> MarketData:
    by_lower = {name.strip().lower(): name for name in columns}
    missing = [c for c in ("open", "high", "low", "close") if c not in by_lower]
    if missing:
        raise MarketDataError(
            f"missing column(s) {missing} (found: {list(columns)}); expected Open, High, Low, Close "
            "[, Volume] (any case) and a date/time column"
        )
    time_col = next((by_lower[n] for n in _TIME_NAMES if n in by_lower), None)
    if time_col is None:
        others = [c for c in columns if c.strip().lower() not in _OHLCV]
        time_col = others[0] if others else None
    if time_col is None:
        raise MarketDataError(
            f"no date/time column (found: {list(columns)}); add one named 'date' or 'datetime'"
        )
    offset = 2 if unit == "line" else 1  # CSV: header is line 1; parquet rows count from 1

    def where(i: int) -> str:
        return f"{unit} {i + offset}"

    time = _to_datetime(columns[time_col], time_col, where)
    num = {}
    for c in _OHLCV:
        if c in by_lower:
            try:
                num[c] = np.asarray(columns[by_lower[c]], dtype=np.float64)
            except (TypeError, ValueError):
                raise MarketDataError(
                    f"column {by_lower[c]!r} is not numeric; fix or remove the text values"
                ) from None
    vol = num.get("volume")
    problems = validate_ohlcv(time, num["open"], num["high"], num["low"], num["close"], vol, where)
    if problems:
        raise MarketDataError(problems)
    return MarketData(time, num["open"], num["high"], num["low"], num["close"], vol, source=source, **kw)


def _to_datetime(values: np.ndarray, name: str, where) -> np.ndarray:
    if values.dtype == "datetime64[ns]":  # parsed already (a plain CSV's ISO times)
        return values
    import pandas as pd

    try:
        ts = pd.to_datetime(pd.Series(values), errors="coerce", utc=False, format="mixed")
    except (TypeError, ValueError):
        ts = pd.to_datetime(pd.Series(values), errors="coerce", utc=True)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = ts.to_numpy(dtype="datetime64[ns]")
    bad = np.flatnonzero(np.isnat(arr))
    if len(bad):
        rows = ", ".join(f"{where(int(i))} ({values[i]!r})" for i in bad[:MAX_ROWS_SHOWN])
        raise MarketDataError(
            f"{len(bad)} unparsable timestamp(s) in column {name!r}: {rows}; use ISO dates like 2024-01-31 "
            "or 2024-01-31 14:00:00"
        )
    return arr


def validate_ohlcv(time, o, h, l, c, v, where) -> list[str]:  # noqa: E741 - l is low
    """Row-level problems, each naming the first offending rows and the fix (empty list: valid)."""
    problems: list[str] = []

    def report(mask_or_idx: np.ndarray, what: str, fix: str, show=None) -> None:
        idx = np.flatnonzero(mask_or_idx) if mask_or_idx.dtype == bool else mask_or_idx
        if len(idx):
            shown = ", ".join(
                where(int(i)) + (f" ({show(int(i))})" if show else "") for i in idx[:MAX_ROWS_SHOWN]
            )
            more = f" and {len(idx) - MAX_ROWS_SHOWN} more" if len(idx) > MAX_ROWS_SHOWN else ""
            problems.append(f"{what} at {shown}{more}: {fix}")

    if len(time) < 2:
        problems.append(f"only {len(time)} bar(s); a backtest needs at least 2")
        return problems
    step = time[1:] - time[:-1]
    report(
        np.flatnonzero(step < np.timedelta64(0)) + 1,
        "timestamps out of order",
        "sort the rows by time (ascending)",
        lambda i: f"{str(time[i])[:19]} after {str(time[i - 1])[:19]}",
    )
    report(
        np.flatnonzero(step == np.timedelta64(0)) + 1,
        "duplicate timestamps",
        "keep one row per timestamp",
        lambda i: str(time[i])[:19],
    )
    nan = np.isnan(o) | np.isnan(h) | np.isnan(l) | np.isnan(c)
    report(nan, "missing/NaN prices", "fill or drop those rows")
    with np.errstate(invalid="ignore"):
        report(
            (h < np.maximum(o, c)) & ~nan,
            "high below max(open, close)",
            "high must be >= open and close (check column order)",
            lambda i: f"high {h[i]} < {max(o[i], c[i])}",
        )
        report(
            (l > np.minimum(o, c)) & ~nan,
            "low above min(open, close)",
            "low must be <= open and close (check column order)",
            lambda i: f"low {l[i]} > {min(o[i], c[i])}",
        )
        report((o <= 0) | (h <= 0) | (l <= 0) | (c <= 0), "non-positive prices", "prices must be > 0")
        if v is not None:
            report(v < 0, "negative volume", "volume must be >= 0", lambda i: f"{v[i]}")
            report(np.isnan(v), "missing/NaN volume", "fill with 0 or drop the Volume column")
    return problems
