"""Benchmark of the meta workflow, side by side with its peers in the same run (a script, not a test):
SMA-crossover grids (fast < slow, 0.2 % commission, always in the market: stop and reverse, fills at the
next bar's open) on backtesting.py's sample data, run by s1mple, vectorbt and backtesting.py.

    python benchmarks/meta.py [--repeat N] [--workers 2] [--skip-backtesting-py] [--skip-vectorbt]

Grids: 640 runs on GOOG daily (2,148 bars): fast 5..29, slow 10..68 step 2; 743 runs on EURUSD hourly
(5,000 bars): fast 5..63, slow 10..95 step 5 (issue 16 names the run count, not the grid: this one has 743).

* s1mple "runs": the pool's wall time of the runs alone (2 forked workers); "in-process": plan ->
  validate -> load data -> run -> aggregate -> write result.json, results.parquet and report.html, in this
  process; "end to end": the real ``s1mple optimize`` command in a new interpreter (imports included),
  with bytecode caching on as after ``pip install`` (PYTHONDONTWRITEBYTECODE is dropped for it).
* vectorbt 1.2 (the ``bench`` extra): ``MA.run`` of every window and ``Portfolio.from_signals`` over all
  combinations as columns, in one process; "warm": after a first call (numba compiled); "cold": a new
  interpreter importing vectorbt and running the grid once (numba's on-disk cache as it is).
* backtesting.py 0.6.6: ``Backtest.optimize`` (its own process pool); on EURUSD a subset of the grid,
  extrapolated to the whole grid (printed as such).
* per run per core: wall time x processes used / runs.
* ``s1mple run --json`` of config/operations/ma_crossover.yaml, new interpreter, first call (target
  <= 1.5 s); and the peak memory of planning a 100,000-run space and computing every run id.

Timings on a shared 2-core machine are noisy: best of N is reported.  Install the peers with
``pip install -c constraints.txt -e '.[bench]'`` (``make bench`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.reference_strategy
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's per-run progress bars cost it seconds

OPERATION = """\
operation:
  name: {name}_sma_cross
  strategy_links:
    - blueprint:
        name: sma_cross
        opportunity_workers:
          - plugin: ma_crossover
            params: {{fast: 10, slow: 20, kind: sma}}
        planning_workers:
          entry_planning:
            - plugin: market_entry_immediate
          exit_planning:
            - plugin: opposite_signal_exit
              params: {{reverse: true}}
          size_planning:
            - plugin: fixed_fraction_sizer
              params: {{fraction: 1.0, integer_units: true}}
  market_data:
    path: {csv}
    symbol: {name}
    timeframe: {timeframe}
  cash: {cash}
  commission: 0.002
  fill_at: next_open
"""

GRID_SPEC = """\
optimization_config:
  name: {name} SMA cross grid
  base_operation: operation.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: {fast[0]}, end: {fast[1]}, step: {fast[2]}}}
        slow: {{start: {slow[0]}, end: {slow[1]}, step: {slow[2]}}}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
  optimization_targets:
    primary_metric: sharpe_ratio
"""


@dataclass(frozen=True)
class Grid:
    """One SMA-crossover grid on one of backtesting.py's sample data sets (fast < slow)."""

    name: str
    timeframe: str
    fast: tuple[int, int, int]  # start, end (inclusive), step
    slow: tuple[int, int, int]
    runs: int
    cash: int = 10_000

    def operation(self, csv: Path) -> str:
        """The base operation (operation.yaml) of this grid, reading its data from ``csv``."""
        return OPERATION.format(name=self.name, csv=csv, timeframe=self.timeframe, cash=self.cash)

    def pairs(self) -> list[tuple[int, int]]:
        fast = range(self.fast[0], self.fast[1] + 1, self.fast[2])
        slow = range(self.slow[0], self.slow[1] + 1, self.slow[2])
        return [(f, s) for f in fast for s in slow if f < s]

    def data(self) -> Any:
        import backtesting.test

        return getattr(backtesting.test, self.name)


