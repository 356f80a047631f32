"""Trade Explorer reports: one renderer turns stored results into a self-contained ``report.html``.

The shared aggregation (``s1mple optimize`` / ``variant-test`` and the operator) writes it next to
result.json; ``s1mple report`` rebuilds it, ``s1mple run --report`` writes one for a single backtest, and
``s1mple explore`` serves the reports of a store.  Pages carry their data and their JavaScript (plotly.js
from the plotly wheel, Tabulator vendored from npm): they open from disk or a downloaded S3 object with no
network.  Layers: :mod:`.sources` reads the store, :mod:`.build` shapes the data, :mod:`.render` the page.
"""

from __future__ import annotations

from typing import Any

from s1mple_engine.store import Store

from .build import TOP_CURVES, backtest_data, optimization_data, table_payload, variant_data
from .render import render
from .sources import (
    REPORT_KEY,
    ReportError,
    SpecResolver,
    open_results,
    plan_specs,
    read_manifest,
    read_summary,
    read_table,
    stored_specs,
)

__all__ = [
    "REPORT_KEY",
    "ReportError",
    "backtest_report",
    "build_report",
    "open_results",
    "write_report",
]


def build_report(
    store: Store, resolve: SpecResolver | None = None, top: int = TOP_CURVES, frame: Any = None
) -> bytes:
    """The report page (UTF-8) of the optimization or variant test stored in ``store``; ``resolve`` finds run
    specs (default: in the store); ``frame``: its results.parquet already read (default: read it)."""
    resolve = resolve or stored_specs(store)
    summary = read_summary(store)
    if "optimization_id" in summary:
        frame = read_table(store) if frame is None else frame
        return render(optimization_data(summary, frame, resolve, top), table=table_payload(frame))
    if "test_id" in summary:
        return render(variant_data(summary, read_manifest(store), resolve, store.uri))
    raise ReportError(f"{store.uri}/result.json: neither an optimization nor a variant test result")


def write_report(store: Store, plan: Any = None, frame: Any = None) -> str:
    """Build the report and store it as report.html; returns its key.  ``frame``: results.parquet as
    the aggregation just wrote it, if it has it in memory."""
    resolve = plan_specs(plan, store) if plan is not None else None
    store.put_bytes(REPORT_KEY, build_report(store, resolve, frame=frame))
    return REPORT_KEY


def backtest_report(result: Any, bars: Any) -> bytes:
    """The page (UTF-8) of one backtest (``s1mple run --report``)."""
    return render(backtest_data(result, bars))
