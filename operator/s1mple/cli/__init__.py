"""The ``s1mple`` command line: an argparse dispatcher over subcommand modules.

Each module in :data:`MODULES` has ``register(subparsers)`` which adds its subparser and sets
``func(args) -> int``.  Modules import heavy dependencies (pandas, optuna, kopf) inside their commands,
so ``s1mple run`` starts fast.  A ``ConfigError`` escaping a command is printed to stderr (no
traceback) with exit code 2.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

MODULES = (
    "run",
    "plugins",
    "plan",
    "optimize",
    "variant_test",
    "report",
    "explore",
    "crds",
    "run_operator",
    "results",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s1mple", description="Trading-strategy research: backtests, sweeps, variants."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    gc.disable()  # start-up: the imports' objects live to the end; collecting among them frees nothing
    try:
        args = build_parser().parse_args(argv)
        from s1mple_engine.config import ConfigError
    finally:
        gc.enable()

    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"s1mple {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def console() -> None:
    """The ``s1mple`` console script: :func:`main`, then a clean process exit (see
    ``s1mple_engine.process_exit``: no native teardown can turn a finished command into exit 134)."""
    from s1mple_engine.process_exit import console as run_console

    run_console(main)


if __name__ == "__main__":
    console()