GRIDS = (
    Grid("GOOG", "1d", fast=(5, 29, 1), slow=(10, 68, 2), runs=640),
    Grid("EURUSD", "1h", fast=(5, 63, 1), slow=(10, 95, 5), runs=743),
)


def write_inputs(tmp: Path, grid: Grid) -> Path:
    """The grid's data as CSV, its base operation and its optimization spec; returns the spec."""
    folder = tmp / grid.name
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{grid.name}.csv"
    grid.data().to_csv(csv, index_label="Date")
    (folder / "operation.yaml").write_text(grid.operation(csv))
    (folder / "grid.yaml").write_text(GRID_SPEC.format(name=grid.name, fast=grid.fast, slow=grid.slow))
    return folder / "grid.yaml"


def run_s1mple(spec: Path, out: Path, workers: int, runs: int) -> tuple[float, float, dict]:
    """(end to end in this process, the runs alone, result): plan, validate, load data, run, aggregate,
    write."""
    from s1mple.executors.sweep import LocalSweep
    from s1mple.meta.planner import plan_file

    t0 = time.perf_counter()
    plan = plan_file(spec)
    assert plan.total == runs, f"the grid must have {runs} combinations, got {plan.total}"
    outcome = LocalSweep(plan, out=str(out), max_workers=workers, progress=False).run()
    elapsed = time.perf_counter() - t0
    assert outcome.result["successful_runs"] == runs, outcome.result["failed_runs"]
    return elapsed, outcome.summary.elapsed, outcome.result


def cli_env() -> dict[str, str]:
    """The environment of a user's shell: bytecode caching on (this session may turn it off)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def s1mple_exe() -> str:
    return shutil.which("s1mple", path=str(Path(sys.executable).parent)) or "s1mple"


def run_cli(spec: Path, out: Path, workers: int) -> float:
    cmd = [s1mple_exe(), "optimize", str(spec), "--out", str(out), "--max-workers", str(workers), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=cli_env())
    return time.perf_counter() - t0


def run_json_cold() -> float:
    """`s1mple run --json` of the demo operation in a new interpreter: the first call, imports included."""
    op = ROOT / "config" / "operations" / "ma_crossover.yaml"
    t0 = time.perf_counter()
    subprocess.run([s1mple_exe(), "run", str(op), "--json"], check=True, capture_output=True, env=cli_env())
    return time.perf_counter() - t0


BREAKDOWN_CODE = r"""
# `s1mple optimize` as the console script runs it, with a clock around each step (wall and this thread's
# CPU); prints one JSON line.  The wrappers cost microseconds; the steps are the command's own code.
import json, resource, sys, time
marks = []
def mark(name):
    marks.append((name, time.perf_counter(), time.thread_time()))
mark("start")
from s1mple.cli import build_parser
parser = build_parser()
mark("imports: the CLI's parser")
from s1mple_engine.runs import gc_paused
with gc_paused():  # as run_research imports them
    from s1mple.executors.sweep import LocalSweep
    from s1mple.meta.models import OptimizationConfig, VariantConfig, load_meta
    from s1mple.meta.planner import BasePlan, plan_optimization, plan_variant_test
mark("imports: run_research (models, planner, engine, executors)")
import s1mple.executors.local as local
import s1mple.meta.planner as planner
import s1mple.meta.service as service
from s1mple.meta.planner.optimization import OptimizationPlan
def after(owner, name, label):
    f = getattr(owner, name)
    def step(*a, **k):
        try:
            return f(*a, **k)
        finally:
            mark(label)
    setattr(owner, name, step)
def before(owner, name, label):
    f = getattr(owner, name)
    def step(*a, **k):
        mark(label)
        return f(*a, **k)
    setattr(owner, name, step)
