"""Engine benchmarks (a script, not a timed test): prints best-of-N and median wall times.

1. One MA-crossover backtest (SMA 10/20, reversal, all-in) on backtesting.py's GOOG daily data (2,148 bars),
   in-process: cold (first run: features computed) and warm (memoized features, as in a sweep), with and
   without curves.  Target <= 3 ms.  backtesting.py on the same strategy for reference (~27 ms).
2. A sweep of 640 MA combinations on GOOG in one process (curves=False): per-run time.
3. The full five-category pipeline (3 context, 2 opportunity, 2 threat, entry/exit/size planning,
   trailing + partial + emergency execution) over 100,000 hourly bars.  Target <= 2 s.
4. ``s1mple run --json`` process cold start to result.  Target <= 1.5 s.
5. The ICT pipeline (config/operations/ict_smc_backtest.yaml: swings, order blocks, liquidity, FVG entries
   with limit orders, liquidity exits, risk sizing, drawdown threat) over 100,000 hourly bars, and the same
   with the robustness test's threat-aware + aggressive-management additions (volatility threat,
   adaptive sizer, 50 % partials, structure trailing after the first target, emergency exits).  Target
   <= 2 s.

Usage: python benchmarks/engine.py [--repeat N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.reference_strategy


def timeit(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def report(label: str, best: float, median: float, target: float | None = None) -> None:
    unit, scale = ("ms", 1e3) if best < 1 else ("s", 1.0)
    tgt = f"  (target <= {target * scale:g} {unit})" if target else ""
    print(f"{label:<58} best {best * scale:8.3f} {unit}  median {median * scale:8.3f} {unit}{tgt}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, skip backtesting.py")
    args = ap.parse_args()
    rep = 5 if args.quick else args.repeat

    from backtesting.test import GOOG

    from s1mple_engine import features
    from s1mple_engine.backtest import run_backtest
    from s1mple_engine.config import Blueprint, MarketDataConfig, load_operation
    from s1mple_engine.data import MarketData, load_market_data

    op = load_operation(ROOT / "config/operations/ma_crossover.yaml")
    goog = MarketData.from_frame(GOOG, symbol="GOOG")
    print(f"data: GOOG daily {len(goog)} bars; python {sys.version.split()[0]}")

    def cold():
        features.clear_memo()
        run_backtest(op, data=goog, curves=False)

    report("1. MA crossover on GOOG, cold (features computed)", *timeit(cold, rep), target=0.003)
    run_backtest(op, data=goog)
    warm = timeit(lambda: run_backtest(op, data=goog, curves=False), rep * 10)
    report("1. MA crossover on GOOG, warm, curves=False", *warm, target=0.003)
    report(
        "1. MA crossover on GOOG, warm, curves=True",
        *timeit(lambda: run_backtest(op, data=goog), rep * 5),
        target=0.003,
    )

    if not args.quick:
        from backtesting import Backtest

        from tests.reference_strategy import SmaCross

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = Backtest(GOOG, SmaCross, cash=10_000, commission=0.002, finalize_trades=True)
            report(
                "   backtesting.py 0.6.6, same strategy (finalize_trades)", *timeit(bt.run, max(3, rep // 4))
            )

    # 2. sweep: 640 combos (fast 2..41 x slow 50..200 step 10), features memoized across runs
    from s1mple_engine import backtest as engine_backtest

    base = op.strategy_links[0].blueprint
    combos = [(f, s) for f in range(2, 42) for s in range(50, 210, 10)]
    bps = []
    for f, s in combos:
        data = base.model_dump()
        data["opportunity_workers"][0]["params"].update(fast=f, slow=s)
        bps.append(Blueprint.model_validate(data))

    def sweep():
        for bp in bps:
            run_backtest(op, bp, goog, curves=False)

    def first_pass():
        features.clear_memo()
        engine_backtest._COMPILED.clear()
        sweep()

    best, med = timeit(first_pass, 3 if not args.quick else 1)
    print(
        f"2. sweep of {len(bps)} MA combos on GOOG, first pass (cold memo, new blueprints): "
        f"best {best:.3f} s = {best / len(bps) * 1e3:.3f} ms/run, median {med:.3f} s"
    )
    best, med = timeit(sweep, 3 if not args.quick else 1)
    print(
        f"2. sweep of {len(bps)} MA combos on GOOG, warm: best {best:.3f} s = "
        f"{best / len(bps) * 1e3:.3f} ms/run, median {med:.3f} s"
    )

    # 3. five-category pipeline over 100k bars
    big = load_market_data(MarketDataConfig(path="sample:synthetic_hourly_100k"))
    full = Blueprint.model_validate(
        {
            "name": "five_categories",
            "context_workers": [
                {"plugin": "ema", "params": {"period": 50}},
                {"plugin": "atr"},
                {"plugin": "rsi"},
            ],
            "opportunity_workers": [
                {"plugin": "ma_crossover", "params": {"fast": 20, "slow": 50, "kind": "ema"}},
                {
                    "plugin": "fvg_entry_detector",
                    "params": {"min_gap_size": 5.0, "require_structure_break": True},
                },
            ],
            "threat_workers": [
                {"plugin": "max_drawdown_monitor", "params": {"max_daily_drawdown": 2.0}},
                {"plugin": "volatility_spike_detector"},
            ],
            "planning_workers": {
                "entry_planning": [{"plugin": "market_entry_immediate"}],
                "exit_planning": [
                    {"plugin": "atr_based_stops", "params": {"atr_multiplier": 2.0}},
                    {"plugin": "fixed_rr_exit", "params": {"risk_reward_ratio": 2.0}},
                    {"plugin": "opposite_signal_exit"},
                ],
                "size_planning": [{"plugin": "fixed_risk_sizer", "params": {"risk_per_trade_percent": 1.0}}],
            },
            "execution_workers": {
                "position_management": [
                    {"plugin": "trailing_stop_manager"},
                    {"plugin": "partial_profit_taker"},
                ],
                "risk_safety": [{"plugin": "emergency_exit_agent"}],
            },
        }
    )

    def five_cold():
        features.clear_memo()
        return run_backtest(op, full, big, curves=False)

    r = five_cold()
    c = r.causality
    print(
        f"3. five-category pipeline, {len(big):,} bars: {r.metrics.total_trades} trades, "
        f"{c.opportunities_detected} opportunities, {c.opportunities_rejected} rejected, "
        f"{c.threats_detected} threats"
    )
    report(
        "3. five-category pipeline over 100k bars, cold memo",
        *timeit(five_cold, max(3, rep // 4)),
        target=2.0,
    )
    warm5 = timeit(lambda: run_backtest(op, full, big, curves=False), max(3, rep // 4))
    report("3. five-category pipeline over 100k bars, warm memo", *warm5, target=2.0)
    report(
        "3. ... warm memo, curves=True",
        *timeit(lambda: run_backtest(op, full, big, curves=True), 3),
        target=2.0,
    )

    # 4. CLI cold start
    exe = Path(sys.executable).with_name("s1mple")
    cmd = [str(exe), "run", str(ROOT / "config/operations/ma_crossover.yaml"), "--json"]

    def cli():
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    report("4. `s1mple run --json` process, cold start to result", *timeit(cli, max(3, rep // 2)), target=1.5)

    # 5. the ICT pipeline over 100k bars
    from s1mple_engine.backtest import operation_blueprint

    ict_op = load_operation(ROOT / "config/operations/ict_smc_backtest.yaml")
    ict = operation_blueprint(ict_op)
    aware = ict.model_dump()
    aware["threat_workers"].append(
        {"plugin": "volatility_spike_detector", "params": {"volatility_threshold_percentile": 95}}
    )
    aware["planning_workers"]["size_planning"] = [
        {"plugin": "adaptive_risk_sizer", "params": {"base_risk_percent": 1.0, "max_position_fraction": 5.0}}
    ]
    aware["execution_workers"] = {
        "position_management": [
            {"plugin": "partial_profit_taker", "params": {"take_50_percent_at_first_target": True}},
            {
                "plugin": "trailing_stop_manager",
                "params": {"trail_after_first_target": True, "trail_by_structure": True},
            },
        ],
        "risk_safety": [{"plugin": "emergency_exit_agent"}],
    }
    aware_bp = Blueprint.model_validate(aware)
    for label, bp in (("ICT pipeline", ict), ("ICT + threat-aware + aggressive management", aware_bp)):

        def ict_cold(bp=bp):
            features.clear_memo()
            return run_backtest(ict_op, bp, big, curves=False)

        r = ict_cold()
        c = r.causality
        print(
            f"5. {label}, {len(big):,} bars: {r.metrics.total_trades} trades, "
            f"{c.opportunities_detected} opportunities, {c.opportunities_rejected} rejected, "
            f"{c.threats_detected} threats"
        )
        report(f"5. {label}, cold memo", *timeit(ict_cold, max(3, rep // 4)), target=2.0)
        report(
            f"5. {label}, warm memo",
            *timeit(lambda bp=bp: run_backtest(ict_op, bp, big, curves=False), max(3, rep // 4)),
            target=2.0,
        )


if __name__ == "__main__":
    main()
