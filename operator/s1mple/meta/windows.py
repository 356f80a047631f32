"""Holdout and walk-forward: the trading windows of a validated optimization, and what they say.

Planning (:func:`plan_windows`): the windows every configuration runs in, as bar ranges of the base
operation's data.  ``holdout`` splits it once (in-sample ``is``, out-of-sample ``oos``); ``walk_forward``
cuts train/test pairs (``wf<k>.train`` / ``wf<k>.test``).  Each window becomes the run's
``operation.window``, so the engine warms features up on the bars before it and never loads a bar after
it (see :func:`s1mple_engine.backtest.windowed`).

Aggregation (:func:`holdout_report`, :func:`walk_forward_report`): pure functions of the records, shared
by ``s1mple optimize`` and the operator so both report the same numbers.  Selection always uses the
in-sample (train) records, ranked like the main table (constraints first, then the primary metric).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from s1mple_engine.config import ConfigError
from s1mple_engine.segments import decode_returns

from .aggregation import feasibility, rank_key
from .models import DURATION_PATTERN, Direction, Holdout, RunConstraints, Span, ValidationSpec, WalkForward

Record = dict[str, Any]
_UNITS = {
    "d": np.timedelta64(1, "D"),
    "w": np.timedelta64(1, "W"),
    "h": np.timedelta64(1, "h"),
    "min": np.timedelta64(1, "m"),
}


@dataclass(frozen=True)
class RunWindow:
    """A trading window: bars ``start`` .. ``end`` (inclusive) of the base operation's data; ``segments``:
    the walk-forward windows measured inside its run (``operation.segments``)."""

    label: str  # "" (the whole data), "is", "oos", "wf" (the whole data, beside a holdout)
    start: int
    end: int
    segments: tuple[RunWindow, ...] = ()  # "wf<k>.train" / "wf<k>.test"

    def operation_window(self) -> dict[str, Any] | None:
        """The run's ``operation.window``; its name keeps runs of differently named windows apart (a record
        is found by run id, and its ``window`` label must be this plan's)."""
        return None if not self.label else {"name": self.label, "start": self.start, "end": self.end}

    def operation_fields(self) -> dict[str, Any]:
        """What this window sets in a run's operation: ``window`` and ``segments`` (test windows record
        their per-bar returns, for the stitched out-of-sample curve)."""
        out: dict[str, Any] = {}
        if self.label:
            out["window"] = self.operation_window()
        if self.segments:
            out["segments"] = [
                {"name": s.label, "start": s.start, "end": s.end, "per_bar": s.label.endswith(".test")}
                for s in self.segments
            ]
        return out


FULL = RunWindow("", 0, -1)


def _when(times: np.ndarray, bar: int) -> str:
    return str(times[bar])[:19].replace("T00:00:00", "")


def _span_text(times: np.ndarray) -> str:
    return f"{len(times)} bars, {_when(times, 0)} .. {_when(times, len(times) - 1)}"


def holdout_split(times: np.ndarray, holdout: Holdout) -> int:
    """The first out-of-sample bar."""
    n = len(times)
    oos = holdout.out_of_sample
    if isinstance(oos, str):
        try:
            split = int(np.searchsorted(times, np.datetime64(oos.replace(" ", "T").rstrip("Z"), "ns")))
        except ValueError:
            raise ConfigError(
                f"validation.holdout.out_of_sample: cannot parse {oos!r}: give a date (YYYY-MM-DD) or a "
                "share of the bars (e.g. 0.3)"
            ) from None
        where = f"date {oos}"
    else:
        split = n - int(round(n * oos))
        where = f"share {oos}"
    if not 2 <= split <= n - 2:
        raise ConfigError(
            f"validation.holdout.out_of_sample: {where} leaves {split} in-sample and {n - split} "
            f"out-of-sample bars of the data ({_span_text(times)}); each side needs 2 or more: pick a "
            "date inside the data or a share between 0 and 1"
        )
    return split


def _span_offsets(times: np.ndarray, span: Span, field: str) -> np.timedelta64 | int:
    """A span in bars (int) or as a numpy timedelta."""
    if isinstance(span, int):
        return span
    m = re.match(DURATION_PATTERN, span)
    if m is None:  # the model checks this; kept for direct callers
        raise ConfigError(f"validation.walk_forward.{field}: {span!r} is not bars or a duration like 365d")
    return (int(m.group(1)) * _UNITS[m.group(2)]).astype("timedelta64[ns]")


