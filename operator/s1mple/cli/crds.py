"""`s1mple crds`: regenerate crds/ (and the chart's copies) from the models, or check they are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("crds", help="regenerate the CRDs in crds/ from the pydantic models")
    p.add_argument("--root", default=".", help="repository root (default: .)")
    p.add_argument("--check", action="store_true", help="only report files that would change; exit 1 if any")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from s1mple.kube.resources import generated_files

    root = Path(args.root)
    stale = []
    for rel, text in sorted(generated_files(root).items()):
        path = root / rel
        if path.exists() and path.read_text() == text:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "out of date" if args.check else "written"
    for rel in stale:
        print(f"{verb}: {rel}", file=sys.stderr if args.check else sys.stdout)
    if not stale:
        print("CRDs are up to date")
    return 1 if (args.check and stale) else 0
