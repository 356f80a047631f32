"""From run records to results: pure functions, records in → result out (no I/O, no clock).

* :func:`optimization_result` — the design's OptimizationResult (``optimization_id``, ``results``,
  ``best_configuration``, ...), results ranked: feasible runs first, by the primary metric in its
  direction, ties broken by ``run_id``.
* Variant tests' VariantComparisonResult: :mod:`.comparison`.
* :func:`table_row` — one row per run of results.parquet (written by :mod:`.outputs`): parameters
  flattened to ``plugin.param`` columns, the worker configuration (choice labels), every metric,
  causality counts, run_id, feasibility, error.

A run is FEASIBLE when it succeeded and meets ``constraints`` (``min_trades``: total_trades >= it;
``max_drawdown``: |max_drawdown| <= it, in percent).  Infeasible runs are reported and ranked, never best.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import overfitting
from .models import (
    CAUSALITY_COUNTS,
    METRICS,
    Direction,
    RunConstraints,
    ValidationSpec,
    metric_direction,
)

if TYPE_CHECKING:  # pandas is imported by the functions that need it: planning and running never do
    import pandas as pd

Record = dict[str, Any]


def _as_dict(record: Any) -> Record:
    if isinstance(record, dict):
        return record
    return record.model_dump(mode="json", exclude={"curves"})


def as_float(value: Any) -> float | None:
    """A finite float, or None for missing, boolean, non-numeric or infinite values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def feasibility(record: Record, constraints: RunConstraints | None) -> tuple[bool, str | None]:
    """(feasible, reason when not)."""
    if record.get("status") != "ok":
        return False, record.get("status") or "failed"
    if constraints is None:
        return True, None
    metrics = record.get("metrics") or {}
    reasons = []
    if constraints.min_trades is not None:
        trades = as_float(metrics.get("total_trades"))
        if trades is None or trades < constraints.min_trades:
            reasons.append(f"total_trades {_fmt(trades)} < min_trades {constraints.min_trades}")
    if constraints.max_drawdown is not None:
        dd = as_float(metrics.get("max_drawdown"))
        if dd is None or abs(dd) > constraints.max_drawdown:
            reasons.append(f"max_drawdown {_fmt(dd)} > {constraints.max_drawdown}")
    return (not reasons), ("; ".join(reasons) or None)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:g}"


def rank_key(
    record: Record, primary: str, direction: Direction, feasible: bool
) -> tuple[int, int, float, str]:
    """Feasible first; within each group runs with the metric first, best value first; then run_id."""
    value = as_float((record.get("metrics") or {}).get(primary))
    group = 0 if feasible else 1
    if value is None:
        return (group, 1, 0.0, record.get("run_id", ""))
    signed = -value if direction == Direction.MAXIMIZE else value
    return (group, 0, signed, record.get("run_id", ""))