def walk_forward_windows(times: np.ndarray, wf: WalkForward) -> list[tuple[RunWindow, RunWindow]]:
    """(train, test) pairs: train ends where its test begins; the next pair starts ``step`` later
    (rolling) or keeps bar 0 and grows by ``step`` (anchored).  Only whole test windows are used."""
    n = len(times)
    train = _span_offsets(times, wf.train, "train")
    test = _span_offsets(times, wf.test, "test")
    step = _span_offsets(times, wf.step if wf.step is not None else wf.test, "step")
    kinds = {isinstance(x, int) for x in (train, test, step)}
    if len(kinds) > 1:
        raise ConfigError(
            "validation.walk_forward: train, test and step mix bars and durations: give all three in "
            "bars (e.g. 500) or all three as durations (e.g. 730d)"
        )
    out: list[tuple[RunWindow, RunWindow]] = []
    k = 0
    while True:
        if isinstance(train, int):
            assert isinstance(test, int) and isinstance(step, int)  # all bars: checked above
            a = 0 if wf.anchored else k * step
            b = k * step + train  # first test bar
            c = b + test  # first bar after the test window
            if c > n:
                break
        else:
            t0 = times[0] + k * step
            tb = t0 + train
            tc = tb + test
            if tc > times[-1] + (times[-1] - times[-2]):  # the data does not reach the test window's end
                break
            a = 0 if wf.anchored else int(np.searchsorted(times, t0))
            b = int(np.searchsorted(times, tb))
            c = int(np.searchsorted(times, tc))
        if b - a < 2 or c - b < 2:
            short = "train" if b - a < 2 else "test"
            raise ConfigError(
                f"validation.walk_forward.{short}: window {k + 1} has {b - a if short == 'train' else c - b} "
                f"bar(s) ({_span_text(times)}); each window needs 2 or more: make {short} longer"
            )
        out.append((RunWindow(f"wf{k}.train", a, b - 1), RunWindow(f"wf{k}.test", b, c - 1)))
        k += 1
    if not out:
        raise ConfigError(
            f"validation.walk_forward.test: train {wf.train} + test {wf.test} is longer than the data "
            f"({_span_text(times)}): shorten train or test"
        )
    return out


def plan_windows(validation: ValidationSpec, times: np.ndarray) -> list[RunWindow]:
    """Every window a configuration runs in; [FULL] without validation.  Walk-forward adds no runs: its
    train and test windows are segments of a whole-data run (the main table's, or beside a holdout, a
    whole-data run ``wf`` next to the in-sample and out-of-sample runs)."""
    windows: list[RunWindow] = []
    segments: tuple[RunWindow, ...] = ()
    if validation.walk_forward is not None:
        segments = tuple(w for pair in walk_forward_windows(times, validation.walk_forward) for w in pair)
    if validation.holdout is not None:
        split = holdout_split(times, validation.holdout)
        windows += [RunWindow("is", 0, split - 1), RunWindow("oos", split, len(times) - 1)]
        if segments:
            windows.append(RunWindow("wf", 0, len(times) - 1, segments))
    else:
        windows.append(RunWindow("", 0, -1, segments))
    return windows


def walk_forward_pairs(windows: list[RunWindow]) -> list[tuple[RunWindow, RunWindow]]:
    """The (train, test) windows of a plan's walk-forward: the segments of its carrying run."""
    segments = [s for w in windows for s in w.segments]
    return list(zip(segments[::2], segments[1::2], strict=True))


# --------------------------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------------------------


def _metric(rec: Record | None, name: str) -> float | None:
    v = ((rec or {}).get("metrics") or {}).get(name)
    if v is None or isinstance(v, bool):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Ranking:
    """The main table's order: feasible runs first, then the primary metric in its direction."""

    primary: str
    direction: Direction
    constraints: RunConstraints | None

    def ranked(self, recs: list[Record]) -> list[tuple[tuple[Any, ...], bool, Record]]:
        keyed = []
        for rec in recs:
            ok, _ = feasibility(rec, self.constraints)
            keyed.append((rank_key(rec, self.primary, self.direction, ok), ok, rec))
        keyed.sort(key=lambda t: t[0])
        return keyed

    def best(self, recs: list[Record]) -> Record | None:
        """The first feasible run with a value of the primary metric."""
        for key, ok, rec in self.ranked(recs):
            if ok and key[1] == 0:
                return rec
        return None


