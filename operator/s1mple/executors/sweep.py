"""A sweep on this machine: the plan's runs in pool processes (:class:`ParallelRunService`), each result
written to the store as it arrives, then aggregated as the s1mple controller aggregates a Job's results
(:class:`s1mple.meta.service.Sweep`, which this class extends with :meth:`LocalSweep.run`).

Resumable: runs whose record is already stored are skipped, so running the same sweep again after an
interruption finishes the rest.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from s1mple.executors.local import ParallelRunService, Progress, default_workers
from s1mple.meta.models import SearchStrategy
from s1mple.meta.planner import OptimizationPlan, VariantPlan
from s1mple.meta.service import RunSummary, Sweep, SweepOutcome, curve_frames, frame_bytes, prefetch_outputs
from s1mple_engine.runs import RecordWriter, gc_paused
from s1mple_engine.runspec import MANIFEST_RUNS_KEY
from s1mple_engine.store import StoreError, unique_names

Record = dict[str, Any]
#: the largest plan whose run specs stay in memory between the manifest and the pool (~2 KB each)
KEPT_PAYLOADS = 20_000
# how soon the pool's loop gets the interpreter back from TPE's fit in the search's asker thread when a run
# finishes (Python's default: 5 ms, longer than a backtest, so a pool process would wait for its next run)
ASKING_SWITCH_INTERVAL_S = 0.0005


def progress_categories(record: Record) -> list[tuple[str, str]]:
    """What the progress line counts runs by: the worker choices of an optimization's run."""
    return list((record.get("labels") or {}).items()) if record.get("kind") != "variant_test" else []


@dataclass
class _Execution:
    """One :meth:`LocalSweep.run`: the pool, the writer, what is stored and what arrived."""

    pool: ParallelRunService
    writer: RecordWriter
    done: dict[str, Record]
    results: dict[str, Record] = field(default_factory=dict)
    summary: RunSummary = field(default_factory=RunSummary)

    def flush_due(self) -> None:
        """Results of slow runs are written within the writer's max delay, not at the next run."""
        if self.writer.due():
            self.writer.flush()


