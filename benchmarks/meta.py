"""Benchmark of the meta workflow: the 640-run MA-crossover grid on GOOG daily, end to end, against
``backtesting.Backtest.optimize`` on the same grid; and the peak memory of planning a 100,000-run space.

    python benchmarks/meta.py [--repeat N] [--workers 2]

* s1mple: plan (load spec + base operation, expand, count) -> validate every distinct configuration ->
  load data -> run 640 backtests in 2 forked workers -> aggregate -> write result.json + results.parquet.
  Measured in this process (best of N, each into a fresh output folder), and once as the real
  ``s1mple optimize`` command (a new interpreter: imports included).
* backtesting.py 0.6.6: ``Backtest(GOOG, SmaCross, cash=10_000, commission=.002).optimize(n1=range(5, 30),
  n2=range(10, 70, 2), constraint=lambda p: p.n1 < p.n2, maximize='Sharpe Ratio')``.
* memory: ``s1mple plan``-equivalent planning of a 100,000-run space plus computing every run's id (what
  a sweep does before running), in a subprocess, peak RSS from ``resource.getrusage``.

Timings on a shared 2-core machine are noisy: best of N is reported.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.reference_strategy
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's per-run progress bars cost it seconds

OPERATION = """\
operation:
  name: goog_sma_cross
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
    symbol: GOOG
    timeframe: 1d
  cash: 10000
  commission: 0.002
  fill_at: next_open
"""

GRID = """\
optimization_config:
  name: GOOG SMA cross grid
  base_operation: operation.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {start: 5, end: 29, step: 1}
        slow: {start: 10, end: 68, step: 2}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
  optimization_targets:
    primary_metric: sharpe_ratio
"""

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


def write_inputs(tmp: Path) -> Path:
    from backtesting.test import GOOG

    csv = tmp / "GOOG.csv"
    GOOG.to_csv(csv, index_label="Date")
    (tmp / "operation.yaml").write_text(OPERATION.format(csv=csv))
    (tmp / "grid.yaml").write_text(GRID)
    (tmp / "big.yaml").write_text(BIG)
    return csv


def run_s1mple(spec: Path, out: Path, workers: int) -> tuple[float, dict]:
    """End to end in this process: plan, validate, load data, run, aggregate, write."""
    from s1mple.executors.sweep import LocalSweep
    from s1mple.meta.planner import plan_file

    t0 = time.perf_counter()
    plan = plan_file(spec)
    assert plan.total == 640, f"the grid must have 640 combinations, got {plan.total}"
    outcome = LocalSweep(plan, out=str(out), max_workers=workers, progress=False).run()
    elapsed = time.perf_counter() - t0
    assert outcome.result["successful_runs"] == 640, outcome.result["failed_runs"]
    return elapsed, outcome.result


def run_cli(spec: Path, out: Path, workers: int) -> float:
    exe = shutil.which("s1mple", path=str(Path(sys.executable).parent)) or "s1mple"
    cmd = [exe, "optimize", str(spec), "--out", str(out), "--max-workers", str(workers), "--quiet"]
    probe = subprocess.run([exe, "optimize", "--help"], capture_output=True)
    if probe.returncode != 0:  # the dispatcher is not wired yet: call the module
        cmd = [sys.executable, "-m", "s1mple.cli.optimize", *cmd[1:]]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def run_backtesting_py(workers: int) -> tuple[float, dict]:
    import warnings

    from backtesting import Backtest
    from backtesting.test import GOOG

    from tests.reference_strategy import SmaCross

    bt = Backtest(GOOG, SmaCross, cash=10_000, commission=0.002)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats, heat = bt.optimize(
            n1=range(5, 30),
            n2=range(10, 70, 2),
            constraint=lambda p: p.n1 < p.n2,
            maximize="Sharpe Ratio",
            return_heatmap=True,
        )
    elapsed = time.perf_counter() - t0
    assert len(heat) == 640, len(heat)
    return elapsed, {
        "n1": stats._strategy.n1,
        "n2": stats._strategy.n2,
        "sharpe": float(stats["Sharpe Ratio"]),
    }


def memory(spec: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CODE, str(spec)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="best of N (default 5)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-backtesting-py", action="store_true")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="s1mple-bench-") as d:
        tmp = Path(d)
        (tmp / "big.yaml").write_text(BIG)
        (tmp / "operation.yaml").write_text(OPERATION.format(csv=tmp / "GOOG.csv"))
        # first, while this process is small: Linux keeps ru_maxrss across fork+exec, so a child started
        # later would report this process's peak instead of its own
        mem = memory(tmp / "big.yaml")
        write_inputs(tmp)
        spec = tmp / "grid.yaml"
        times = []
        result = {}
        for i in range(args.repeat):
            elapsed, result = run_s1mple(spec, tmp / f"out{i}", args.workers)
            times.append(elapsed)
        best = result["best_configuration"]
        cli_times = [run_cli(spec, tmp / f"cli{i}", args.workers) for i in range(max(1, args.repeat // 2))]
        print(
            f"s1mple  640-run grid, {args.workers} workers, end to end in-process: "
            f"best {min(times):.3f}s (all: {', '.join(f'{t:.3f}' for t in times)})"
        )
        print(
            f"s1mple  same via `s1mple optimize` (new interpreter, imports included): "
            f"best {min(cli_times):.3f}s"
        )
        print(f"        best: {best['configuration']} sharpe={best['metrics']['sharpe_ratio']:.4f}")
        if not args.skip_backtesting_py:
            bt_times, bt_best = [], {}
            for _ in range(max(1, min(3, args.repeat))):
                t, bt_best = run_backtesting_py(args.workers)
                bt_times.append(t)
            print(
                f"backtesting.py 0.6.6 Backtest.optimize, same grid: best {min(bt_times):.3f}s "
                f"(all: {', '.join(f'{t:.3f}' for t in bt_times)}); best {bt_best}"
            )
            print(
                f"ratio (backtesting.py / s1mple, best of each): "
                f"{min(bt_times) / min(times):.1f}x in-process, "
                f"{min(bt_times) / min(cli_times):.1f}x via the CLI"
            )
        print(
            f"planning a {mem['total']:,}-run space and computing every run id: {mem['seconds']:.2f}s, "
            f"peak RSS {mem['maxrss_mb']:.0f} MB (getrusage ru_maxrss; VmHWM {mem['hwm_mb']:.0f} MB)"
        )
        assert mem["total"] == 100_000
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