def _span(times: np.ndarray, w: RunWindow) -> Record:
    return {"start": _when(times, w.start), "end": _when(times, w.end), "bars": w.end - w.start + 1}


def _degradation(is_value: float | None, oos_value: float | None) -> float | None:
    return None if is_value is None or oos_value is None else oos_value - is_value


def configuration_key(rec: Record) -> str:
    """What pairs a configuration's runs across windows: its choices and parameters (a record reused
    from an earlier plan may carry that plan's index)."""
    return json.dumps([rec.get("labels") or {}, rec.get("configuration") or {}], sort_keys=True)


def by_window(records: Mapping[str, Record], run_ids: list[str]) -> dict[str, dict[str, Record]]:
    """window label -> configuration key -> record; a run's walk-forward segments become records of
    their own windows (a failed run stands for each of them)."""
    out: dict[str, dict[str, Record]] = {}
    for rid in run_ids:
        rec = records.get(rid)
        if rec is None:
            continue
        key = configuration_key(rec)
        out.setdefault(rec.get("window") or "", {})[key] = rec
        for label, seg in (rec.get("segments") or {}).items():
            out.setdefault(label, {})[key] = {**rec, "window": label, "segments": None, **seg}
    return out


def holdout_report(
    groups: dict[str, dict[str, Record]],
    windows: list[RunWindow],
    times: np.ndarray,
    ranking: Ranking,
    top: int,
) -> Record:
    """The out-of-sample metrics of the in-sample best and top N, and how much the primary metric lost."""
    is_w, oos_w = (w for w in windows if w.label in ("is", "oos"))
    ins, oos = groups.get("is", {}), groups.get("oos", {})
    rows: list[Record] = []
    primary = ranking.primary
    for rank, (_, ok, rec) in enumerate(ranking.ranked(list(ins.values()))):
        if len(rows) >= top or not ok:
            break
        out = oos.get(configuration_key(rec))
        iv, ov = _metric(rec, primary), _metric(out, primary)
        rows.append(
            {
                "rank": rank + 1,
                "index": rec["index"],
                "configuration": rec.get("configuration") or {},
                "in_sample": rec.get("metrics") or {},
                "out_of_sample": (out or {}).get("metrics") or {},
                "degradation": _degradation(iv, ov),
            }
        )
    deltas = [r["degradation"] for r in rows if r["degradation"] is not None]
    return {
        "in_sample": _span(times, is_w),
        "out_of_sample": _span(times, oos_w),
        "primary_metric": primary,
        "best": rows[0] if rows else None,
        "top": rows,
        "mean_degradation": sum(deltas) / len(deltas) if deltas else None,
    }


def stitched_curve(returns: list[np.ndarray | None], bars_per_year: float) -> Record:
    """The test windows' per-bar returns chained into one equity line (from 1.0), and its metrics as the
    engine computes them: total return, max drawdown per bar, Sharpe annualised (mean / std, ddof 1)."""
    rets = np.concatenate([r for r in returns if r is not None] or [np.zeros(0)])
    equity = np.cumprod(1.0 + rets)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    drawdown = (1.0 - equity / peak) * 100.0 if len(rets) else np.zeros(0)
    sharpe = None
    if len(rets) >= 2 and (sd := float(rets.std(ddof=1))) > 1e-15:
        sharpe = float(rets.mean()) / sd * math.sqrt(bars_per_year)
    return {
        "total_return": (float(equity[-1]) - 1.0) * 100.0 if len(rets) else 0.0,
        "max_drawdown": float(drawdown.max()) if len(rets) else 0.0,
        "sharpe_ratio": sharpe,
        "bars": int(len(rets)),
        "per_bar_equity": equity.tolist(),
    }


