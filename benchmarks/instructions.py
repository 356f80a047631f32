"""Before/after in instructions, not seconds: the engine's workloads counted by cachegrind for two trees.

Wall and CPU times on a shared 2-core machine move by 10-30 % from one process to the next; the number of
instructions a workload executes does not (with a fixed hash seed and address-space randomisation off it
is the same to the instruction, run after run).  So a refactor's cost is shown here as instructions per
pass of a workload, for a base revision and for the working tree, side by side:

* ``sim``: ``simulate()`` alone over the 640 GOOG configurations of benchmarks/meta.py's grid (SMA
  stop-and-reverse, ~64 trades a run: the event path);
* ``meta``: ``run_backtest`` of 200 of those configurations (plan, simulation, result, metrics);
* ``engine``: ``run_backtest`` of 100 configurations of benchmarks/engine.py's demo sweep (few trades);
* ``ict``: one run of the ICT pipeline over 100,000 hourly bars (ledger threats, stops, limit entries);
* ``pool``: what a pool process does for each of the 640 GOOG grid runs of ``s1mple optimize``: the run
  spec from the plan (``plan.payload``), ``execute_payload`` (validation, backtest, record) and the record
  pickled as it goes back to the parent.

Each figure is (instructions of the workload run twice) - (run once): imports and set-up cancel out.
Needs valgrind (``apt install valgrind``); ~1-3 minutes per workload and tree.

    python benchmarks/instructions.py [--base fe82313] [--workloads sim,meta,engine,ict]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
import sys
from pathlib import Path

root, workload, passes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
from backtesting.test import GOOG

from s1mple_engine import backtest as B
from s1mple_engine.config import Blueprint, MarketDataConfig, load_operation
from s1mple_engine.data import MarketData, load_market_data
from s1mple_engine.workers import Context

op = load_operation(root / "config/operations/ma_crossover.yaml")
goog = MarketData.from_frame(GOOG, symbol="GOOG")
base = op.strategy_links[0].blueprint


def meta_grid():
    out = []
    for fast in range(5, 30):
        for slow in range(10, 69, 2):
            if fast < slow:
                d = base.model_dump()
                d["opportunity_workers"][0]["params"].update(fast=fast, slow=slow, kind="sma")
                d["planning_workers"]["exit_planning"] = [
                    {"plugin": "opposite_signal_exit", "params": {"reverse": True}}
                ]
                out.append(Blueprint.model_validate(d))
    return out


def aggregation(threat_operator):  # its field was renamed after fe82313
    field = getattr(threat_operator, "aggregation", None) or threat_operator.aggregation_strategy
    return field.value


if workload == "sim":
    cases = []
    for bp in meta_grid():
        strat = B.compile_cached(bp)
        ctx = Context(goog)
        ops = strat.operators
        opps = B.from_bar(B.collect_opportunities(ctx, strat.opportunity, ops["OpportunityOperator"]), 0)
        plan = B.plan_opportunities(ctx, strat.planning, opps, ops["PlanningOperator"])
        rules = [w.configure(ctx) for phase in B.EXECUTION_PHASES for w in strat.execution[phase]]
        cases.append((ctx, opps, plan, strat.threat, aggregation(ops["ThreatOperator"]), rules))

    def once():
        for c in cases:
            B.simulate(*c, cash=op.cash, commission=op.commission, slippage=op.slippage, fill_at=op.fill_at)
elif workload in ("meta", "engine"):
    if workload == "meta":
        bps = meta_grid()[:200]
    else:
        bps = []
        for fast in range(2, 42, 4):
            for slow in range(50, 210, 16):
                d = base.model_dump()
                d["opportunity_workers"][0]["params"].update(fast=fast, slow=slow)
                bps.append(Blueprint.model_validate(d))

    def once():
        for bp in bps:
            B.run_backtest(op, bp, goog, curves=False)
elif workload == "pool":
    import pickle
    import tempfile

    sys.path.insert(0, sys.argv[4])  # the checkout's benchmarks/meta.py writes the grid's inputs
    from benchmarks.meta import GRIDS, write_inputs
    from s1mple.executors.local import execute_payload
    from s1mple.meta.planner import plan_file

    plan = plan_file(write_inputs(Path(tempfile.mkdtemp()), GRIDS[0]))
    indices = list(plan.planned_indices())

    from s1mple_engine import backtest as engine

    def once():
        engine._COMPILED.clear()  # a sweep's pool process compiles each run's blueprint once: so does a pass
        for i in indices:
            pickle.dumps(execute_payload(plan.payload(i)))
else:
    big = load_market_data(MarketDataConfig(path="sample:synthetic_hourly_100k"))
    ict_op = load_operation(root / "config/operations/ict_smc_backtest.yaml")
    ict = B.operation_blueprint(ict_op)

    def once():
        B.run_backtest(ict_op, ict, big, curves=False)

once()  # warm: features memoized, blueprints compiled
for _ in range(passes):
    once()
"""


def instructions(tree: Path, workload: str, passes: int, driver: Path) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=f"{tree}/operator:{tree}/runner-image")
    cmd = [
        "setarch", "-R",  # no address-space randomisation: object ids (and so set orders) repeat
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, str(driver), str(tree), workload, str(passes), str(ROOT),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stderr
    match = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if not match:
        raise RuntimeError(f"no instruction count in cachegrind's output:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))


def per_pass(tree: Path, workload: str, driver: Path) -> float:
    """Million instructions of one pass of ``workload`` in ``tree``."""
    with ThreadPoolExecutor(2) as pool:
        one, two = pool.map(lambda n: instructions(tree, workload, n, driver), (1, 2))
    return (two - one) / 1e6


def export(rev: str, into: Path) -> Path:
    """The engine and meta sources of ``rev`` (git archive), for importing side by side with today's."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "operator", "runner-image", "config"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="fe82313", help="the revision to compare with (default fe82313)")
    ap.add_argument("--workloads", default="sim,meta,engine,ict")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="s1mple-instructions-") as d:
        driver = Path(d) / "driver.py"
        driver.write_text(DRIVER)
        base = export(args.base, Path(d) / "base")
        print(f"instructions per pass (millions; cachegrind): {args.base} vs the working tree")
        for workload in args.workloads.split(","):
            before = per_pass(base, workload, driver)
            after = per_pass(ROOT, workload, driver)
            change = (after / before - 1) * 100
            print(f"  {workload:<7} {before:10,.0f} M  ->  {after:10,.0f} M   {change:+6.1f} %", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