@dataclass
class RunOrder:
    """The runs best first, as (rank key, run_id, feasible, reason why not), with the counts and what the
    table's columns will be: one read of each record, ~150 bytes kept a run (the ranking of
    :func:`optimization_result`, and pass 1 of :mod:`.outputs`)."""

    order: list[tuple[tuple[Any, ...], str, bool, str | None]]
    ok_runs: int
    feasible_runs: int
    columns: list[str]
    kinds: dict[str, set[type]] = field(default_factory=dict)
    #: run_id -> compact return statistics of each successful run (overfitting.compact_returns)
    returns: dict[str, Record] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        records: Mapping[str, Record],
        run_ids: Iterable[str],
        primary_metric: str,
        direction: Direction,
        constraints: RunConstraints | None,
    ) -> RunOrder:
        order = []
        ok_runs = feasible_runs = 0
        label_first: dict[str, tuple[Any, ...]] = {}  # where a label column first appears in rank order
        kinds: dict[str, set[type]] = {}
        variants = False
        returns: dict[str, Record] = {}
        for rid in run_ids:
            rec = records.get(rid)
            if rec is None:
                continue
            ok, why = feasibility(rec, constraints)
            key = rank_key(rec, primary_metric, direction, ok)
            order.append((key, rid, ok, why))
            if rec.get("status") == "ok" and (stats := overfitting.compact_returns(rec.get("returns"))):
                returns[rid] = stats
            ok_runs += rec.get("status") == "ok"
            feasible_runs += ok
            variants = variants or rec.get("name") is not None
            for pos, (k, v) in enumerate((rec.get("labels") or {}).items()):
                col = f"choice.{k}"
                label_first[col] = min(label_first.get(col, (key, pos)), (key, pos))
                _note_kind(kinds, col, v)
            for plugin, params in (rec.get("configuration") or {}).items():
                for p, v in (params or {}).items():
                    _note_kind(kinds, f"{plugin}.{p}", json.dumps(v) if isinstance(v, list | dict) else v)
        order.sort()
        labels = sorted(label_first, key=label_first.__getitem__)
        params = [c for c in kinds if not c.startswith("choice.")]
        columns = table_columns(labels, params, variants)
        ranked = {rid: returns[rid] for _, rid, _, _ in order if rid in returns}
        return cls(order, ok_runs, feasible_runs, columns, kinds, ranked)

    def validation(self, best_run_id: str | None, spec: ValidationSpec) -> Record:
        """result.json's ``validation`` (DSR, PBO, verdict) of this order's runs."""
        return overfitting.validation_summary(
            self.returns,
            (rid for _, rid, ok, _ in self.order if ok),
            best_run_id,
            blocks=spec.cscv_blocks(),
            max_pbo=spec.max_pbo,
            min_dsr=spec.min_dsr,
        )

    def best_entry(self, records: Mapping[str, Record]) -> Record | None:
        """The result entry of the best run: the first feasible one that has the primary metric."""
        for n, (key, rid, ok, why) in enumerate(self.order):
            if ok and key[1] == 0:  # rank_key: (feasible group, metric missing, value, run_id)
                return result_entry(records[rid], ok, why, n + 1)
        return None


def _note_kind(kinds: dict[str, set[type]], col: str, value: Any) -> None:
    if value is not None and value == value:  # value != value: NaN
        kinds.setdefault(col, set()).add(type(value))
    else:
        kinds.setdefault(col, set())


def supersedes(new_status: str | None, old_status: str | None) -> bool:
    """Whether a later record of a run replaces an earlier one: a successful one wins over failures;
    otherwise the last seen counts."""
    return not (old_status == "ok" and new_status != "ok")


def latest_by_run_id(records: Iterable[Any]) -> dict[str, Record]:
    """One record per run_id, by :func:`supersedes`."""
    out: dict[str, Record] = {}
    for r in records:
        rec = _as_dict(r)
        rid = rec.get("run_id")
        if rid is None:
            continue
        if rid in out and not supersedes(rec.get("status"), out[rid].get("status")):
            continue
        out[rid] = rec
    return out


def result_entry(rec: Record, feasible: bool, why: str | None, rank_no: int | None) -> Record:
    entry: Record = {
        "run_id": rec.get("run_id"),
        "index": rec.get("index"),
        "rank": rank_no,
        "configuration": rec.get("configuration") or {},
        "worker_configuration": rec.get("labels") or {},
        "status": rec.get("status"),
        "feasible": feasible,
        "metrics": rec.get("metrics") or {},
        "causality": rec.get("causality") or {},
        "duration_s": rec.get("duration_s"),
    }
    if why and feasible is False and rec.get("status") == "ok":
        entry["infeasible_reason"] = why
    if rec.get("error"):
        entry["error"] = rec["error"]
    return entry


