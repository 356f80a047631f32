"""Execute one run spec: the unit of work of a sweep, locally (a pool worker) and on Kubernetes (a pod).

:func:`execute_run` never raises for a problem of the strategy or its data: it returns a
:class:`RunRecord` with ``status="failed"`` and the error text, and always records the duration.
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .fingerprint import check_code
from .runspec import RunSpec

Status = Literal["ok", "failed", "timeout", "crashed"]
MAX_ERROR = 4000
#: Set to a file path to append "<run_id> <pid>\n" for every run executed (a debugging/testing aid:
#: shows which runs a resumed sweep really executed).
EXECUTION_LOG_ENV = "S1MPLE_EXECUTION_LOG"


class RunRecord(BaseModel):
    """The outcome of one run; ``metrics``/``causality`` as in BacktestResult.summary(), non-finite → null."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    index: int
    kind: str = "optimization"
    name: str | None = None
    window: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    configuration: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status: Status
    error: str | None = None
    duration_s: float = 0.0
    finished_at: str | None = None
    metrics: dict[str, float | int | None] = Field(default_factory=dict)
    causality: dict[str, Any] = Field(default_factory=dict)
    curves: dict[str, Any] | None = Field(default=None, description="only when the spec asked for curves")
    returns: dict[str, Any] | None = Field(
        default=None, description="per-bar return statistics (result.ReturnStats): PSR, DSR and PBO read them"
    )
    segments: dict[str, Any] | None = Field(
        default=None, description="metrics of each of operation.segments (s1mple_engine.segments)"
    )

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict):  # numpy scalars
        return _finite(value.item())
    return value