after(planner, "plan_optimization", "load the spec and plan the space")
after(OptimizationPlan, "validate", "validate every worker configuration")
after(service, "warm_market_data", "load the engine and the market data")
before(local.ParallelRunService, "start", "manifest.json + manifest.jsonl")
after(local.ParallelRunService, "run", "runs (pool processes forked, runs, results written)")
after(local.ParallelRunService, "close", "pool processes closed")
before(service.Sweep, "finish", "last results written")
before(service.windows, "validation_reports", "waiting for the imports run behind the runs (pandas...)")
after(service.aggregation.RunOrder, "validation", "rank the runs + DSR/PBO")
after(service, "write_optimization", "result.json + results.parquet")
before(service.Sweep, "write_report", "read the table back")
after(service.Sweep, "write_report", "report.html (top runs re-run, rendered)")
args = parser.parse_args(sys.argv[1:])
code = args.func(args)
mark("the rest (summary)")
rows, prev = [], marks[0]
for m in marks[1:]:
    if m[0] in dict(rows) and m[0].startswith("manifest"):  # the pool starts once per run(); keep the first
        continue
    rows.append((m[0], (m[1] - prev[1], m[2] - prev[2])))
    prev = m
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "steps": rows, "cpu": own.ru_utime + own.ru_stime,
                  "children_cpu": children.ru_utime + children.ru_stime}))
from s1mple_engine.process_exit import exit_process  # as the console script leaves
exit_process(code)
"""


def cli_breakdown(spec: Path, out: Path, workers: int) -> dict:
    """Where the end-to-end time goes: the command's steps in a new interpreter (wall, main-thread CPU),
    the process's and its pool processes' CPU, and the interpreter's own start-up."""
    cmd = [sys.executable, "-c", BREAKDOWN_CODE, "optimize", str(spec), "--out", str(out)]
    cmd += ["--max-workers", str(workers), "--quiet"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=cli_env())
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=cli_env())
    startup = time.perf_counter() - t0
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall, "startup": startup}


def print_breakdown(b: dict) -> None:
    steps = sum(w for _, (w, _) in b["steps"])
    print("    where the time goes (one run of the command; wall, main thread's CPU):")
    print(f"      {'interpreter start-up (python -c pass)':<60} {b['startup']:.3f} s")
    for name, (wall, cpu) in b["steps"]:
        print(f"      {name:<60} {wall:.3f} s  cpu {cpu:.3f} s")
    rest = b["wall"] - steps - b["startup"]
    print(f"      {'exit and the rest':<60} {rest:.3f} s")
    print(
        f"      total {b['wall']:.3f} s; CPU: this process {b['cpu']:.3f} s (threads included), "
        f"pool processes {b['children_cpu']:.3f} s"
    )