def optimization_result(
    *,
    optimization_id: str,
    optimization_name: str,
    timestamp: str,
    total_combinations: int,
    records: Iterable[Any],
    primary_metric: str = "sharpe_ratio",
    direction: Direction | None = None,
    secondary_metrics: list[str] | None = None,
    constraints: RunConstraints | None = None,
    planned_runs: int | None = None,
    search: dict[str, Any] | None = None,
    validation: ValidationSpec | None = None,
) -> Record:
    """The design's OptimizationResult (plus a few keys: rank, feasibility, planned/infeasible counts),
    in memory; ``records``: one per run_id (e.g. :func:`latest_by_run_id`'s)."""
    direction = direction or metric_direction(primary_metric)
    by_id = {rec.get("run_id", ""): rec for rec in map(_as_dict, records)}
    order = RunOrder.of(by_id, list(by_id), primary_metric, direction, constraints)
    results = [result_entry(by_id[rid], ok, why, n + 1) for n, (_, rid, ok, why) in enumerate(order.order)]
    best = order.best_entry(by_id)
    head = optimization_summary(
        optimization_id=optimization_id,
        optimization_name=optimization_name,
        timestamp=timestamp,
        total_combinations=total_combinations,
        planned_runs=planned_runs,
        completed=len(results),
        ok_runs=order.ok_runs,
        feasible_runs=order.feasible_runs,
        primary_metric=primary_metric,
        direction=direction,
        secondary_metrics=secondary_metrics,
        constraints=constraints,
        search=search,
        best=best,
        validation=order.validation(best["run_id"] if best else None, validation or ValidationSpec()),
    )
    return {**head, "results": results}


def optimization_summary(
    *,
    optimization_id: str,
    optimization_name: str,
    timestamp: str,
    total_combinations: int,
    planned_runs: int | None,
    completed: int,
    ok_runs: int,
    feasible_runs: int,
    primary_metric: str,
    direction: Direction,
    secondary_metrics: list[str] | None,
    constraints: RunConstraints | None,
    search: dict[str, Any] | None,
    best: Record | None,
    validation: Record | None = None,
) -> Record:
    """Every key of the OptimizationResult but ``results``; ``best``: the best result entry, if any;
    ``validation``: :meth:`RunOrder.validation`'s block."""
    return {
        "optimization_id": optimization_id,
        "optimization_name": optimization_name,
        "timestamp": timestamp,
        "total_combinations": total_combinations,
        "planned_runs": planned_runs if planned_runs is not None else total_combinations,
        "completed_runs": completed,
        "successful_runs": ok_runs,
        "failed_runs": completed - ok_runs,
        "feasible_runs": feasible_runs,
        "infeasible_runs": ok_runs - feasible_runs,
        "search": search or {"strategy": "grid"},
        "optimization_targets": {
            "primary_metric": primary_metric,
            "direction": direction.value,
            "secondary_metrics": list(secondary_metrics or []),
        },
        "constraints": constraints.model_dump(exclude_none=True) if constraints else {},
        "best_configuration": (
            {k: best[k] for k in ("run_id", "configuration", "worker_configuration", "metrics", "causality")}
            if best
            else None
        ),
        **({"validation": validation} if validation is not None else {}),
    }


def json_chunks(result: Record, key: str = "results") -> Iterator[str]:
    """``result`` as JSON text, its (long) ``key`` list one entry at a time: 100,000 runs never become
    one 76 MB string plus its bytes (the list goes last; readers do not depend on key order)."""
    head = json.dumps({k: v for k, v in result.items() if k != key}, default=str)
    yield head[:-1] + (", " if len(head) > 2 else "") + json.dumps(key) + ": ["
    for n, entry in enumerate(result.get(key) or ()):
        yield (", " if n else "") + json.dumps(entry, default=str)
    yield "]}"


# --------------------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------------------


