"""`s1mple plan FILE`: expand an optimization or variant test and show it, without running anything.

Prints ``total_combinations`` (a variant test: ``total_variants``), the dimensions, a few sample runs, and
the result of validating every distinct worker configuration.  Exit code 2 on any configuration problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan",
        help="show what an optimization/variant test would run (runs nothing)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="optimization/variant-test YAML")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--max-combinations", type=int, metavar="N", help="cap on the number of runs (default: spec)"
    )
    p.add_argument("--data", metavar="PATH", help="market data replacing the base operation's")
    p.add_argument("--samples", type=int, default=3, metavar="N", help="sample runs to show (default 3)")
    p.add_argument("--no-validate", action="store_true", help="skip validating plugins/params/event chains")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from s1mple.meta.planner import plan_file
    from s1mple.meta.service import engine_validator
    from s1mple_engine.config import ConfigError

    try:
        plan = plan_file(args.file, data=args.data, max_combinations=args.max_combinations)
        info = plan.describe(samples=args.samples)
        if not args.no_validate:
            validator = engine_validator()
            problems = plan.validate(validator) if validator else []
            if problems:
                raise ConfigError(problems, args.file)
            info["validated"] = validator is not None
    except ConfigError as exc:
        print(f"s1mple: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=1, default=str))
    else:
        print(render(info))
    return 0


def render(info: dict[str, Any]) -> str:
    lines = []
    if info["kind"] == "optimization":
        lines.append(f"Optimization {info['name']!r} (id {info['optimization_id']})")
        lines.append(f"  base operation:     {info['base_operation']}")
        extra = ""
        if info["space_without_constraints"] != info["total_combinations"]:
            extra = f"  ({info['space_without_constraints']:,} before parameter constraints)"
        lines.append(f"  total_combinations: {info['total_combinations']:,}{extra}")
        s = info["search"]
        lines.append(
            f"  runs to execute:    {info['planned_runs']:,}  (search: {s.get('strategy')}"
            + (f", seed {s.get('seed')}" if s.get("strategy") != "grid" else "")
            + ")"
        )
        lines.append(f"  cap:                {info['max_combinations']:,}")
        if info.get("windows"):
            w = info["windows"]
            lines.append(f"  windows:            {len(w)} per configuration: {', '.join(w)}")
        lines.append("  dimensions:")
        width = max((len(d["name"]) for d in info["dimensions"]), default=10)
        for d in info["dimensions"]:
            lines.append(f"    {d['name']:<{width}}  {d['size']:>8,}  {d['describe']}")
        if not info["dimensions"]:
            lines.append("    (none: one run of the base operation)")
        lines.append("  sample runs:")
        for smp in info.get("samples", []):
            what = [f"{k}={v}" for k, v in smp.get("labels", {}).items()]
            what += [
                f"{p}({', '.join(f'{k}={v}' for k, v in params.items())})"
                for p, params in smp.get("configuration", {}).items()
            ]
            lines.append(f"    #{smp['index']:<7} {smp['run_id']}  {'  '.join(what)}")
    else:
        lines.append(f"Variant test {info['name']!r} (id {info['test_id']})")
        lines.append(f"  base operation: {info['base_operation']}")
        lines.append(f"  total_variants: {info['total_variants']}")
        lines.append(f"  market_period:  {info['market_period'] or 'all data'}")
        for v in info["variants"]:
            changed = ", ".join(v["overrides"]) or "no overrides"
            lines.append(f"    {v['variant_name']:<24} {v['run_id']}  {changed}")
    if info.get("validated"):
        lines.append("  validation: OK (plugins, params and event chains of every distinct configuration)")
    return "\n".join(lines)
