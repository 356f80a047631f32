"""Benchmark: what the overfitting statistics add to a 10,000-run optimization (target: PBO <= 10 %).

    python benchmarks/validation.py [--runs 10000] [--repeat 3] [--workers 2]

* the sweep: a fast x slow MA-crossover grid of ``--runs`` runs on the shipped sample data
  (config/operations/ma_crossover.yaml, as benchmarks/operator.py), run end to end in this process
  (plan -> validate -> run in 2 forked workers -> aggregate -> result.json + results.parquet), each
  repeat into a fresh folder, once with the default validation (CSCV on, 16 blocks: 12,870 splits)
  and once with ``validation: {cscv: false}``;
* PBO alone: :func:`overfitting.pbo` recomputed from the block columns of the written results.parquet
  (as anyone can), and the whole validation block (DSR + PBO) from the records.

Prints the medians; the share PBO adds is (PBO alone) / (sweep wall time with it).  Timings on a shared
2-core machine are noisy: say so when quoting them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.operator import space  # noqa: E402
from s1mple.executors.sweep import LocalSweep  # noqa: E402
from s1mple.meta import overfitting  # noqa: E402
from s1mple.meta.planner import plan_file  # noqa: E402


def write_spec(tmp: Path, runs: int, cscv: bool) -> Path:
    spec = {
        "optimization_config": {
            "name": f"bench-{runs}",
            "base_operation": str(ROOT / "config/operations/ma_crossover.yaml"),
            "parameter_space": [
                {
                    "worker_category": "opportunity_workers",
                    "worker_plugin": "ma_crossover",
                    "parameters": space(runs),
                }
            ],
            "max_combinations": max(runs, 100_000),
            **({} if cscv else {"validation": {"cscv": False}}),
        }
    }
    path = tmp / f"spec-{cscv}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep(spec: Path, out: Path, workers: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    outcome = LocalSweep(plan_file(spec), out=str(out), max_workers=workers, progress=False).run()
    return time.perf_counter() - t0, outcome.result


def pbo_from_table(table: Path) -> tuple[float, dict]:
    frame = pd.read_parquet(table, columns=["feasible", "block_bars", "block_sum", "block_sumsq"])
    frame = frame[frame["feasible"]]
    t0 = time.perf_counter()
    result = overfitting.pbo(
        *(np.stack(frame[c].to_numpy()) for c in ("block_bars", "block_sum", "block_sumsq"))
    )
    return time.perf_counter() - t0, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="s1mple-bench-validation-") as tmp_dir:
        tmp = Path(tmp_dir)
        specs = {on: write_spec(tmp, args.runs, on) for on in (True, False)}
        walls: dict[bool, list[float]] = {True: [], False: []}
        alone: list[float] = []
        result: dict = {}
        for k in range(args.repeat):
            for on in (True, False) if k % 2 == 0 else (False, True):  # interleaved, alternating order
                wall, res = sweep(specs[on], tmp / f"out-{on}-{k}", args.workers)
                walls[on].append(wall)
                if on:
                    result = res
                    seconds, recomputed = pbo_from_table(tmp / f"out-{on}-{k}" / "results.parquet")
                    alone.append(seconds)
                    assert recomputed["pbo"] == res["validation"]["pbo"]["pbo"]
        with_pbo, without = statistics.median(walls[True]), statistics.median(walls[False])
        pbo_s = statistics.median(alone)
        v = result["validation"]
        print(f"{args.runs:,}-run optimization, {args.workers} workers, medians of {args.repeat}:")
        print(f"  sweep with validation (CSCV 16 blocks): {with_pbo:.2f} s   without CSCV: {without:.2f} s")
        print(
            f"  PBO alone ({v['pbo']['splits']:,} splits x {v['pbo']['runs']:,} runs, "
            f"{v['pbo']['distinct_runs']:,} distinct): {pbo_s:.3f} s = {pbo_s / with_pbo:.1%} of the sweep"
            " (target <= 10 %)"
        )
        print(f"  wall-time difference with/without: {(with_pbo - without) / without:+.1%} (noisy)")
        print("  each repeat (s): with " + ", ".join(f"{w:.1f}" for w in walls[True]))
        print("                   without " + ", ".join(f"{w:.1f}" for w in walls[False]))
        print(f"  result: PBO {v['pbo']['pbo']:.3f}, DSR {v['deflated_sharpe']['dsr']:.3f}; {v['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
