"""Cost of walk-forward validation: the 640-run MA-crossover grid on GOOG daily (benchmarks/meta.py's
grid and operation), plain and with ``validation.walk_forward`` of 10 rolling windows.

    python benchmarks/walk_forward.py [--repeat N] [--workers 2]

Both are end to end in this process (plan, validate, run in forked workers, aggregate, write results),
each into a fresh output folder, best of N, back to back.  The walk-forward sweep runs every
configuration once on the whole data (the main table) and measures its 10 train and 10 test windows as
segments of that run (s1mple_engine.segments; the test segments record their per-bar returns for the
stitched out-of-sample line): 640 runs, 20 segments each.  Target: walk-forward <= 5x the plain sweep.
Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from meta import GRIDS, write_inputs  # noqa: E402 - benchmarks/meta.py, beside this file

#: 2148 GOOG bars: train 500 + 10 test windows of 160 bars (step = test) = 2100 bars.
WALK_FORWARD = """\
  validation:
    walk_forward: {train: 500, test: 160}
"""


def sweep(spec: Path, out: Path, workers: int) -> tuple[float, dict]:
    from s1mple.executors.sweep import LocalSweep
    from s1mple.meta.planner import plan_file

    t0 = time.perf_counter()
    plan = plan_file(spec)
    outcome = LocalSweep(plan, out=str(out), max_workers=workers, progress=False).run()
    elapsed = time.perf_counter() - t0
    # every windowed run counts (640 configurations x the windows); none may fail
    assert outcome.result["failed_runs"] == 0 and outcome.result["successful_runs"] >= 640, outcome.result
    assert outcome.result["feasible_runs"] + outcome.result["infeasible_runs"] == 640
    return elapsed, outcome.result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="s1mple-wf-bench-"))
    try:
        grid = write_inputs(tmp, GRIDS[0])  # GOOG daily, 640 runs
        (grid.parent / "wf.yaml").write_text(grid.read_text() + WALK_FORWARD)
        times: dict[str, float] = {}
        result: dict = {}
        for name, spec in (("plain", grid), ("walk_forward", grid.parent / "wf.yaml")):
            best = float("inf")
            for k in range(args.repeat):
                elapsed, result = sweep(spec, tmp / f"out-{name}-{k}", args.workers)
                best = min(best, elapsed)
            times[name] = best
        wf = result["validation"]["walk_forward"]
        print(f"GOOG 640-run grid, {args.workers} workers, best of {args.repeat}:")
        print(f"  plain sweep:                   {times['plain']:7.2f} s  (640 runs)")
        print(
            f"  walk-forward, {len(wf['windows'])} windows:      {times['walk_forward']:7.2f} s  "
            f"(640 runs, 2 segments each per window)"
        )
        ratio = times["walk_forward"] / times["plain"]
        print(f"  ratio: {ratio:.2f}x (target <= 5x)")
        print(
            f"  stitched out-of-sample return {wf['out_of_sample']['total_return']:.1f}%, "
            f"chosen configuration changed {wf['stability']['changes']} times"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
