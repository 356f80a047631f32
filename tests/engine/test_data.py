"""Market data: CSV/Parquet loading, row-level validation, period filter, per-process cache, samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s1mple_engine.config import MarketDataConfig, Period
from s1mple_engine.data import MarketDataError, load_market_data
from s1mple_engine.samples import SAMPLES

GOOD = """Date,OPEN,High,low,Close,Volume
2024-01-01,10,11,9,10.5,100
2024-01-02,10.5,12,10,11,200
2024-01-03,11,11.5,10.5,11.2,150
2024-01-04,11.2,11.8,11,11.6,120
"""


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> MarketDataConfig:
    p = tmp_path / name
    p.write_text(text)
    return MarketDataConfig(path=str(p))


def test_csv_case_insensitive_columns(tmp_path):
    d = load_market_data(write(tmp_path, GOOD))
    assert len(d) == 4 and d.close.tolist() == [10.5, 11, 11.2, 11.6] and d.volume[1] == 200
    assert str(d.time[0])[:10] == "2024-01-01"


def test_parquet_and_index_column(tmp_path):
    import pandas as pd

    df = pd.DataFrame(
        {"Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.5], "Close": [1.5, 2.5]},
        index=pd.DatetimeIndex(["2024-01-01 10:00", "2024-01-01 11:00"], name="timestamp"),
    )
    p = tmp_path / "bars.parquet"
    df.to_parquet(p)
    d = load_market_data(MarketDataConfig(path=str(p)))
    assert len(d) == 2 and d.volume.tolist() == [0.0, 0.0]  # volume optional


def test_row_level_errors_name_lines_and_fix(tmp_path):
    bad = """date,open,high,low,close,volume