VECTORBT_CODE = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from benchmarks.meta import GRIDS, vectorbt_grid
grid = next(g for g in GRIDS if g.name == sys.argv[2])
vectorbt_grid(grid, grid.data())
print(time.perf_counter() - t0)
"""


def vectorbt_grid(grid: Grid, data: Any) -> Any:
    """The grid in vectorbt: every window's SMA once, then one Portfolio over all (fast, slow) columns;
    signals act at the next bar's open (shifted a bar, priced at the open), long on a cross above,
    reversed to short on a cross below; 0.2 % fees; all cash in.  Returns the total returns."""
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    pairs = grid.pairs()
    close, open_ = data["Close"], data["Open"]
    windows = sorted({w for pair in pairs for w in pair})
    ma = vbt.MA.run(close, window=windows, short_name="ma").ma
    by_window = {w: ma.iloc[:, k].to_numpy() for k, w in enumerate(windows)}
    fast = np.column_stack([by_window[f] for f, _ in pairs])
    slow = np.column_stack([by_window[s] for _, s in pairs])
    above = fast > slow
    prev = np.vstack([np.zeros((1, len(pairs)), dtype=bool), above[:-1]])
    valid = ~np.isnan(slow) & np.vstack([np.zeros((1, len(pairs)), dtype=bool), ~np.isnan(slow[:-1])])
    cross_up = above & ~prev & valid
    cross_down = ~above & prev & valid
    # act at the next bar: shift the signals one bar, price at that bar's open
    long_entries = np.vstack([np.zeros((1, len(pairs)), dtype=bool), cross_up[:-1]])
    short_entries = np.vstack([np.zeros((1, len(pairs)), dtype=bool), cross_down[:-1]])
    columns = pd.MultiIndex.from_tuples(pairs, names=["fast", "slow"])
    wrap = pd.DataFrame
    pf = vbt.Portfolio.from_signals(
        close,
        entries=wrap(long_entries, index=close.index, columns=columns),
        short_entries=wrap(short_entries, index=close.index, columns=columns),
        price=open_,
        fees=0.002,
        init_cash=grid.cash,
        upon_opposite_entry="reverse",
        freq=grid.timeframe,
    )
    return pf.total_return()


def run_vectorbt(grid: Grid, repeat: int) -> tuple[float, float, Any]:
    """(warm best of N, cold in a new interpreter, total returns)."""
    import warnings

    data = grid.data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        returns = vectorbt_grid(grid, data)  # compiles (or loads numba's cache)
        warm = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            vectorbt_grid(grid, data)
            warm.append(time.perf_counter() - t0)
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", VECTORBT_CODE, str(ROOT), grid.name],
        capture_output=True,
        text=True,
        check=True,
        env=cli_env(),
    )
    return min(warm), float(out.stdout.strip().splitlines()[-1]), returns


def run_backtesting_py(grid: Grid, subset: int | None) -> tuple[float, int, dict]:
    """(wall time, runs done, best) of ``Backtest.optimize`` over the grid, or its first ``subset`` fast
    lengths' worth of runs (at least ``subset`` runs)."""
    import warnings

    from backtesting import Backtest

    from tests.reference_strategy import SmaCross

    pairs = grid.pairs()
    fasts = sorted({f for f, _ in pairs})
    if subset:
        keep: list[int] = []
        for f in fasts:
            keep.append(f)
            if sum(1 for p in pairs if p[0] in keep) >= subset:
                break
        fasts = keep
    slows = sorted({s for f, s in pairs if f in fasts})
    runs = sum(1 for f, _ in pairs if f in fasts)
    bt = Backtest(grid.data(), SmaCross, cash=grid.cash, commission=0.002, finalize_trades=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats, heat = bt.optimize(
            n1=fasts, n2=slows, constraint=lambda p: p.n1 < p.n2, maximize="Sharpe Ratio", return_heatmap=True
        )
    elapsed = time.perf_counter() - t0
    assert len(heat) == runs, (len(heat), runs)
    best = {"n1": stats._strategy.n1, "n2": stats._strategy.n2, "sharpe": float(stats["Sharpe Ratio"])}
    return elapsed, runs, best


BIG = """\
optimization_config:
  name: big space
  base_operation: operation.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {start: 1, end: 50}
        slow: {start: 51, end: 250}
    - worker_category: planning_workers
      worker_phase: size_planning
      worker_plugin: fixed_fraction_sizer
      parameters:
        fraction: {start: 0.1, end: 1.0, step: 0.1}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
  max_combinations: 100000
"""

MEMORY_CODE = """
import json, resource, sys, time
t0 = time.perf_counter()
from s1mple.meta.planner import plan_file
plan = plan_file(sys.argv[1])
ids = [p["run_id"] for p in plan.payloads()]
elapsed = time.perf_counter() - t0
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
hwm = None
try:  # the kernel's high-water mark of this process image (reset by execve, unlike ru_maxrss)
    hwm = next(int(x.split()[1]) / 1024 for x in open("/proc/self/status") if x.startswith("VmHWM"))
except OSError:
    pass
print(json.dumps({"total": plan.total, "ids": len(set(ids)), "seconds": elapsed, "maxrss_mb": rss_mb,
                  "hwm_mb": hwm}))
"""


def memory(spec: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CODE, str(spec)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def per_run_core(seconds: float, processes: int, runs: int) -> str:
    return f"{seconds * processes / runs * 1e3:.2f} ms"


def bench_grid(grid: Grid, tmp: Path, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Rows (what, time, per run per core) of one grid, printed as they are measured."""
    spec = write_inputs(tmp, grid)
    rows: list[tuple[str, str, str]] = []

    def row(what: str, seconds: float, processes: int, runs: int = grid.runs, note: str = "") -> None:
        rows.append((what, f"{seconds:.3f} s{note}", per_run_core(seconds, processes, runs)))
        print(f"  {what:<58} {rows[-1][1]:<28} {rows[-1][2]} per run per core", flush=True)

    w = args.workers
    print(f"\n{grid.name}: {grid.runs} runs, {len(grid.data()):,} bars", flush=True)
    inproc, runs_only = [], []
    result: dict = {}
    for i in range(args.repeat):
        e2e, runs, result = run_s1mple(spec, tmp / grid.name / f"out{i}", w, grid.runs)
        inproc.append(e2e)
        runs_only.append(runs)
    row(f"s1mple runs only ({w} pool processes)", min(runs_only), w)
    row("s1mple in-process, plan to report.html", min(inproc), w)
    cli = [run_cli(spec, tmp / grid.name / f"cli{i}", w) for i in range(max(2, args.repeat // 2))]
    target = " (target <= 0.8 s)" if grid.name == "GOOG" else ""
    row("s1mple optimize, end to end (new interpreter)", min(cli), w, note=target)
    print_breakdown(cli_breakdown(spec, tmp / grid.name / "breakdown", w))
    best = result["best_configuration"]
    print(f"    best by Sharpe: {best['configuration']} sharpe {best['metrics']['sharpe_ratio']:.4f}")
    if not args.skip_vectorbt:
        try:
            warm, cold, returns = run_vectorbt(grid, args.repeat)
        except ImportError as exc:
            print(f"  vectorbt: not installed ({exc.name}): pip install -c constraints.txt -e '.[bench]'")
        else:
            row("vectorbt 1.2, warm (one process, column batch)", warm, 1)
            row("vectorbt 1.2, cold (new interpreter: import + JIT/cache)", cold, 1)
            top = returns.idxmax()
            print(f"    vectorbt best by total return: fast {top[0]}, slow {top[1]}: {returns.max():.1%}")
    if not args.skip_backtesting_py:
        subset = None if grid.name == "GOOG" else args.backtesting_subset
        elapsed, done, bt_best = run_backtesting_py(grid, subset)
        processes = min(w, os.cpu_count() or 1)
        if done == grid.runs:
            row(f"backtesting.py 0.6.6 Backtest.optimize ({processes} processes)", elapsed, processes)
        else:
            whole = elapsed * grid.runs / done
            row(
                f"backtesting.py 0.6.6 ({done} of {grid.runs} runs, extrapolated)",
                whole,
                processes,
                note=f" (measured {elapsed:.2f} s)",
            )
        print(f"    backtesting.py best by Sharpe of those: {bt_best}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="best of N (default 5)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-backtesting-py", action="store_true")
    ap.add_argument("--skip-vectorbt", action="store_true")
    ap.add_argument(
        "--backtesting-subset",
        type=int,
        default=120,
        metavar="N",
        help="backtesting.py runs on EURUSD: at least N of the 743, extrapolated (default 120)",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_DISABLE_PERFORMANCE_WARNINGS", "1")

    with tempfile.TemporaryDirectory(prefix="s1mple-bench-") as d:
        tmp = Path(d)
        (tmp / "big.yaml").write_text(BIG)
        (tmp / "operation.yaml").write_text(GRIDS[0].operation(tmp / "GOOG.csv"))
        # first, while this process is small: Linux keeps ru_maxrss across fork+exec, so a child started
        # later would report this process's peak instead of its own
        mem = memory(tmp / "big.yaml")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for grid in GRIDS:
            bench_grid(grid, tmp, args)
        cold = [run_json_cold() for _ in range(max(2, args.repeat // 2))]
        print(
            f"\ns1mple run --json (demo operation, new interpreter, first call): best {min(cold):.3f} s "
            f"(target <= 1.5 s)"
        )
        print(
            f"planning a {mem['total']:,}-run space and computing every run id: {mem['seconds']:.2f}s, "
            f"peak RSS {mem['maxrss_mb']:.0f} MB (getrusage ru_maxrss; VmHWM {mem['hwm_mb']:.0f} MB)"
        )
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        assert mem["total"] == 100_000
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