def error_text(exc: BaseException) -> str:
    """``Type: message`` plus the innermost frames, bounded."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in frames)
    text = f"{type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")
    return text[:MAX_ERROR]


def record_of(
    spec: RunSpec | dict[str, Any], status: Status, error: str | None, duration: float
) -> RunRecord:
    """A record for a run that produced no result (failed, timed out, crashed)."""
    keys = {"run_id", "index", "kind", "name", "window"}
    s = spec if isinstance(spec, dict) else spec.model_dump(include=keys)
    return RunRecord(
        run_id=s["run_id"],
        index=s["index"],
        kind=s.get("kind", "optimization"),
        name=s.get("name"),
        window=s.get("window"),
        labels=s.get("labels", {}) if isinstance(spec, dict) else spec.labels,
        configuration=s.get("configuration", {}) if isinstance(spec, dict) else spec.configuration,
        status=status,
        error=error[:MAX_ERROR] if error else error,
        duration_s=round(duration, 6),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _log_execution(run_id: str) -> None:
    path = os.environ.get(EXECUTION_LOG_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{run_id} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


def extract_curves(result: Any) -> dict[str, Any]:
    """Equity and drawdown curves and monthly returns of a BacktestResult as ``{name: {index, values}}``."""
    out: dict[str, Any] = {}
    for name in ("equity_curve", "drawdown_curve"):
        curve = getattr(result, name, None)
        if curve is not None:
            out[name] = {"index": list(curve.time), "values": [_finite(v) for v in curve.values]}
    monthly = getattr(result, "monthly_returns", None)
    if monthly:
        out["monthly_returns"] = {
            "index": [m.month for m in monthly],
            "values": [_finite(m.return_pct) for m in monthly],
        }
    return out


def execute_run(
    spec: RunSpec,
    *,
    data: Any = None,
    backtest: Callable[..., Any] | None = None,
) -> RunRecord:
    """Run one backtest and summarise it.  Never raises for a strategy/data error."""
    t0 = time.perf_counter()
    _log_execution(spec.run_id)
    try:
        if spec.code is not None:
            check_code(spec.code, spec.operation)
        if backtest is None:
            from .backtest import run_backtest

            backtest = run_backtest
        # variant tests are few: their records carry the per-bar returns the significance tests resample
        series = spec.kind == "variant_test"
        result = backtest(spec.operation, None, data, curves=spec.curves, blocks=spec.blocks, series=series)
        summary = result.summary()
        metrics = {k: _finite(v) for k, v in summary.get("metrics", {}).items()}
        causality = {k: _finite(v) for k, v in summary.get("causality", {}).items()}
        curves = extract_curves(result) if spec.curves else None
    except Exception as exc:  # a strategy or data error: recorded, never raised
        return record_of(spec, "failed", error_text(exc), time.perf_counter() - t0)
    # every field comes from the validated spec or the result's models: validating them again would be
    # a pydantic pass over the whole record in every run of a sweep
    return RunRecord.model_construct(
        run_id=spec.run_id,
        index=spec.index,
        kind=spec.kind,
        name=spec.name,
        window=spec.window,
        labels=spec.labels,
        configuration=spec.configuration,
        status="ok",
        duration_s=round(time.perf_counter() - t0, 6),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        metrics=metrics,
        causality=causality,
        curves=curves,
        returns=summary.get("returns"),
        segments=summary.get("segments"),
    )


# --------------------------------------------------------------------------------------------------------
# Result layout in a store: results/<part>.jsonl, one RunRecord (without curves) per line
# --------------------------------------------------------------------------------------------------------

RESULTS_PREFIX = "results/"


class RecordWriter:
    """Collects records and writes them in small atomic batches (one JSON-lines object per batch).

    A batch is written when ``max_batch`` records are pending or ``max_delay`` seconds passed since the
    oldest pending one, and on :meth:`flush`/:meth:`close`; so a killed sweep loses at most the last
    ``max_delay`` seconds of results (those runs simply run again on the next attempt).  When the store
    fails (e.g. S3 became unreachable), batches go to ``fallback`` (a local store) instead and are listed
    in ``fallback_keys``: nothing computed is lost.
    """

    def __init__(
        self,
        store: Any,
        *,
        part_prefix: str | None = None,
        max_batch: int = 1000,
        max_delay: float = 1.0,
        fallback: Any = None,
    ):
        self.store = store
        self.fallback = fallback
        self.part_prefix = part_prefix or (
            datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{os.urandom(3).hex()}"
        )
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.pending: list[dict[str, Any]] = []
        self.oldest = 0.0
        self.seq = 0
        self.written = 0
        self.fallback_keys: list[str] = []
        self.errors: list[str] = []

    def add(self, record: dict[str, Any]) -> None:
        if not self.pending:
            self.oldest = time.monotonic()
        record = {k: v for k, v in record.items() if k != "curves"}
        self.pending.append(record)
        if len(self.pending) >= self.max_batch or time.monotonic() - self.oldest >= self.max_delay:
            self.flush()

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.oldest >= self.max_delay

    def flush(self) -> None:
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        self.seq += 1
        key = f"{RESULTS_PREFIX}{self.part_prefix}-{self.seq:06d}.jsonl"
        try:
            self.store.put_jsonl(key, rows)
        except Exception as exc:
            if self.fallback is None:
                self.pending = rows + self.pending
                raise
            self.errors.append(str(exc))
            self.fallback.put_jsonl(key, rows)
            self.fallback_keys.append(key)
        self.written += len(rows)

    close = flush


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building large acyclic data (records, results): each of its passes
    would walk the growing heap again (10,000 records: 2-6x slower) with no cycle to free at the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_part(store: Any, key: str) -> list[dict[str, Any]]:
    """The records of one stored part (a JSON-lines batch of a RecordWriter)."""
    with gc_paused():
        return [r for r in store.iter_jsonl(key) if isinstance(r, dict) and "run_id" in r]


#: One stored record as (run_id, status, its JSON line): what progress counts and what an aggregation
#: parses again when it needs the whole record.
PartLine = tuple[str, str | None, str]


def read_part_lines(store: Any, key: str) -> list[PartLine]:
    """The records of one stored part, kept as their JSON lines (a torn line is skipped)."""
    out: list[PartLine] = []
    for line in store.get_bytes(key).decode().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "run_id" in rec:
            status = rec.get("status")
            out.append((rec["run_id"], sys.intern(status) if isinstance(status, str) else None, line))
    return out


def read_records(store: Any, prefix: str = RESULTS_PREFIX) -> list[dict[str, Any]]:
    """Every record stored under ``results/``, in key order (older parts first)."""
    out: list[dict[str, Any]] = []
    for key in store.list_keys(prefix):
        if key.endswith(".jsonl"):
            out.extend(read_part(store, key))
    return out
