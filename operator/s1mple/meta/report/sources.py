"""What a report is built from, read from a result store: the summary, the runs table, stored run specs.

Every reader raises :class:`ReportError` naming the object and what is missing, so ``s1mple report``,
``s1mple rerun`` and ``s1mple explore`` fail with a sentence instead of a traceback.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from s1mple_engine.config import ConfigError
from s1mple_engine.runspec import MANIFEST_KEY, MANIFEST_RUNS_KEY, RunSpec
from s1mple_engine.store import FileStore, Store, open_store

from ..service import FRAME_KEY, RESULT_KEY

#: Where a report is written, next to result.json.
REPORT_KEY = "report.html"
#: run_id -> its run spec payload (None: look for it in the store).
SpecResolver = Callable[[list[tuple[str, int]]], dict[str, dict[str, Any]]]


class ReportError(ConfigError):
    """Stored results cannot give a report: the message names the path and what is missing."""


def open_results(source: str | Path) -> Store:
    """The store of one optimization / variant test (a local folder or an ``s3://`` prefix), checked to
    hold a result.json."""
    store = open_store(source)
    if isinstance(store, FileStore) and not store.root.is_dir():
        raise ReportError(f"{store.root}: no such folder (give a run folder such as runs/<name>)")
    if not store.exists(RESULT_KEY):
        if not isinstance(store, FileStore) and not store.list_keys(""):
            raise ReportError(f"{store.uri}: the prefix does not exist (no object under it)")
        raise ReportError(
            f"{store.url(RESULT_KEY)}: missing: {store.uri} holds no finished optimization or variant test "
            "(s1mple optimize / variant-test writes result.json when the sweep ends)"
        )
    return store


def read_summary(store: Store) -> dict[str, Any]:
    """result.json without its (possibly 100,000-entry) ``results`` list for an optimization; whole for a
    variant test.  The list is written last (aggregation.json_chunks), so the head parses on its own;
    a file with keys after the list is parsed whole."""
    data = store.get_bytes(RESULT_KEY)
    cut = data.find(b', "results": [{"run_id"')
    last = data.rstrip().endswith(b"}]}")  # the list is the last key (else, e.g. validation after it)
    try:
        if cut > 0 and last and b'"optimization_id"' in data[:cut]:
            return {**json.loads(data[:cut] + b"}"), "results": []}
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{store.url(RESULT_KEY)}: not valid JSON ({exc}); the file is damaged") from None


def read_table(store: Store) -> pd.DataFrame:
    """results.parquet as a frame, best run first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = store.get_bytes(FRAME_KEY)
    except KeyError:
        raise ReportError(f"{store.url(FRAME_KEY)}: missing (the runs table of this result)") from None
    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReportError(
            f"{store.url(FRAME_KEY)}: unreadable parquet ({exc}): the file is truncated or damaged; "
            "aggregate again to rewrite it (s1mple optimize resumes from the stored results)"
        ) from None


def read_manifest(store: Store) -> dict[str, Any]:
    try:
        return store.get_json(MANIFEST_KEY)
    except KeyError:
        return {}


def _spec_objects(store: Store) -> list[str]:
    """Where run specs are stored: manifest.jsonl (local sweeps), plan chunks (the operator)."""
    keys = [MANIFEST_RUNS_KEY] if store.exists(MANIFEST_RUNS_KEY) else []
    return keys + [k for k in store.list_keys("plans/") if k.endswith(".jsonl")]


def find_run_specs(store: Store, wanted: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored run spec of each wanted run_id (those found): a byte search per object, no parse of
    the other 100,000 lines."""
    todo = set(wanted)
    found: dict[str, dict[str, Any]] = {}
    for key in _spec_objects(store):
        if not todo:
            break
        data = store.get_bytes(key)
        for rid in list(todo):
            at = data.find(f'"run_id": "{rid}"'.encode())
            if at < 0:
                continue
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            found[rid] = json.loads(data[start : end if end >= 0 else len(data)])
            todo.discard(rid)
    return found


def stored_specs(store: Store) -> SpecResolver:
    return lambda runs: find_run_specs(store, [rid for rid, _ in runs])


def plan_specs(plan: Any, store: Store) -> SpecResolver:
    """Run specs from the plan in memory (what the aggregation has), the store for any it does not give."""

    def resolve(runs: list[tuple[str, int]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rid, index in runs:
            try:
                payload = plan.payload(index)
            except (IndexError, ValueError, TypeError):
                continue
            if payload.get("run_id") == rid:
                out[rid] = payload
        missing = [rid for rid, _ in runs if rid not in out]
        return {**out, **(find_run_specs(store, missing) if missing else {})}

    return resolve


def rerun(payload: dict[str, Any]) -> tuple[Any, Any]:
    """(BacktestResult with curves and trades, its market data) of a stored run spec: the same operation
    run again here.  Market data on s3:// is fetched first, as the runner pod does."""
    from s1mple_engine.backtest import run_backtest
    from s1mple_engine.data import load_market_data
    from s1mple_engine.runner import MarketDataCache

    payload = json.loads(json.dumps(payload))
    MarketDataCache(open_store, Path(tempfile.gettempdir()) / "s1mple-report").localise(payload)
    op = RunSpec.from_payload(payload).operation
    bars = load_market_data(op.market_data, op.period)
    return run_backtest(op, None, bars, curves=True), bars