2024-01-01,10,11,9,10.5,100
2024-01-03,10.5,10.6,10,11,200
2024-01-02,11,11.5,10.5,11.2,-5
2024-01-02,11,11.5,11.3,11.2,5
2024-01-05,11,,10.5,11.2,5
"""
    with pytest.raises(MarketDataError) as err:
        load_market_data(write(tmp_path, bad, "bad.csv"))
    text = str(err.value)
    assert "bad.csv" in text
    assert (
        "timestamps out of order at line 4 (2024-01-02T00:00:00 after 2024-01-03T00:00:00): sort the rows"
        in text
    )
    assert "duplicate timestamps at line 5" in text
    assert "high below max(open, close) at line 3 (high 10.6 < 11.0)" in text
    assert "low above min(open, close) at line 5" in text
    assert "missing/NaN prices at line 6" in text
    assert "negative volume at line 4 (-5.0): volume must be >= 0" in text


def test_missing_columns_and_files(tmp_path):
    with pytest.raises(MarketDataError, match=r"missing column\(s\) \['close'\]"):
        load_market_data(write(tmp_path, "date,open,high,low\n2024-01-01,1,2,0.5\n", "x.csv"))
    with pytest.raises(MarketDataError, match="file not found"):
        load_market_data(MarketDataConfig(path=str(tmp_path / "nope.csv")))
    with pytest.raises(
        MarketDataError, match="unknown sample 'synthetic_dayly'; did you mean 'synthetic_daily'"
    ):
        load_market_data(MarketDataConfig(path="sample:synthetic_dayly"))


def test_period_filter_and_cache(tmp_path):
    cfg = write(tmp_path, GOOD)
    d = load_market_data(cfg, Period(start="2024-01-02", end="2024-01-03"))
    assert [str(t)[:10] for t in d.time] == ["2024-01-02", "2024-01-03"]  # a date-only end includes that day
    assert load_market_data(cfg, Period(start="2024-01-02", end="2024-01-03")) is d  # cached per process
    with pytest.raises(MarketDataError, match="selects 0 bars"):
        load_market_data(cfg, Period(start="2030-01-01"))


def test_samples_are_deterministic_and_valid():
    a = load_market_data(MarketDataConfig(path="sample:synthetic_daily"))
    from s1mple_engine.samples import generate

    again = generate(SAMPLES["synthetic_daily"])
    assert np.array_equal(again["close"], a.close) and len(a) == 2520
    assert np.all(a.high >= np.maximum(a.open, a.close)) and np.all(a.low <= np.minimum(a.open, a.close))
    assert np.all(np.diff(a.time.astype(np.int64)) > 0)
    h = load_market_data(MarketDataConfig(path="sample:synthetic_hourly"))
    assert len(h) == 10_000 and h.fingerprint != a.fingerprint


def test_goog_from_backtesting_package():
    import backtesting

    path = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
    d = load_market_data(MarketDataConfig(path=str(path)))
    assert len(d) == 2148 and d.symbol == "GOOG"


@pytest.mark.parametrize("name", ["GOOG", "EURUSD", "BTCUSD"])
def test_plain_csv_reads_as_pandas_does_without_importing_it(tmp_path, name):
    """A plain CSV is parsed by numpy alone (no pandas import before a sweep's pool starts): the bars are
    bit-identical to pandas' reading, shipped files as they are and rewritten by pandas' to_csv."""
    import backtesting

    from s1mple_engine import data as D

    shipped = Path(backtesting.__file__).parent / "test" / f"{name}.csv"
    frame = getattr(__import__("backtesting.test", fromlist=[name]), name)
    rewritten = tmp_path / f"{name}.csv"
    frame.to_csv(rewritten, index_label="Date")
    for path in (shipped, rewritten):
        plain = D._read_plain_csv(str(path))
        assert plain is not None, path
        fast = D._from_columns(plain, str(path), "line", symbol=name, timeframe=None)
        columns = {str(c): v.to_numpy() for c, v in __import__("pandas").read_csv(path).items()}
        slow = D._from_columns(columns, str(path), "line", symbol=name, timeframe=None)
        assert fast.fingerprint == slow.fingerprint
        for field in ("time", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field)), field


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("2024-01-02,10.5", "2024-01-02,"),  # a gap: pandas' NaN and its row-level report
        GOOD.replace("10.5,12", "n/a,12"),  # text in a price
        GOOD + "\n2024-01-05,11,12,10,11,100\n",  # a blank line
        GOOD.replace("Volume", '"Volume"'),  # quotes
        GOOD.replace(",100\n", ",1_000\n"),  # Python's float() would take it, pandas does not
    ],
)
def test_anything_but_a_plain_csv_goes_to_pandas(tmp_path, text):
    from s1mple_engine import data as D

    path = tmp_path / "bars.csv"
    path.write_text(text)
    assert D._read_plain_csv(str(path)) is None


def test_a_sweep_loads_a_plain_csv_without_pandas(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bars.csv"
    path.write_text(GOOD)
    code = (
        "import sys\n"
        "from s1mple_engine.config import MarketDataConfig\n"
        "from s1mple_engine.data import load_market_data\n"
        f"d = load_market_data(MarketDataConfig(path={str(path)!r}))\n"
        "print(len(d), 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["4", "False"]


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("2024-01-03", "2024-01-03T10:00:00+01:00"),  # a time zone
        GOOD.replace("2024-01-03", "01/03/2024"),  # not ISO
        GOOD.replace("2024-01-02", "2024-01-02 09:30:00.25"),  # fractions of a second
    ],
)
def test_times_other_than_naive_iso_are_parsed_by_pandas_as_before(tmp_path, text):
    import pandas as pd

    from s1mple_engine import data as D

    path = tmp_path / "bars.csv"
    path.write_text(text)

    def outcome(columns):  # the bars' fingerprint, or the error naming the line
        try:
            return D._from_columns(columns, str(path), "line", symbol="T", timeframe=None).fingerprint
        except MarketDataError as exc:
            return str(exc)

    plain = D._read_plain_csv(str(path))
    assert plain is not None
    assert outcome(plain) == outcome({str(c): v.to_numpy() for c, v in pd.read_csv(path).items()})
