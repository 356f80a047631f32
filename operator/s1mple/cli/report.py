"""`s1mple report SOURCE` rebuilds a stored result's report.html; `s1mple rerun SOURCE RUN_ID` runs one
stored run again with its exact run spec (e.g. the best), printing it or writing its report.

SOURCE is a local run folder (``runs/<name>``) or an ``s3://bucket/prefix`` results prefix.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="rebuild the report.html of a stored optimization or variant test",
        description="Rebuild the Trade Explorer report of stored results (a run folder or s3:// prefix).",
    )
    p.add_argument("source", help="run folder (runs/<name>) or s3://bucket/prefix holding result.json")
    p.add_argument("--out", metavar="PATH", help="write the page here (default: report.html in SOURCE)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="best runs whose curves are drawn (5)")
    p.set_defaults(func=report)

    r = subparsers.add_parser(
        "rerun",
        help="run one stored run again with its exact run spec (e.g. the best)",
        description="Run one stored run of an optimization or variant test again, from its stored run spec.",
    )
    r.add_argument("source", help="run folder (runs/<name>) or s3://bucket/prefix holding result.json")
    r.add_argument("run_id", help="the run's run_id (see results.parquet, result.json or the report)")
    r.add_argument("--report", metavar="PATH", help="write the run's backtest report (HTML) here")
    r.add_argument("--json", action="store_true", help="print the whole BacktestResult as JSON")
    r.set_defaults(func=rerun)


def storage_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A store that cannot be reached is a sentence and exit code 2, like a configuration error."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from s1mple_engine.store import StoreError

        try:
            return command(args)
        except StoreError as exc:
            print(f"s1mple {args.command}: storage error: {exc}", file=sys.stderr)
            return 2

    return run


@storage_errors
def report(args: argparse.Namespace) -> int:
    from s1mple.meta.report import REPORT_KEY, build_report, open_results

    store = open_results(args.source)
    page = build_report(store, top=args.top)
    if args.out:
        Path(args.out).write_bytes(page)
        where = args.out
    else:
        store.put_bytes(REPORT_KEY, page)
        where = store.url(REPORT_KEY)
    print(f"report: {where} ({len(page) / 1e6:.1f} MB)")
    return 0


@storage_errors
def rerun(args: argparse.Namespace) -> int:
    from s1mple.cli.run import format_summary
    from s1mple.meta.report import ReportError, backtest_report, open_results
    from s1mple.meta.report.sources import find_run_specs, read_table
    from s1mple.meta.report.sources import rerun as run_again

    store = open_results(args.source)
    table = read_table(store)
    if args.run_id not in set(table["run_id"]):
        raise ReportError(
            f"{store.url('results.parquet')}: run_id {args.run_id!r} is not in the results "
            f"({len(table)} runs; the best is {table['run_id'].iloc[0] if len(table) else 'none'})"
        )
    spec = find_run_specs(store, [args.run_id]).get(args.run_id)
    if spec is None:
        raise ReportError(
            f"{store.uri}: no stored run spec for {args.run_id} (manifest.jsonl or plans/*/chunk-*.jsonl)"
        )
    result, bars = run_again(spec)
    if args.report:
        Path(args.report).write_bytes(backtest_report(result, bars))
        print(f"report: {args.report}", file=sys.stderr)
    sys.stdout.write((result.to_json() if args.json else format_summary(result)) + "\n")
    return 0
