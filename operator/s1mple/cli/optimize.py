"""`s1mple optimize FILE`: run an optimization on this machine and print the best runs.

Results go to ``./runs/<name>/`` (or ``--out DIR|s3://bucket/prefix``) as they finish; running the same
command again resumes: runs that already have a result are skipped.  Exit codes: 0 done, 1 storage
problem, 2 configuration problem (message, no traceback), 130 interrupted (finished results kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_run_options(p: argparse.ArgumentParser, *, combinations: bool) -> None:
    p.add_argument("file", help="optimization/variant-test YAML")
    p.add_argument(
        "--out", metavar="DIR|s3://BUCKET/PREFIX", help="where results go (default: ./runs/<name>)"
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="market data (CSV/Parquet or sample:NAME) replacing the base operation's",
    )
    p.add_argument(
        "--max-workers",
        type=int,
        metavar="N",
        help="worker processes (default: parallel_config, else one per core)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="per-run timeout (default: parallel_config.timeout_per_run)",
    )
    if combinations:
        p.add_argument(
            "--max-combinations",
            type=int,
            metavar="N",
            help="cap on the number of runs (default: spec, 100000)",
        )
    p.add_argument("--csv", action="store_true", help="also write results.csv")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows of the printed table (default 10)")
    p.add_argument("--fresh", action="store_true", help="ignore stored results and run everything again")
    p.add_argument(
        "--retry-failed", action="store_true", help="run again the runs whose stored result is a failure"
    )
    p.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint (default: $AWS_ENDPOINT_URL)")
    p.add_argument("--json", action="store_true", help="print the result JSON instead of the table")
    p.add_argument(
        "--quiet", action="store_true", help="print nothing but errors and warnings (with --json: the JSON)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "optimize",
        help="sweep an optimization's parameter space on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p, combinations=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_research(args, expect="optimization")


def run_research(args: argparse.Namespace, expect: str) -> int:
    """Shared by `optimize` and `variant-test`: plan, run, print; errors become exit codes."""
    from s1mple_engine.runs import gc_paused

    with gc_paused():  # imports and planning build what lives to the end (~10% of their time is GC)
        from s1mple.executors.sweep import LocalSweep
        from s1mple.meta.models import OptimizationConfig, VariantConfig, load_meta
        from s1mple.meta.planner import BasePlan, plan_optimization, plan_variant_test
        from s1mple_engine.config import ConfigError
        from s1mple_engine.store import StoreError

    try:
        with gc_paused():
            config = load_meta(args.file)
        if expect == "optimization" and not isinstance(config, OptimizationConfig):
            raise ConfigError(f"{args.file} is a variant test; run it with `s1mple variant-test`")
        if expect == "variant_test" and not isinstance(config, VariantConfig):
            raise ConfigError(f"{args.file} is an optimization; run it with `s1mple optimize`")
        plan: BasePlan
        with gc_paused():
            if isinstance(config, OptimizationConfig):
                plan = plan_optimization(
                    config,
                    source=args.file,
                    data=args.data,
                    max_combinations=getattr(args, "max_combinations", None),
                )
            else:
                plan = plan_variant_test(config, source=args.file, data=args.data)
        sweep = LocalSweep(
            plan,
            out=args.out,
            endpoint_url=args.endpoint_url,
            max_workers=args.max_workers,
            timeout_per_run=args.timeout,
            fresh=args.fresh,
            retry_failed=args.retry_failed,
            csv=args.csv,
            progress=not args.quiet,
        )
        outcome = sweep.run()
    except ConfigError as exc:
        print(f"s1mple: configuration error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"s1mple: storage error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(outcome.result, indent=1))
    elif not args.quiet:
        print_outcome(plan, outcome, args.top)
    return 130 if outcome.interrupted else 0


def print_outcome(plan: Any, outcome: Any, top: int) -> None:
    from s1mple.meta.aggregation import top_table
    from s1mple.meta.planner import OptimizationPlan

    r = outcome.result
    s = outcome.summary
    out = sys.stdout
    if isinstance(plan, OptimizationPlan):
        t = plan.config.optimization_targets
        print(
            f"Optimization {r['optimization_name']!r} (id {r['optimization_id']}): "
            f"{r['total_combinations']} combinations, {r['completed_runs']} with results "
            f"({r['successful_runs']} ok, {r['failed_runs']} failed, {r['infeasible_runs']} infeasible)",
            file=out,
        )
        print(_run_line(outcome), file=out)
        if len(outcome.frame):
            print(
                f"\nTop {min(top, len(outcome.frame))} by {t.primary_metric} ({t.primary_direction().value}; "
                "feasible first):",
                file=out,
            )
            print(top_table(outcome.frame, t.primary_metric, top, t.secondary_metrics), file=out)
        best = r.get("best_configuration")
        if best:
            choices = "".join(f"{k}={v} " for k, v in best["worker_configuration"].items())
            print(f"\nbest: run {best['run_id']} {choices}{json.dumps(best['configuration'])}", file=out)
        else:
            print("\nbest: none (no feasible run with a value of the primary metric)", file=out)
        validation = r.get("validation") or {}
        for line in validation_lines(validation) + holdout_walk_forward_lines(validation):
            print(line, file=out)
    else:
        print(
            f"Variant test {r['test_name']!r} (id {r['test_id']}): {r['total_variants']} variants, "
            f"{r['successful_runs']} ok, {r['failed_runs']} failed; "
            f"period {r['market_period'] or 'all data'}",
            file=out,
        )
        print(_run_line(outcome), file=out)
        print(variant_table(r), file=out)
        ca = dict(r["comparative_analysis"])
        significant = ca.pop("significant_differences", None)
        print("\n" + "  ".join(f"{k}: {v}" for k, v in ca.items()), file=out)
        if significant:
            print(f"significance (bootstrap, vs {ca.get('baseline')}): {significant}", file=out)
    print(
        f"\nresults: {outcome.location}/{outcome.keys.get('result')} and {outcome.keys.get('table')}",
        file=out,
    )
    if outcome.keys.get("report"):
        print(f"report: {outcome.location}/{outcome.keys['report']}", file=out)
    if s.interrupted:
        print("interrupted: finished runs are stored; run the same command again to resume", file=out)


def _g(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) else "n/a"


def holdout_walk_forward_lines(validation: dict[str, Any]) -> list[str]:
    """The holdout and walk-forward findings of result.json's ``validation``, in plain words."""
    lines = []
    h = validation.get("holdout")
    if h:
        m, i, o = h["primary_metric"], h["in_sample"], h["out_of_sample"]
        lines.append(
            f"\nholdout: in-sample {i['start']} .. {i['end']} ({i['bars']} bars), "
            f"out-of-sample {o['start']} .. {o['end']} ({o['bars']} bars); ranked on in-sample only"
        )
        for row in h["top"]:
            lines.append(
                f"  #{row['rank']:<3} {json.dumps(row['configuration'])}: {m} in-sample "
                f"{_g(row['in_sample'].get(m))} -> out-of-sample {_g(row['out_of_sample'].get(m))} "
                f"(change {_g(row['degradation'])})"
            )
        lines.append(f"  mean change of {m} from in-sample to out-of-sample: {_g(h['mean_degradation'])}")
    wf = validation.get("walk_forward")
    if wf:
        m = wf["primary_metric"]
        lines.append(f"\nwalk-forward ({len(wf['windows'])} windows; best on train, measured on test):")
        for w in wf["windows"]:
            lines.append(
                f"  {w['window']:>2}  train {w['train_start']} .. {w['train_end']}  "
                f"test {w['test_start']} .. {w['test_end']}  {json.dumps(w['configuration'])}  "
                f"{m} {_g(w['in_sample'])} -> {_g(w['out_of_sample'])}"
                f"  return {_g(w['out_of_sample_return'])}%"
            )
        o, st = wf["out_of_sample"], wf["stability"]
        lines.append(
            f"  stitched out-of-sample, per bar: total return {_g(o['total_return'])}%, max drawdown "
            f"{_g(o['max_drawdown'])}%, Sharpe {_g(o.get('sharpe_ratio'))}, mean {m} "
            f"{_g(o['mean_primary'])}; the chosen configuration "
            f"changed {st['changes']} times ({st['distinct']} distinct)"
        )
    return lines


