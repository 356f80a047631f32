"""Benchmark of the search strategies' overhead: what a Bayesian or random search costs beyond its backtests.

    python benchmarks/search.py [--trials 500] [--workers 2] [--repeat 3] [--whole-space]

* Bayesian: ``search: {strategy: bayesian, max_trials: 500}`` over an MA-crossover space on GOOG daily
  (fast 2..101 x slow 10..408 step 2 with fast < slow, x 10 sizer fractions: 178,380 feasible points),
  end to end in this process (plan, validate, the TPE loop, the runs in 2 pool processes, aggregate, write),
  beside the same number of runs of the same strategy on the same data as a grid (``fast 5..29 x slow
  30..68 step 2`` = 500 runs, end to end the same way), and the time the Bayesian sweep takes to resume
  with nothing left to run (a new plan and sweep over the same output).  Targets: Bayesian <= 2x the
  grid; resume <= 2 s.  Best of ``--repeat`` rounds (grid, Bayesian, resume in each round).
* What the Bayesian search finds: its best Sharpe beside the best of a random search with as many trials
  over the same space (same seed), and the best of the 500-run grid; ``--whole-space`` also runs every
  point of the Bayesian space as a grid (~178,000 runs, minutes) for the true optimum.
* Random: ``search: {strategy: random, max_trials: 500}`` over a 10^9-combination constrained space
  (fast 1..1000 x slow 1..1000 with fast < slow x 1,000 sizer fractions), planned (every drawn run's
  payload computed) and validated, in a subprocess: seconds and peak RSS.  Target: <= 3 s and <= 200 MB.

Each round also prints the CPU seconds of this process (plan, the search, the pool's loop, records,
aggregation) and of the pool processes (the backtests), for the grid and the Bayesian sweep, with the part
of the Bayesian one spent on TPE (tells, fits, asks, payloads: the asker thread) and the time the pool
sat waiting for the asker between batches: CPU seconds move less than wall seconds on a loaded machine.

Timings on a shared 2-core machine are noisy; the script prints what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TQDM_DISABLE", "1")

from meta import GRIDS  # noqa: E402  (GOOG's SMA-cross base operation: benchmarks/meta.py)

BAYES = """\
optimization_config:
  name: GOOG SMA cross bayesian
  base_operation: operation.yaml
  {search}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: 2, end: 101}}
        slow: {{start: 10, end: 408, step: 2}}
    - worker_category: planning_workers
      worker_phase: size_planning
      worker_plugin: fixed_fraction_sizer
      parameters:
        fraction: {{start: 0.1, end: 1.0, step: 0.1}}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
  optimization_targets:
    primary_metric: sharpe_ratio
"""

GRID = """\
optimization_config:
  name: GOOG SMA cross grid of 500
  base_operation: operation.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {start: 5, end: 29}
        slow: {start: 30, end: 68, step: 2}
  optimization_targets:
    primary_metric: sharpe_ratio
"""

RANDOM = """\
optimization_config:
  name: random over a billion
  base_operation: operation.yaml
  search: {{strategy: random, max_trials: {trials}, seed: 5}}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: 1, end: 1000}}
        slow: {{start: 1, end: 1000}}
    - worker_category: planning_workers
      worker_phase: size_planning
      worker_plugin: fixed_fraction_sizer
      parameters:
        fraction: {{start: 0.001, end: 1.0, step: 0.001}}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
"""

RANDOM_CODE = """
import json, resource, sys, time, tracemalloc
t0 = time.perf_counter()
from s1mple.meta.planner import plan_file
from s1mple.meta.service import engine_validator
validator = engine_validator()
t1 = time.perf_counter()
plan = plan_file(sys.argv[1])
problems = plan.validate(validator)
ids = [p["run_id"] for p in plan.payloads()]
elapsed = time.perf_counter() - t1
tracemalloc.start()  # once more, traced (tracing slows allocation: not timed)
again = plan_file(sys.argv[1])
again.validate(validator)
assert [p["run_id"] for p in again.payloads()] == ids
traced = tracemalloc.get_traced_memory()[1] / 2**20
hwm = next(int(x.split()[1]) / 1024 for x in open("/proc/self/status") if x.startswith("VmHWM"))
print(json.dumps({"space": plan.describe(samples=1)["space_without_constraints"], "runs": len(set(ids)),
                  "problems": problems, "imports": t1 - t0, "seconds": elapsed, "hwm_mb": hwm,
                  "traced_mb": traced}))
"""


SEARCHES: list = []  # each Bayesian sweep's BayesianSearch (its fits, the asker's CPU, the pool's waits)
CPU: list[tuple[float, float]] = []  # each sweep's (CPU s of this process, of the pool processes)


def sweep(spec: Path, out: Path, workers: int) -> tuple[float, object]:
    """Plan + the whole sweep (validate, search loop, runs, aggregate, write), timed together."""
    from s1mple.executors.sweep import LocalSweep
    from s1mple.meta.planner import plan_file

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = time.process_time(), time.perf_counter()
    plan = plan_file(spec)
    outcome = LocalSweep(plan, out=str(out), max_workers=workers, progress=False).run()
    elapsed = time.perf_counter() - t0
    done = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool processes, reaped at the sweep's end
    pool = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    CPU.append((time.process_time() - c0, pool))
    return elapsed, outcome


def keep_searches() -> None:
    """Remember each BayesianSearch a sweep runs (its counters are printed)."""
    from s1mple.meta.search import BayesianSearch

    run = BayesianSearch.run

    def kept(self: BayesianSearch, execute: object) -> object:
        SEARCHES.append(self)
        return run(self, execute)  # type: ignore[arg-type]

    BayesianSearch.run = kept  # type: ignore[method-assign]


def best_sharpe(outcome: object) -> float:
    return float(outcome.result["best_configuration"]["metrics"]["sharpe_ratio"])  # type: ignore[attr-defined]


def searching(strategy: str, trials: int) -> str:
    """The Bayesian benchmark's space searched by ``strategy``."""
    return BAYES.format(search=f"search: {{strategy: {strategy}, max_trials: {trials}, seed: 7}}")


