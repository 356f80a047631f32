"""Variant tests: from run records to the design's VariantComparisonResult (pure functions, no I/O).

:func:`variant_result` ranks the variants on the same market data and writes ``comparative_analysis``:
which variant has the best Sharpe or return, the lowest drawdown, the most trades, which is the most
defensive (:func:`most_defensive`), and, against the baseline, which differences a paired block
bootstrap calls significant (:func:`significance`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from . import overfitting
from .aggregation import Record, as_float, latest_by_run_id
from .models import METRICS


def rejection_ratio(causality: dict[str, Any]) -> float | None:
    detected = as_float(causality.get("opportunities_detected"))
    rejected = as_float(causality.get("opportunities_rejected"))
    if not detected or rejected is None:
        return None
    return rejected / detected


def _pick(rows: list[Record], key: Any, largest: bool) -> str | None:
    """Variant name with the largest/smallest key value (None values skipped), ties by run_id."""
    scored = [(key(r), r) for r in rows]
    scored = [(v, r) for v, r in scored if v is not None]
    if not scored:
        return None
    scored.sort(key=lambda t: ((-t[0] if largest else t[0]), t[1].get("run_id", "")))
    return scored[0][1].get("name")


def most_defensive(rows: list[Record]) -> str | None:
    """The variant that rejects the largest share of its opportunities (opportunities_rejected /
    opportunities_detected); ties, or no variant with opportunities, go to the lowest ``exposure``
    (share of time in the market); then run_id."""

    def key(r: Record) -> tuple[float, float, str] | None:
        ratio = rejection_ratio(r.get("causality") or {})
        exposure = as_float((r.get("metrics") or {}).get("exposure"))
        if ratio is None and exposure is None:
            return None
        return (-(ratio or 0.0), exposure if exposure is not None else math.inf, r.get("run_id", ""))

    scored = [(k, r) for r in rows if (k := key(r)) is not None]
    if not scored:
        return None
    scored.sort(key=lambda t: t[0])
    return scored[0][1].get("name")


def _variant_causality(c: dict[str, Any]) -> Record:
    out = dict(c)
    if "opportunities_detected" in c:
        out.setdefault("opportunity_id_count", c["opportunities_detected"])
    if "threats_detected" in c:
        out.setdefault("threat_id_count", c["threats_detected"])
    return out


def variant_result(
    *,
    test_id: str,
    test_name: str,
    timestamp: str,
    market_period: dict[str, Any],
    variants: list[dict[str, Any]],
    records: Iterable[Any],
    metrics: list[str] | None = None,
    causality_analysis: list[str] | None = None,
    curves: dict[str, str] | None = None,
    baseline: str | None = None,
) -> Record:
    """The design's VariantComparisonResult.  ``variants``: [{name, description, run_id}] in spec order;
    ``curves``: variant name -> key of its saved curves; ``baseline``: the variant the others are tested
    against (default the first), see :func:`significance`."""
    results, ok_rows = variant_entries(variants, latest_by_run_id(records), curves or {})
    comparative = comparative_analysis(ok_rows)
    baseline = baseline or (variants[0]["name"] if variants else None)
    tested = significance(ok_rows, baseline) if baseline else None
    if tested is not None and baseline is not None:
        comparative["baseline"] = baseline
        comparative["significant_differences"] = overfitting.significance_text(baseline, tested["variants"])
    analysis = causality_per_variant(results, causality_analysis or [])
    out: Record = {
        "test_id": test_id,
        "test_name": test_name,
        "timestamp": timestamp,
        "total_variants": len(variants),
        "successful_runs": sum(1 for r in results if r["status"] == "ok"),
        "failed_runs": sum(1 for r in results if r["status"] not in ("ok", "not_run")),
        "market_period": market_period,
        "compared_metrics": list(metrics or METRICS),
        "results": results,
        "comparative_analysis": comparative,
    }
    if tested is not None:
        out["significance"] = tested
    if analysis:
        out["causality_analysis"] = analysis
    return out


def variant_entries(
    variants: list[dict[str, Any]], by_id: dict[str, Record], curves: dict[str, str]
) -> tuple[list[Record], list[Record]]:
    """(one result entry per variant in spec order, the records of the variants that ran ok, named)."""
    results, ok_rows = [], []
    for v in variants:
        rec = by_id.get(v["run_id"])
        entry: Record = {
            "variant_name": v["name"],
            "description": v.get("description"),
            "run_id": v["run_id"],
        }
        if rec is None:
            entry.update(status="not_run", metrics={}, causality={})
        else:
            entry.update(
                status=rec.get("status"),
                metrics=rec.get("metrics") or {},
                causality=_variant_causality(rec.get("causality") or {}),
                duration_s=rec.get("duration_s"),
            )
            if rec.get("error"):
                entry["error"] = rec["error"]
            if rec.get("status") == "ok":
                ok_rows.append({**rec, "name": v["name"], "run_id": v["run_id"]})
        if v["name"] in curves:
            entry["curves"] = curves[v["name"]]
        results.append(entry)
    return results, ok_rows


def comparative_analysis(ok_rows: list[Record]) -> Record:
    """Which variant is best by Sharpe and return, lowest in drawdown, busiest, most defensive."""

    def metric(name: str) -> Any:
        return lambda r: as_float((r.get("metrics") or {}).get(name))

    def abs_metric(name: str) -> Any:
        return lambda r: None if metric(name)(r) is None else abs(metric(name)(r))

    return {
        "best_sharpe": _pick(ok_rows, metric("sharpe_ratio"), largest=True),
        "best_return": _pick(ok_rows, metric("total_return"), largest=True),
        "lowest_drawdown": _pick(ok_rows, abs_metric("max_drawdown"), largest=False),
        "most_trades": _pick(ok_rows, metric("total_trades"), largest=True),
        "most_defensive": most_defensive(ok_rows),
    }


def causality_per_variant(results: list[Record], wanted: list[str]) -> Record:
    """comparison_config.causality_analysis: opportunities, threats and rejection reasons per variant."""
    ok = [r for r in results if r["status"] == "ok"]
    analysis: Record = {}
    if "opportunities_per_variant" in wanted:
        analysis["opportunities_per_variant"] = {
            r["variant_name"]: {
                "detected": r["causality"].get("opportunities_detected"),
                "rejected": r["causality"].get("opportunities_rejected"),
                "rejection_ratio": rejection_ratio(r["causality"]),
            }
            for r in ok
        }
    if "threats_per_variant" in wanted:
        analysis["threats_per_variant"] = {
            r["variant_name"]: r["causality"].get("threats_detected") for r in ok
        }
    if "rejection_reasons" in wanted:
        analysis["rejection_reasons"] = {
            r["variant_name"]: r["causality"].get("top_rejection_reasons", []) for r in ok
        }
    return analysis


def significance(ok_rows: list[Record], baseline: str) -> Record | None:
    """Each variant against ``baseline`` by a paired stationary block bootstrap of the per-bar returns
    their records carry (overfitting.compare_to_baseline); None without the baseline's returns.  Sharpe
    differences are annualised as ``sharpe_ratio`` is (its ratio to the per-bar Sharpe)."""
    series: dict[str, Sequence[float]] = {
        r["name"]: s for r in ok_rows if (s := (r.get("returns") or {}).get("series")) is not None
    }
    if baseline not in series or len(series) < 2:
        return None
    factor = 1.0
    for r in ok_rows:
        per_bar = as_float((r.get("returns") or {}).get("sharpe"))
        annual = as_float((r.get("metrics") or {}).get("sharpe_ratio"))
        if per_bar and annual:
            factor = annual / per_bar
            break
    others = {k: v for k, v in series.items() if k != baseline}
    return {
        "baseline": baseline,
        "method": "paired stationary block bootstrap (Politis & Romano 1994) of the common bars",
        "samples": overfitting.BOOTSTRAP_SAMPLES,
        "seed": overfitting.BOOTSTRAP_SEED,
        "level": overfitting.SIGNIFICANCE_LEVEL,
        "sharpe_annualisation": factor,
        "variants": overfitting.compare_to_baseline(series[baseline], others, annualisation=factor),
    }
