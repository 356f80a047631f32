"""Run a planned optimization or variant test on this machine: probe the store, validate every run,
skip what is already stored, run the rest in the ParallelRunService, write results as they finish, and
aggregate.  The Kubernetes executor replaces only the middle step.

Store layout (``./runs/<name>/`` by default, or ``--out DIR|s3://bucket/prefix``), see docs/meta.md::

    manifest.json            plan metadata (kind, plan id, dimensions, spec, base operation)
    manifest.jsonl           one RunSpec per line (the runs this plan executes)
    results/<part>.jsonl     RunRecords, written atomically in small batches as runs finish
    curves/<variant>.parquet variant tests: equity + drawdown curves; <variant>.monthly.parquet
    result.json              OptimizationResult / VariantComparisonResult
    results.parquet          one row per run (results.csv with --csv)
    report.html              the Trade Explorer report (s1mple.meta.report), self-contained
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from s1mple_engine.config import ConfigError
from s1mple_engine.runs import gc_paused, read_records
from s1mple_engine.runspec import MANIFEST_KEY, MANIFEST_RUNS_KEY
from s1mple_engine.store import FileStore, S3Store, Store, default_location, open_store, unique_names

from . import aggregation, comparison, windows
from .models import Direction
from .outputs import write_optimization, write_table
from .planner import BasePlan, OptimizationPlan, VariantPlan

if TYPE_CHECKING:  # pandas is imported after the workers are forked (prefetch_outputs), not before
    import pandas as pd

RESULT_KEY = "result.json"
FRAME_KEY = "results.parquet"
CSV_KEY = "results.csv"


@dataclass
class RunSummary:
    """What one execution of runs did (the pool processes' count, or none for an aggregation only)."""

    submitted: int = 0
    completed: int = 0
    ok: int = 0
    failed: int = 0
    timeouts: int = 0
    crashed: int = 0
    interrupted: bool = False
    elapsed: float = 0.0
    workers: int = 0

    def line(self) -> str:
        extra = []
        if self.timeouts:
            extra.append(f"{self.timeouts} timed out")
        if self.crashed:
            extra.append(f"{self.crashed} crashed")
        tail = f" ({', '.join(extra)})" if extra else ""
        rate = self.completed / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"{self.completed}/{self.submitted} runs in {self.elapsed:.2f}s on {self.workers} pool processes "
            f"({rate:.0f}/s): {self.ok} ok, {self.failed + self.timeouts + self.crashed} failed{tail}"
            + (" — INTERRUPTED" if self.interrupted else "")
        )

    def add(self, part: RunSummary) -> None:
        """Fold in the summary of a later batch (a Bayesian search runs one batch at a time)."""
        for f in ("submitted", "completed", "ok", "failed", "timeouts", "crashed"):
            setattr(self, f, getattr(self, f) + getattr(part, f))
        self.elapsed += part.elapsed
        self.workers = max(self.workers, part.workers)
        self.interrupted = self.interrupted or part.interrupted


@dataclass
class SweepOutcome:
    result: dict[str, Any]
    frame: pd.DataFrame | None  # the whole table, unless finish() was asked to keep only the top
    summary: RunSummary
    location: str
    skipped: int = 0
    executed: int = 0
    fallback: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0  # the whole sweep: validation, search, runs, aggregation (summary.elapsed: runs)

    @property
    def interrupted(self) -> bool:
        return self.summary.interrupted


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def engine_validator() -> Callable[[Any], list[str]] | None:
    try:
        from s1mple_engine.validation import BlueprintValidator
    except ImportError:  # pragma: no cover - the engine always ships it
        return None
    return BlueprintValidator()


def warm_market_data(plan: BasePlan) -> None:
    """Import the engine and load the market data in THIS process (the engine caches it), before the
    workers are forked: they inherit both instead of each importing and parsing on its first run."""
    try:
        import s1mple_engine.backtest  # noqa: F401
        from s1mple_engine.data import load_market_data
    except ImportError:  # a broken engine: every run records the error
        return
    op = plan.base_operation
    try:
        load_market_data(op.market_data, op.period)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"market data {op.market_data.path!r}: {type(exc).__name__}: {exc}") from None


def open_output(
    plan: BasePlan, out: str | None, endpoint_url: str | None = None
) -> tuple[Store, Store | None]:
    """(store, local fallback for an S3 store)."""
    location = out or default_location(plan.name)
    store = open_store(location, endpoint_url=endpoint_url)
    fallback = FileStore(default_location(plan.name)) if isinstance(store, S3Store) else None
    return store, fallback


def prefetch_outputs(report: bool = True) -> threading.Thread:
    """Import what aggregating and writing the results need (pandas, pyarrow, the report renderer and its
    assets) in a background thread, started once the workers are forked: the imports then overlap the
    runs (the main thread mostly waits on the workers) instead of delaying the first run."""

    def load() -> None:
        try:
            import pandas  # noqa: F401
            import pyarrow.parquet  # noqa: F401

            if report:
                from .report.render import prefetch

                prefetch()
        except ImportError:  # reported where it is needed (write_report says which package is missing)
            pass

    thread = threading.Thread(target=load, name="s1mple-prefetch", daemon=True)
    thread.start()
    return thread