def validation_lines(v: dict[str, Any] | None) -> list[str]:
    """The overfitting statistics under the top table, and the verdict in one line (docs/meta.md)."""
    if not v:
        return []
    lines = [""]
    d = v.get("deflated_sharpe") or {}
    if d.get("dsr") is not None:
        lines.append(
            f"deflated Sharpe ratio: {d['dsr']:.3f} (best Sharpe {d['sharpe']:.4f} a bar vs "
            f"{d['expected_max_sharpe']:.4f} expected from the best of {d['trials']} skill-less trials; "
            f"{d['observations']} bars, skewness {d['skewness']:.2f}, kurtosis {d['kurtosis']:.2f})"
        )
    p = v.get("pbo") or {}
    if p.get("pbo") is not None:
        lines.append(
            f"probability of backtest overfitting: {p['pbo']:.3f} ({p['splits']:,} CSCV splits of "
            f"{p['blocks']} blocks; median logit {p['logits']['p50']:.2f}; the in-sample best loses out of "
            f"sample in {p['prob_oos_loss']:.0%} of splits)"
        )
    elif p.get("reason"):
        lines.append(f"probability of backtest overfitting: not computed, {p['reason']}")
    lines.append(f"verdict: {v.get('verdict', '')}")
    return lines


def _run_line(outcome: Any) -> str:
    s = outcome.summary
    parts = [
        f"ran {s.completed} runs in {s.elapsed:.2f}s on {s.workers} pool processes"
        if s.completed
        else "ran 0 runs",
        f"whole sweep {outcome.elapsed:.2f}s",  # a search's asks, validation and aggregation included
    ]
    if outcome.skipped:
        parts.append(f"{outcome.skipped} reused from earlier results")
    if s.timeouts or s.crashed:
        parts.append(f"{s.timeouts} timed out, {s.crashed} crashed")
    return "; ".join(parts)


def variant_table(result: dict[str, Any]) -> str:
    import pandas as pd

    metrics = result.get("compared_metrics") or []
    rows = []
    for r in result["results"]:
        row = {"variant": r["variant_name"], "status": r["status"]}
        for m in metrics:
            v = r["metrics"].get(m)
            row[m] = f"{v:.4g}" if isinstance(v, float) else ("" if v is None else v)
        c = r.get("causality") or {}
        row["opps"] = c.get("opportunities_detected", "")
        row["rejected"] = c.get("opportunities_rejected", "")
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m s1mple.cli.optimize``); the `s1mple` command dispatches here too."""
    parser = argparse.ArgumentParser(prog="s1mple")
    sub = parser.add_subparsers(dest="command", required=True)
    from s1mple.cli import plan as plan_cmd
    from s1mple.cli import variant_test

    for mod in (plan_cmd, sys.modules[__name__], variant_test):
        mod.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
