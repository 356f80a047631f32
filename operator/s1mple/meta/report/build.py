"""Results -> the data a report page draws: plain dicts and lists, nothing of the page itself.

The page gets the runs table as one JSON array of rows (``columns`` + ``rows``, floats to 5 decimals:
~15 MB for 100,000 runs) and computes filters, heatmaps and the parallel-coordinates view from it in the
browser; what needs the runs again (equity of the best runs, variants' trades) is re-run here from the
stored run specs, milliseconds each.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from s1mple_engine.config import ConfigError

from ..aggregation import TABLE_TAIL
from ..models import CAUSALITY_ANALYSES, CAUSALITY_COUNTS, METRICS, VISUALIZATIONS, metric_direction
from .sources import ReportError, SpecResolver, rerun

#: Best runs whose equity and drawdown the optimization report draws.
TOP_CURVES = 5
#: Table columns the page does not carry (long text, or summarised elsewhere).
#: the block sums of the return statistics are for recomputing PBO from results.parquet, not for people
_DROPPED = {"top_rejection_reasons", "index", "duration_s", "block_bars", "block_sum", "block_sumsq"}


def _finite(v: Any) -> Any:
    if isinstance(v, float | np.floating) and not math.isfinite(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def result_curves(result: Any) -> dict[str, Any]:
    """Equity, drawdown and monthly returns of a BacktestResult, as the page draws them."""
    eq, dd = result.equity_curve, result.drawdown_curve
    return {
        "time": list(eq.time) if eq else [],
        "equity": [_finite(v) for v in eq.values] if eq else [],
        "drawdown": [-abs(v) for v in dd.values] if dd else [],
        "monthly": [[m.month, round(m.return_pct, 4)] for m in result.monthly_returns],
    }


def trade_rows(result: Any) -> list[dict[str, Any]]:
    return [t.model_dump() for t in result.trades]


def causality_of(result: Any) -> dict[str, Any]:
    return result.causality.model_dump()


def directions() -> dict[str, str]:
    """maximize / minimize of every metric and causality count (the heatmap's "best", bold in tables)."""
    return {m: metric_direction(m).value for m in (*METRICS, *CAUSALITY_COUNTS)}


def _rerun_all(runs: list[tuple[str, int]], resolve: SpecResolver) -> tuple[dict[str, Any], list[str]]:
    """run_id -> BacktestResult for each run whose spec is found and runs; problems as sentences."""
    problems: list[str] = []
    try:
        specs = resolve(runs)
    except Exception as exc:  # a store error: the report still shows everything else
        return {}, [f"run specs unreadable: {exc}"]
    out: dict[str, Any] = {}
    for rid, _ in runs:
        if rid not in specs:
            problems.append(f"run {rid}: no stored run spec")
            continue
        try:
            out[rid] = rerun(specs[rid])[0]
        except (ConfigError, OSError, ValueError, KeyError) as exc:
            problems.append(f"run {rid}: could not run again: {exc}")
    return out, problems


# --------------------------------------------------------------------------------------------------------
# Optimization
# --------------------------------------------------------------------------------------------------------


def table_payload(frame: pd.DataFrame) -> str:
    """The runs table as JSON: ``columns`` (all, in order), ``data`` (rows of the columns that vary),
    ``constants`` (the value of each column that does not, e.g. status "ok" everywhere) and ranks as row
    positions, floats to 4 decimals: ~12 MB for 100,000 runs, encoded by pandas' C encoder in <1 s."""
    cols = [c for c in frame.columns if c not in _DROPPED]
    constants = {
        c: _finite(frame[c].iloc[0]) for c in cols if len(frame) and frame[c].nunique(dropna=False) == 1
    }
    positions = np.arange(1, len(frame) + 1)
    ranked = "rank" in frame.columns and bool((frame["rank"].to_numpy() == positions).all())
    varying = [c for c in cols if c not in constants and not (ranked and c == "rank")]
    view = frame[varying]
    if "error" in view.columns:  # the first words say what failed; result.json has the whole text
        view = view.assign(error=view["error"].str.slice(0, 160))
    rows = view.to_json(orient="values", double_precision=4)
    head = json.dumps({"columns": cols, "varying": varying, "constants": constants, "rank_is_row": ranked})
    return head[:-1] + ', "data": ' + rows + "}"


def swept_params(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric parameter columns that vary, choice-label columns that vary)."""
    fixed = {"rank", "run_id", "index", "variant_name", *TABLE_TAIL}
    numeric, labels = [], []
    for c in frame.columns:
        if c in fixed or frame[c].nunique(dropna=True) < 2:
            continue
        if c.startswith("choice."):
            labels.append(c)
        elif pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            numeric.append(c)
        elif "." in c:
            labels.append(c)
    return numeric, labels


def rejection_totals(frame: pd.DataFrame) -> list[list[Any]]:
    """Rejection reasons summed over every run: [[threat_type, count], ...], most frequent first."""
    total: Counter[str] = Counter()
    if "top_rejection_reasons" in frame.columns:
        for text in frame["top_rejection_reasons"].dropna():
            for r in json.loads(text):
                total[str(r.get("threat_type"))] += int(r.get("count") or 0)
    return [[k, v] for k, v in total.most_common(20)]


def optimization_data(
    summary: dict[str, Any], frame: pd.DataFrame, resolve: SpecResolver, top: int = TOP_CURVES
) -> dict[str, Any]:
    targets = summary.get("optimization_targets") or {}
    primary = targets.get("primary_metric") or "sharpe_ratio"
    numeric, labels = swept_params(frame)
    best = (summary.get("best_configuration") or {}).get("run_id")
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    feasible = ok[ok["feasible"]] if "feasible" in ok.columns else ok
    chosen = (feasible if len(feasible) else ok).head(top)
    runs = [(str(rid), int(i)) for rid, i in chosen[["run_id", "index"]].itertuples(index=False, name=None)]
    results, problems = _rerun_all(runs, resolve)
    curves = [
        {"run_id": rid, "rank": int(chosen.iloc[k]["rank"]), **result_curves(results[rid])}
        for k, (rid, _) in enumerate(runs)
        if rid in results
    ]
    return {
        "kind": "optimization",
        "title": f"Optimization {summary.get('optimization_name', '')}",
        "summary": {k: v for k, v in summary.items() if k != "results"},
        "primary": primary,
        "direction": targets.get("direction") or metric_direction(primary).value,
        "metrics": [m for m in METRICS if m in frame.columns],
        "causality_columns": [c for c in CAUSALITY_COUNTS if c in frame.columns],
        "directions": directions(),
        "params": numeric,
        "labels": labels,
        "best_run": best,
        "top_curves": curves,
        "curve_problems": problems,
        "rejections": rejection_totals(frame),
        "validation": summary.get("validation"),
    }


# --------------------------------------------------------------------------------------------------------
# Variant test
# --------------------------------------------------------------------------------------------------------


def chosen_visualizations(manifest: dict[str, Any], source: str) -> list[str]:
    """comparison_config.visualizations of the stored spec (the model's default when absent); an unknown
    name is an error that lists the valid ones."""
    cc = (manifest.get("spec") or {}).get("comparison_config") or {}
    wanted = cc.get("visualizations")
    if wanted is None:
        return list(VISUALIZATIONS[:3])
    unknown = [v for v in wanted if v not in VISUALIZATIONS]
    if unknown:
        raise ReportError(
            f"{source}: comparison_config.visualizations: unknown {', '.join(map(repr, unknown))} "
            f"(valid: {', '.join(VISUALIZATIONS)})"
        )
    return list(wanted)


def variant_data(
    summary: dict[str, Any], manifest: dict[str, Any], resolve: SpecResolver, source: str
) -> dict:
    entries = summary.get("results") or []
    runs = [(e["run_id"], k) for k, e in enumerate(entries) if e.get("status") == "ok"]
    results, problems = _rerun_all(list(dict.fromkeys(runs)), resolve)
    variants = []
    for e in entries:
        res = results.get(e["run_id"]) if e.get("status") == "ok" else None
        variants.append(
            {
                "name": e.get("variant_name"),
                "description": e.get("description"),
                "run_id": e.get("run_id"),
                "status": e.get("status"),
                "metrics": e.get("metrics") or {},
                "causality": e.get("causality") or {},
                **(result_curves(res) if res else {}),
                "trades": [[t.return_pct, t.duration_bars, t.side] for t in res.trades] if res else [],
            }
        )
    cc = (manifest.get("spec") or {}).get("comparison_config") or {}
    return {
        "kind": "variant_test",
        "title": f"Variant test {summary.get('test_name', '')}",
        "summary": {k: v for k, v in summary.items() if k != "results"},
        "metrics": summary.get("compared_metrics") or list(METRICS[:6]),
        "visualizations": chosen_visualizations(manifest, source),
        "directions": directions(),
        "causality_analysis": cc.get("causality_analysis", list(CAUSALITY_ANALYSES)),
        "variants": variants,
        "curve_problems": problems,
    }


# --------------------------------------------------------------------------------------------------------
# One backtest
# --------------------------------------------------------------------------------------------------------


def backtest_data(result: Any, bars: Any) -> dict[str, Any]:
    """A BacktestResult and its market data: price with entries and exits, equity, drawdown, trades,
    monthly returns, causality."""
    times = np.datetime_as_string(bars.time, unit="s").tolist()
    return {
        "kind": "backtest",
        "title": f"Backtest {result.operation}",
        "summary": {
            "operation": result.operation,
            "strategy": result.strategy,
            "symbol": result.symbol,
            "start": result.start,
            "end": result.end,
            "bars": result.bars,
            "initial_cash": result.initial_cash,
        },
        "metrics": result.metrics.model_dump(),
        "causality": causality_of(result),
        "price": {
            "time": times,
            "open": bars.open.tolist(),
            "high": bars.high.tolist(),
            "low": bars.low.tolist(),
            "close": bars.close.tolist(),
        },
        **result_curves(result),
        "trades": trade_rows(result),
        "opportunities": Counter(o.status for o in result.opportunities),
        "notes": result.notes,
    }