def walk_forward_report(
    groups: dict[str, dict[str, Record]],
    windows: list[RunWindow],
    times: np.ndarray,
    ranking: Ranking,
) -> Record:
    """Per window: the best feasible configuration on train, measured on test; the chosen configurations'
    per-bar test returns chained into one out-of-sample equity line; how often the choice changed."""
    primary = ranking.primary
    table = []
    chosen: list[str | None] = []
    returns: list[np.ndarray | None] = []
    curve_times: list[str] = []
    bars_per_year = 252.0
    equity = 1.0
    for train_w, test_w in walk_forward_pairs(windows):
        best = ranking.best(list(groups.get(train_w.label, {}).values()))
        test = groups.get(test_w.label, {}).get(configuration_key(best)) if best else None
        per_bar = decode_returns(test["returns"]) if test and isinstance(test.get("returns"), str) else None
        if test is not None and per_bar is not None:
            returns.append(per_bar)
            curve_times += [_when(times, b) for b in range(test_w.start, test_w.end + 1)]
            bars_per_year = float(test.get("bars_per_year") or bars_per_year)
            equity *= float(np.prod(1.0 + per_bar))
        chosen.append(configuration_key(best) if best else None)
        table.append(
            {
                "window": int(train_w.label[2:].split(".")[0]),
                "train_start": _when(times, train_w.start),
                "train_end": _when(times, train_w.end),
                "test_start": _when(times, test_w.start),
                "test_end": _when(times, test_w.end),
                "index": best["index"] if best else None,
                "configuration": (best or {}).get("configuration"),
                "in_sample": _metric(best, primary),
                "out_of_sample": _metric(test, primary),
                "out_of_sample_return": _metric(test, "total_return"),
                "out_of_sample_max_drawdown": _metric(test, "max_drawdown"),
                "equity": equity,
            }
        )
    picked = [c for c in chosen if c is not None]
    changes = sum(1 for a, b in zip(picked, picked[1:], strict=False) if a != b)
    oos_values = [float(r["out_of_sample"]) for r in table if r["out_of_sample"] is not None]
    stitched = stitched_curve(returns, bars_per_year)
    return {
        "primary_metric": primary,
        "windows": table,
        "out_of_sample": {
            "total_return": stitched["total_return"],
            "max_drawdown": stitched["max_drawdown"],
            "sharpe_ratio": stitched["sharpe_ratio"],
            "bars": stitched["bars"],
            "mean_primary": sum(oos_values) / len(oos_values) if oos_values else None,
            "equity": [r["equity"] for r in table],
            "curve": {"time": curve_times, "equity": stitched["per_bar_equity"]},
        },
        "stability": {
            "changes": changes,
            "change_rate": changes / (len(picked) - 1) if len(picked) > 1 else 0.0,
            "distinct": len(set(picked)),
        },
    }


def validation_reports(plan: Any, run_ids: list[str], records: Mapping[str, Record]) -> Record:
    """``{"holdout": ..., "walk_forward": ..., "main_run_ids": [...], "run_counts": {...}}`` of a
    validated optimization plan (an empty dict without validation): result.json's ``validation``, the
    runs of the main table, and the run counts over every window."""
    v = plan.config.validation
    if v.holdout is None and v.walk_forward is None:
        return {}
    labels = plan.window_labels()
    groups = by_window(records, run_ids)
    main = "is" if "is" in labels else ""
    main_ids = list(dict.fromkeys(rec["run_id"] for rec in groups.get(main, {}).values()))
    found = {rec["run_id"]: rec.get("status") for group in groups.values() for rec in group.values()}
    ok = sum(status == "ok" for status in found.values())
    times = plan.bar_times
    t = plan.config.optimization_targets
    args = (plan.windows, times, Ranking(t.primary_metric, t.primary_direction(), plan.config.constraints))
    out: Record = {
        "main_run_ids": main_ids,  # counts of every windowed run (the main table's are of main_ids)
        "run_counts": {"completed_runs": len(found), "successful_runs": ok, "failed_runs": len(found) - ok},
    }
    if v.holdout is not None:
        out["holdout"] = holdout_report(groups, *args, v.holdout.top)
    if v.walk_forward is not None:
        out["walk_forward"] = walk_forward_report(groups, *args)
    return out


def best_out_of_sample(validation: Record) -> float | None:
    """The one out-of-sample number status shows: the holdout best's primary metric out of sample, else
    the mean primary metric of the walk-forward test windows."""
    h = validation.get("holdout")
    if h and h.get("best"):
        return _metric({"metrics": h["best"]["out_of_sample"]}, h["primary_metric"])
    wf = validation.get("walk_forward")
    return (wf or {}).get("out_of_sample", {}).get("mean_primary")