def whole_space(tmp: Path, workers: int) -> tuple[float, int]:
    """Every point of the Bayesian space as a grid: (the best Sharpe there is, runs)."""
    (tmp / "whole.yaml").write_text(BAYES.format(search="max_combinations: 1000000"))
    _, outcome = sweep(tmp / "whole.yaml", tmp / "whole-out", workers)
    return best_sharpe(outcome), int(outcome.result["successful_runs"])  # type: ignore[attr-defined]


def random_planning(spec: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RANDOM_CODE, str(spec)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best of each timing is printed")
    ap.add_argument("--whole-space", action="store_true", help="also run the whole Bayesian space as a grid")
    args = ap.parse_args(argv)
    from backtesting.test import GOOG

    with tempfile.TemporaryDirectory(prefix="s1mple-search-") as d:
        tmp = Path(d)
        csv = tmp / "GOOG.csv"
        (tmp / "operation.yaml").write_text(GRIDS[0].operation(csv))
        (tmp / "random.yaml").write_text(RANDOM.format(trials=args.trials))
        # first, while this process is small (ru_maxrss is inherited across fork+exec)
        rnd = random_planning(tmp / "random.yaml")
        GOOG.to_csv(csv, index_label="Date")
        (tmp / "bayes.yaml").write_text(searching("bayesian", args.trials))
        (tmp / "random-same.yaml").write_text(searching("random", args.trials))
        (tmp / "grid.yaml").write_text(GRID)

        keep_searches()
        grid_t, bayes_t, resume_t = [], [], []
        for k in range(args.repeat):
            grid_s, grid = sweep(tmp / "grid.yaml", tmp / f"grid-out-{k}", args.workers)
            assert grid.result["successful_runs"] == 500, grid.result["failed_runs"]
            bayes_s, bayes = sweep(tmp / "bayes.yaml", tmp / f"bayes-out-{k}", args.workers)
            assert bayes.summary.completed == args.trials, bayes.summary.completed
            resume_s, resumed = sweep(tmp / "bayes.yaml", tmp / f"bayes-out-{k}", args.workers)
            assert resumed.summary.completed == 0 and resumed.skipped == args.trials, resumed.skipped
            grid_t.append(grid_s)
            bayes_t.append(bayes_s)
            resume_t.append(resume_s)
            search = SEARCHES[-2]  # (the resume's search asked nothing)
            (grid_cpu, grid_pool), (bayes_cpu, bayes_pool) = CPU[-3:-1]
            print(
                f"  round {k + 1}: grid {grid_s:.2f} s, Bayesian {bayes_s:.2f} s ({bayes_s / grid_s:.2f}x), "
                f"resume {resume_s:.2f} s; CPU s in this process / the pool processes: grid {grid_cpu:.2f} / "
                f"{grid_pool:.2f}, Bayesian {bayes_cpu:.2f} / {bayes_pool:.2f}, of which TPE's work in the "
                f"asker thread {search.asking_s:.2f} ({search.sampler.fits} fits), and the pool waited "
                f"{search.waited_s:.2f} s for it between batches"
            )
        _, rnd_same = sweep(tmp / "random-same.yaml", tmp / "random-same-out", args.workers)
        best_everywhere = whole_space(tmp, args.workers) if args.whole_space else None

    bayes_s, grid_s, resume_s = min(bayes_t), min(grid_t), min(resume_t)
    print(
        f"Bayesian (TPE) {args.trials} trials, {args.workers} pool processes, whole sweep: {bayes_s:6.2f} s"
        f" (best of {args.repeat})"
    )
    print(f"  the same number of runs as a grid (500, same strategy and data):   {grid_s:6.2f} s")
    rounds = sorted(b / g for b, g in zip(bayes_t, grid_t, strict=True))
    print(
        f"  ratio {bayes_s / grid_s:.2f}x of the bests, {rounds[len(rounds) // 2]:.2f}x the median round "
        f"(target <= 2x)"
    )
    print(f"  resume with nothing left to run: {resume_s:6.2f} s (target <= 2 s)")
    print(
        f"  best sharpe found: Bayesian {best_sharpe(bayes):.3f}; random search, {args.trials} trials of the "
        f"same space: {best_sharpe(rnd_same):.3f}; the 500-run grid: {best_sharpe(grid):.3f}"
        + (
            f"; the whole space ({best_everywhere[1]:,} runs): {best_everywhere[0]:.3f}"
            if best_everywhere
            else ""
        )
    )
    print(
        f"Random {args.trials} trials over {rnd['space']:,} combinations (constrained): planned, validated "
        f"and every run's payload computed in {rnd['seconds']:.2f} s (target <= 3 s; the imports before it "
        f"{rnd['imports']:.2f} s); peak RSS {rnd['hwm_mb']:.0f} MB with the imports (target <= 200 MB), "
        f"{rnd['traced_mb']:.1f} MB allocated at peak by planning; {rnd['runs']} distinct runs, "
        f"{len(rnd['problems'])} problems"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