def table_row(rec: Record, feasible: bool, why: str | None, rank_no: int) -> Record:
    """One run's row of results.parquet: columns as :func:`table_columns` orders them."""
    row: Record = {"rank": rank_no, "run_id": rec.get("run_id"), "index": rec.get("index")}
    if rec.get("name") is not None:
        row["variant_name"] = rec["name"]
    for k, v in (rec.get("labels") or {}).items():
        row[f"choice.{k}"] = v
    for plugin, params in (rec.get("configuration") or {}).items():
        for p, v in (params or {}).items():
            row[f"{plugin}.{p}"] = json.dumps(v) if isinstance(v, list | dict) else v
    row["status"] = rec.get("status")
    row["feasible"] = feasible
    row["infeasible_reason"] = why if (not feasible and rec.get("status") == "ok") else None
    metrics = rec.get("metrics") or {}
    for m in METRICS:
        row[m] = as_float(metrics.get(m))
    causality = rec.get("causality") or {}
    for c in CAUSALITY_COUNTS:
        row[c] = as_float(causality.get(c))
    reasons = causality.get("top_rejection_reasons")
    row["top_rejection_reasons"] = json.dumps(reasons) if reasons else None
    row["duration_s"] = rec.get("duration_s")
    row["error"] = rec.get("error")
    row.update(return_columns(rec.get("returns") if rec.get("status") == "ok" else None))
    return row


def return_columns(stats: Record | None) -> Record:
    """The PSR (against a Sharpe of 0) and the return statistics PSR, DSR and PBO are computed from: with
    the block columns anyone can recompute PBO from results.parquet (docs/meta.md)."""
    stats = stats or {}
    blocks = stats.get("blocks") or {}
    sharpe = as_float(stats.get("sharpe"))
    known = sharpe is not None and stats.get("bars") is not None
    return {
        "psr": (
            float(
                overfitting.psr(sharpe, stats["bars"], stats.get("skewness", 0.0), stats.get("kurtosis", 3.0))
            )
            if known
            else None
        ),
        "bars": stats.get("bars"),
        "sharpe_per_bar": sharpe,
        "skewness": as_float(stats.get("skewness")),
        "kurtosis": as_float(stats.get("kurtosis")),
        "block_bars": blocks.get("bars"),
        "block_sum": blocks.get("sum"),
        "block_sumsq": blocks.get("sumsq"),
    }


#: Columns of the return statistics, last in every table (see :func:`return_columns`).
RETURN_COLUMNS = (
    "psr",
    "bars",
    "sharpe_per_bar",
    "skewness",
    "kurtosis",
    "block_bars",
    "block_sum",
    "block_sumsq",
)


#: Columns of every table after the choice labels and parameters.
TABLE_TAIL = (
    "status",
    "feasible",
    "infeasible_reason",
    *METRICS,
    *CAUSALITY_COUNTS,
    "top_rejection_reasons",
    "duration_s",
    "error",
    *RETURN_COLUMNS,
)


def table_columns(labels: list[str], params: list[str], variants: bool) -> list[str]:
    """rank, run_id, index, [variant_name], choice labels (as first seen in rank order), parameters
    (sorted), then :data:`TABLE_TAIL`."""
    head = ["rank", "run_id", "index"] + (["variant_name"] if variants else [])
    return head + labels + sorted(params) + list(TABLE_TAIL)


def column_kind(kinds: set[type]) -> str:
    """How a label/parameter column is stored, from the types of its values: ``str`` when they mix
    (e.g. "fast" and 3: the table cannot hold both), else as they are ("same")."""
    return "str" if len(kinds) > 1 and not kinds <= {int, float} else "same"


def top_table(frame: pd.DataFrame, primary_metric: str, n: int = 10, extra: list[str] | None = None) -> str:
    """A plain-text table of the best ``n`` rows (frame is already ranked)."""
    metrics = [primary_metric] + [m for m in (extra or []) if m != primary_metric]
    params = [c for c in frame.columns if "." in c and not c.startswith("choice.")]
    labels = [c for c in frame.columns if c.startswith("choice.")]
    cols = ["rank"] + (["variant_name"] if "variant_name" in frame.columns else [])
    cols += labels + params + metrics + ["total_trades", "feasible"]
    cols = list(dict.fromkeys(c for c in cols if c in frame.columns))
    view = frame.head(n)[cols].copy()
    view.columns = [c.removeprefix("choice.") for c in cols]
    for c in view.columns:
        if view[c].dtype.kind == "f":
            view[c] = view[c].map(
                lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
            )
    return view.to_string(index=False)