class LocalSweep(Sweep):
    """:class:`~s1mple.meta.service.Sweep` with the runs executed here, in ``max_workers`` pool processes
    (default: one per core)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_workers = self.max_workers or default_workers()

    def run(self) -> SweepOutcome:
        """Prepare, run what is not stored yet, write results as they come, aggregate."""
        started = time.perf_counter()
        with gc_paused():  # validation, and the engine and market data loaded before the fork
            self.prepare()
        pool = ParallelRunService(
            max_workers=self.max_workers, timeout_per_run=self.timeout, run_fn=self.run_fn
        )
        writer = RecordWriter(self.store, fallback=self.fallback, max_delay=self.flush_delay)
        run = _Execution(pool, writer, self.existing())
        if isinstance(self.plan, VariantPlan):
            self.variant_files = unique_names([v.name for v in self.plan.config.variants])
        plan = self.plan
        bayesian = (
            isinstance(plan, OptimizationPlan) and plan.config.search.strategy == SearchStrategy.BAYESIAN
        )
        try:
            run_ids, skipped = self._run_bayesian(run) if bayesian else self._run_planned(run)
        finally:
            pool.terminate() if run.summary.interrupted else pool.close()
            writer.flush()
        if run.summary.interrupted:
            self.log(
                f"interrupted: kept {writer.written} new results in {self.store.uri}; run again to resume"
            )
        outcome = self.finish(run_ids, run.results, run.summary)
        outcome.skipped = skipped
        outcome.executed = run.summary.completed
        outcome.fallback = list(writer.fallback_keys)
        outcome.elapsed = time.perf_counter() - started
        if writer.fallback_keys and self.fallback is not None:
            self.log(
                f"WARNING: {len(writer.fallback_keys)} result batches could not be written to "
                f"{self.store.describe()} ({writer.errors[-1]}); they are kept in {self.fallback.uri}"
            )
        return outcome

    def _run_planned(self, run: _Execution) -> tuple[list[str], int]:
        """Grid/random/variants: one streaming pass over the plan writes the manifest and finds what is
        left to run; the pool runs it.  Returns (run ids in plan order, runs skipped as stored)."""
        plan, done = self.plan, run.done
        all_ids: list[str] = []
        todo: list[Any] = []
        seen: set[str] = set()
        lazy = run.pool.ctx.get_start_method() == "fork"  # forked pool processes resolve indices themselves
        # a plan of up to KEPT_PAYLOADS runs keeps the run specs it computes for the manifest: the pool
        # processes, forked after it, read theirs instead of computing each one again
        kept: dict[int, Record] | None = {} if lazy and plan.planned_runs <= KEPT_PAYLOADS else None

        def lines() -> Iterator[str]:
            for i in plan.planned_indices():
                p = plan.payload(i)
                rid = p["run_id"]
                all_ids.append(rid)
                if rid not in done and rid not in seen:
                    seen.add(rid)
                    todo.append(i if lazy else p)
                    if kept is not None:
                        kept[i] = p
                yield json.dumps(p) + "\n"

        self.write_manifest(None)
        self.store.put_lines(MANIFEST_RUNS_KEY, lines())
        run_ids = list(dict.fromkeys(all_ids))
        all_ids.clear()  # the plan order is in run_ids now
        if lazy:
            run.pool.resolve = plan.payload if kept is None else kept.__getitem__
        skipped = len(run_ids) - len(todo)
        for rid in run_ids:
            if rid in done:
                run.results[rid] = done[rid]
        if skipped and self.show_progress:  # progress off (--quiet): nothing but errors and warnings
            self.log(f"resuming: {skipped} of {len(run_ids)} runs already have results in {self.store.uri}")
        progress = self._progress(len(run_ids), skipped)
        if todo:
            run.pool.start(len(todo))  # fork before the prefetch thread starts (fork copies no thread)
        self.prefetch = prefetch_outputs()
        run.summary = run.pool.run(todo, self._on_record(run), progress, on_tick=run.flush_due)
        run.pool.resolve = None  # the kept run specs are not needed by the aggregation that follows
        return run_ids, skipped

    def _run_bayesian(self, run: _Execution) -> tuple[list[str], int]:
        """Bayesian search: batches of at least ``max_workers`` trials, each asked while the previous one
        runs (:meth:`BayesianSearch.run`); stored results become finished trials (no replay)."""
        from s1mple.meta.search import BayesianSearch

        plan = self.plan
        assert isinstance(plan, OptimizationPlan)
        self.write_manifest(None)
        search = BayesianSearch(plan, workers=self.max_workers or 1)
        resumed = search.resume(self._stored_trials(run.done))
        for p in resumed:
            run.results[p["run_id"]] = run.done[p["run_id"]]
        progress = self._progress(search.max_trials, len(resumed))
        on_record = self._on_record(run)

        def execute(payloads: list[Record]) -> dict[str, Record]:
            batch: dict[str, Record] = {}

            def collect(record: Record) -> None:
                on_record(record)
                batch[record["run_id"]] = run.results[record["run_id"]]

            part = run.pool.run(payloads, collect, None, on_tick=run.flush_due)
            run.summary.add(part)
            for r in batch.values():
                if progress:
                    progress.update(r)
            if part.interrupted:
                raise KeyboardInterrupt
            return batch

        if search.max_trials > len(resumed):  # fork now, before the search's asker thread starts
            run.pool.start(search.max_trials - len(resumed))
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, ASKING_SWITCH_INTERVAL_S))
        try:
            ran = search.run(execute)
        except KeyboardInterrupt:
            run.summary.interrupted = True
            ran = []
        finally:
            sys.setswitchinterval(switch)
        if progress:
            progress.finish()
        if ran or (resumed and not self.store.exists(MANIFEST_RUNS_KEY)):
            self.store.put_jsonl(MANIFEST_RUNS_KEY, resumed + ran)
        return [p["run_id"] for p in resumed + search.ran], len(resumed)  # search.order's runs

    def _stored_trials(self, done: dict[str, Record]) -> list[Record]:
        """Stored records, those of a previous search's trials first in its trial order (manifest.jsonl)."""
        order: list[str] = []
        if done and self.store.exists(MANIFEST_RUNS_KEY):
            lines = self.store.get_bytes(MANIFEST_RUNS_KEY).decode().splitlines()
            order = [json.loads(line)["run_id"] for line in lines if line.strip()]
        listed = dict.fromkeys(order)
        return [done[rid] for rid in listed if rid in done] + [
            r for rid, r in done.items() if rid not in listed
        ]

    def _on_record(self, run: _Execution) -> Callable[[Record], None]:
        """Each arriving record: its curves to their own files, the rest to the writer."""

        def on_record(record: Record) -> None:
            curves = record.get("curves")
            if curves and record.get("name") is not None:
                self._write_curves(record["name"], curves)
            record = {k: v for k, v in record.items() if k != "curves"}
            run.results[record["run_id"]] = record
            run.writer.add(record)

        return on_record

    def _write_curves(self, variant: str, curves: dict[str, Any]) -> None:
        safe = self.variant_files.get(variant) or unique_names([variant])[variant]
        main, monthly = curve_frames(curves)
        for suffix, frame in (("", main), (".monthly", monthly)):
            if frame is None:
                continue
            key = f"curves/{safe}{suffix}.parquet"
            data = frame_bytes(frame, "parquet")
            try:
                self.store.put_bytes(key, data)
            except StoreError:
                if self.fallback is None:
                    raise
                self.fallback.put_bytes(key, data)
            if not suffix:
                self.curve_keys[variant] = key

    def _progress(self, total: int, skipped: int) -> Progress | None:
        if not self.show_progress:
            return None
        return Progress(total, stream=self.stream, categories=progress_categories, skipped=skipped)
