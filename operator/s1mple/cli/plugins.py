"""`s1mple plugins [--json]`: the registered worker plugins, their params, capabilities and events."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plugins", help="list the registered worker plugins and their params")
    p.add_argument("--json", action="store_true", help="machine-readable: one object per plugin")
    p.add_argument(
        "--category",
        choices=("context", "opportunity", "threat", "planning", "execution"),
        help="only this worker category",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from s1mple_engine.registry import all_plugins, describe

    plugins = [
        describe(c) for c in all_plugins().values() if not args.category or c.category == args.category
    ]
    if args.json:
        json.dump(plugins, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    order = {c: i for i, c in enumerate(("context", "opportunity", "threat", "planning", "execution"))}
    plugins.sort(key=lambda d: (order[d["category"]], d["phase"] or "", d["name"]))
    current = None
    for d in plugins:
        head = d["category"] + (f" / {d['phase']}" if d["phase"] else "")
        if head != current:
            print(f"\n{head}")
            current = head
        events = ""
        if d["capabilities"]:
            trig = ",".join(d["default_triggers"]) or "-"
            events = f"  [EventDrivenWorker triggers={trig} allowed={','.join(d['triggers']) or '-'}"
            events += f" publishes={','.join(d['publishes']) or '-'}]"
        print(f"  {d['name']:<28} {d['subtype']:<18} {d['description'][:90]}{events}")
        for pname, p in d["params"].items():
            bounds = " ".join(f"{k}={v}" for k, v in p["bounds"].items())
            default = f"default={p['default']!r}"
            print(f"      {pname:<28} {p['type']:<16} {default:<18} {bounds:<18} {p['description']}")
    return 0
