"""`s1mple variant-test FILE`: race a variant test's variants on the same data and compare them.

Same options and exit codes as `s1mple optimize`; each variant's equity and drawdown curves and monthly
returns are saved under ``curves/``.
"""

from __future__ import annotations

import argparse

from s1mple.cli.optimize import add_run_options, run_research


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "variant-test",
        help="compare a variant test's variants head-to-head on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p, combinations=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_research(args, expect="variant_test")