def frame_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buf, index=False)
    else:
        frame.to_csv(buf, index=False)
    return buf.getvalue()


def curve_frames(curves: dict[str, Any]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(equity+drawdown by timestamp, monthly returns) from a record's ``curves``."""
    import pandas as pd

    eq = curves.get("equity_curve")
    dd = curves.get("drawdown_curve")
    main = None
    first = eq or dd
    if first:
        index = first["index"]
        main = pd.DataFrame({"timestamp": index})
        if eq:
            main["equity"] = pd.Series(eq["values"], dtype="float64")
        if dd and len(dd["values"]) == len(index):
            main["drawdown"] = pd.Series(dd["values"], dtype="float64")
    monthly = None
    mr = curves.get("monthly_returns")
    if mr:
        monthly = pd.DataFrame({"month": mr["index"], "return": pd.Series(mr["values"], dtype="float64")})
    return main, monthly


class Sweep:
    """A plan against a store: probe and validate before anything runs, read what is stored, write the
    manifest, aggregate.  Running the runs is the executors' part: :class:`s1mple.executors.sweep.LocalSweep`
    in pool processes on this machine, the s1mple controller's Indexed Jobs on a cluster."""

    def __init__(
        self,
        plan: BasePlan,
        *,
        out: str | None = None,
        store: Store | None = None,
        endpoint_url: str | None = None,
        max_workers: int | None = None,
        timeout_per_run: float | None = None,
        fresh: bool = False,
        retry_failed: bool = False,
        csv: bool = False,
        stream: TextIO | None = None,
        progress: bool = True,
        run_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        validator: Callable[[Any], list[str]] | None | bool = True,
        warm: Callable[[BasePlan], None] | None | bool = True,
        flush_delay: float = 1.0,
    ):
        self.plan = plan
        if store is not None:  # e.g. the operator's per-resource store
            self.store, self.fallback = store, None
        else:
            self.store, self.fallback = open_output(plan, out, endpoint_url)
        cfg_parallel = plan.config.parallel_config
        self.max_workers = max_workers or cfg_parallel.max_workers  # None: the executor decides
        self.timeout = timeout_per_run or cfg_parallel.timeout_per_run
        self.fresh = fresh
        self.retry_failed = retry_failed
        self.csv = csv
        self.stream = stream or sys.stderr
        self.show_progress = progress
        self.run_fn = run_fn
        self.validator = engine_validator() if validator is True else (validator or None)
        self.warm = warm_market_data if warm is True else (warm or None)
        self.flush_delay = flush_delay
        self.curve_keys: dict[str, str] = {}
        self.prefetch: threading.Thread | None = None
        self.variant_files: dict[str, str] = {}

    def log(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    # -- steps ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.store.probe()  # before anything runs: a clear error naming the endpoint and env vars
        if self.validator is not None:
            with gc_paused():
                problems = self.plan.validate(self.validator)
            if problems:
                raise ConfigError(problems, self.plan.source)
        if self.warm is not None:
            self.warm(self.plan)

    def existing(self) -> dict[str, dict[str, Any]]:
        if self.fresh:
            return {}
        records = read_records(self.store)
        if self.fallback is not None:
            records += read_records(self.fallback)
        done = aggregation.latest_by_run_id(records)
        if self.retry_failed:
            done = {k: v for k, v in done.items() if v.get("status") == "ok"}
        return done

    def write_manifest(self, payloads: list[dict[str, Any]] | None) -> None:
        manifest = self.plan.manifest(created=now_iso())
        self.store.put_json(MANIFEST_KEY, manifest.model_dump(mode="json"))
        if payloads is not None:
            self.store.put_jsonl(MANIFEST_RUNS_KEY, payloads)

    def finish(
        self,
        run_ids: list[str],
        results: Mapping[str, dict[str, Any]],
        summary: RunSummary | None = None,
        keep: int | None = None,
        report: bool = True,
    ) -> SweepOutcome:
        """Aggregate the records of ``run_ids`` and write result.json/results.parquet.  ``results`` may
        parse lazily (it is read twice, one record at a time); ``keep``: how many result entries the
        outcome holds (None: all, and the table as a frame), as the operator needs only the top;
        ``report`` False: no report.html (the operator writes it once the records are dropped)."""
        with gc_paused():
            return self._finish(run_ids, results, summary or RunSummary(), keep, report)

    def _finish(
        self,
        run_ids: list[str],
        results: Mapping[str, dict[str, Any]],
        summary: RunSummary,
        keep: int | None,
        report: bool,
    ) -> SweepOutcome:
        plan = self.plan
        if self.prefetch is not None:  # imports done; no thread left when the report re-runs or forks
            self.prefetch.join()
        ts = now_iso()
        if isinstance(plan, OptimizationPlan):
            result, table = self._optimization_outputs(plan, run_ids, results, ts, keep)
        else:
            assert isinstance(plan, VariantPlan)
            result, table = self._variant_outputs(plan, run_ids, results, ts)
        keys = {"result": RESULT_KEY, "table": FRAME_KEY}
        self.store.put_bytes(FRAME_KEY, table)
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(table)) if keep is None or self.csv else None
        if self.csv and frame is not None:
            self.store.put_bytes(CSV_KEY, frame_bytes(frame, "csv"))
            keys["csv"] = CSV_KEY
        written = self.write_report(frame) if report else None
        if written:
            keys["report"] = written
        return SweepOutcome(result=result, frame=frame, summary=summary, location=self.store.uri, keys=keys)

    def _optimization_outputs(
        self,
        plan: OptimizationPlan,
        run_ids: list[str],
        results: Mapping[str, dict[str, Any]],
        ts: str,
        keep: int | None,
    ) -> tuple[dict[str, Any], bytes]:
        """result.json (written) and results.parquet (returned) of an optimization, validation included."""
        t, constraints = plan.config.optimization_targets, plan.config.constraints
        validation = windows.validation_reports(plan, run_ids, results)
        if validation:  # the main table ranks the whole-data (or in-sample) runs only
            run_ids = validation.pop("main_run_ids")
        order = aggregation.RunOrder.of(
            results, run_ids, t.primary_metric, t.primary_direction(), constraints
        )
        best = order.best_entry(results)
        head = aggregation.optimization_summary(
            optimization_id=plan.plan_id,
            optimization_name=plan.name,
            timestamp=ts,
            total_combinations=plan.total,
            planned_runs=plan.planned_runs,
            completed=len(order.order),
            ok_runs=order.ok_runs,
            feasible_runs=order.feasible_runs,
            primary_metric=t.primary_metric,
            direction=t.primary_direction(),
            secondary_metrics=t.secondary_metrics,
            constraints=constraints,
            search=plan.search_info(),
            best=best,
            validation=order.validation(best["run_id"] if best else None, plan.config.validation),
        )
        if validation:  # counts cover every windowed run; feasibility and ranking the main table
            head.update(validation.pop("run_counts"))
            head["validation"] = validation
        kept, table = write_optimization(self.store, RESULT_KEY, results, order, head, keep)
        return {**head, "results": kept}, table

    def _variant_outputs(
        self, plan: VariantPlan, run_ids: list[str], results: Mapping[str, dict[str, Any]], ts: str
    ) -> tuple[dict[str, Any], bytes]:
        """result.json (written) and results.parquet (returned) of a variant test; each variant's curves
        key (variants that resolve to the same backtest share its run and curves)."""
        variants = [
            {"name": v.name, "description": v.description, "run_id": plan.payload(i)["run_id"]}
            for i, v in enumerate(plan.config.variants)
        ]
        files = self.variant_files or unique_names([v["name"] for v in variants])
        for v in variants:
            key = f"curves/{files[v['name']]}.parquet"
            if v["name"] not in self.curve_keys and self.store.exists(key):
                self.curve_keys[v["name"]] = key
        by_run = {v["run_id"]: self.curve_keys[v["name"]] for v in variants if v["name"] in self.curve_keys}
        for v in variants:  # variants that resolve to the same backtest share its run and curves
            if v["name"] not in self.curve_keys and v["run_id"] in by_run:
                self.curve_keys[v["name"]] = by_run[v["run_id"]]
        cc = plan.config.comparison_config
        result = comparison.variant_result(
            test_id=plan.plan_id,
            test_name=plan.name,
            timestamp=ts,
            market_period=plan.market_period,
            variants=variants,
            records=[rec for r in run_ids if (rec := results.get(r)) is not None],
            metrics=cc.metrics,
            causality_analysis=cc.causality_analysis,
            curves=self.curve_keys,
            baseline=plan.config.baseline_name(),
        )
        self.store.put_lines(RESULT_KEY, aggregation.json_chunks(result))
        order = aggregation.RunOrder.of(results, run_ids, "sharpe_ratio", Direction.MAXIMIZE, None)
        table = write_table(results, order)
        return result, table

    def write_report(self, frame: pd.DataFrame | None = None) -> str | None:
        """report.html next to result.json (the one renderer, :mod:`.report`); its key, or None when the
        report stack (the ``operator`` extra) is not installed or the report cannot be built.  ``frame``:
        results.parquet as just written, when it is in memory already (else the report reads it)."""
        try:
            from .report import ReportError, write_report
        except ImportError as exc:
            self.log(f"no report.html: {exc.name} is not installed (pip install 's1mple[operator]')")
            return None
        try:
            return write_report(self.store, self.plan, frame)
        except ReportError as exc:
            self.log(f"no report.html: {exc}")
            return None
