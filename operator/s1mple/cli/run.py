"""`s1mple run OPERATION.yaml`: one backtest, printed as a readable summary or as JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run one backtest of an operation.yaml and print its summary (or the full result as JSON)",
        description="Run one backtest. Errors (bad config, data, unknown plugin/param) exit with code 2.",
    )
    p.add_argument("operation", help="path to an operation.yaml (top-level key 'operation')")
    p.add_argument(
        "--data", metavar="PATH", help="market data (CSV, Parquet or sample:NAME) instead of market_data.path"
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PLUGIN.PARAM=VALUE",
        help="override a worker param (VALUE is YAML: 12, 0.5, true, [a, b]); also operation.FIELD=VALUE "
        "for cash, commission, slippage, fill_at; repeatable",
    )
    p.add_argument("--link", type=int, default=0, metavar="N", help="which strategy link to run (default 0)")
    p.add_argument("--json", action="store_true", help="print the whole BacktestResult as JSON")
    p.add_argument(
        "--report",
        metavar="PATH",
        help="also write the backtest's report (price with entries and exits, equity, trades...) as HTML",
    )
    p.set_defaults(func=run)


OPERATION_FIELDS = ("cash", "commission", "slippage", "fill_at")


def apply_sets(operation: Any, blueprint: Any, sets: list[str]) -> tuple[Any, Any]:
    """Apply ``--set`` overrides (values parsed with yaml.safe_load, never eval)."""
    import yaml

    from s1mple_engine.config import ConfigError, parse_model, suggest
    from s1mple_engine.registry import find_plugin

    blueprint = blueprint.model_copy(deep=True)
    op_updates: dict[str, Any] = {}
    workers = [w for _, _, w in blueprint.workers()]
    names = sorted({w.plugin for w in workers})
    for item in sets:
        key, sep, raw = item.partition("=")
        plugin, dot, param = key.strip().partition(".")
        if not sep or not dot or not plugin or not param:
            raise ConfigError(f"--set {item!r}: expected PLUGIN.PARAM=VALUE (e.g. ma_crossover.fast=12)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: VALUE is not valid YAML ({exc})") from None
        if plugin == "operation":
            if param not in OPERATION_FIELDS:
                raise ConfigError(
                    f"--set {item!r}: unknown operation field {param!r}{suggest(param, OPERATION_FIELDS)}"
                )
            op_updates[param] = value
            continue
        targets = [w for w in workers if w.plugin == plugin]
        if not targets:
            raise ConfigError(
                f"--set {item!r}: no worker uses plugin {plugin!r} in blueprint {blueprint.name!r}"
                f"{suggest(plugin, names + ['operation'])}"
            )
        cls = find_plugin(plugin)
        if cls is not None and param not in cls.Params.model_fields:
            raise ConfigError(
                f"--set {item!r}: {plugin} has no param {param!r}{suggest(param, cls.Params.model_fields)}"
            )
        for w in targets:
            w.params[param] = value
    if op_updates:
        from s1mple_engine.config import Operation

        data = operation.model_dump()
        data.update(op_updates)
        operation = parse_model(data, Operation, source="--set operation")
    return operation, blueprint


def run(args: argparse.Namespace) -> int:
    from s1mple_engine.backtest import operation_blueprint, run_backtest
    from s1mple_engine.config import ConfigError, load_operation

    try:
        op = load_operation(args.operation)
        if args.data:
            path = args.data if args.data.startswith(("sample:", "s3://")) else os.path.abspath(args.data)
            op = op.model_copy(update={"market_data": op.market_data.model_copy(update={"path": path})})
        if not 0 <= args.link < len(op.strategy_links):
            raise ConfigError(
                f"--link {args.link}: the operation has {len(op.strategy_links)} strategy link(s)"
            )
        bp = operation_blueprint(op, args.link)
        op, bp = apply_sets(op, bp, args.sets)
        result = run_backtest(op, bp, curves=args.json or bool(args.report))
    except ConfigError as exc:
        print(f"s1mple run: error: {exc}", file=sys.stderr)
        return 2
    if args.report:
        write_backtest_report(op, result, args.report)
    if args.json:
        sys.stdout.write(result.to_json() + "\n")
    else:
        sys.stdout.write(format_summary(result) + "\n")
    return 0


def write_backtest_report(op: Any, result: Any, path: str) -> None:
    from s1mple.meta.report import backtest_report
    from s1mple_engine.data import load_market_data

    bars = load_market_data(op.market_data, op.period)  # cached: the data the backtest just ran on
    with open(path, "wb") as fh:
        fh.write(backtest_report(result, bars))
    print(f"report: {path}", file=sys.stderr)


_UNITS = {
    "total_return": "%",
    "max_drawdown": "%",
    "win_rate": "%",
    "exposure": "%",
    "avg_trade_duration": "bars",
}


def format_summary(result: Any) -> str:
    m = result.metrics.model_dump()
    c = result.causality
    lines = [
        f"{result.operation} | strategy {result.strategy} | {result.symbol} "
        f"{result.start[:10]} .. {result.end[:10]} ({result.bars} bars) | cash {result.initial_cash:,.2f}",
        "",
        "metrics",
    ]
    for k, v in m.items():
        val = f"{v:,.2f}" if k == "final_equity" else (f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append(f"  {k:<22} {val} {_UNITS.get(k, '')}".rstrip())
    lines += [
        "",
        "causality",
        f"  {'opportunities_detected':<22} {c.opportunities_detected}",
        f"  {'opportunities_rejected':<22} {c.opportunities_rejected}",
        f"  {'opportunities_skipped':<22} {c.opportunities_skipped}",
        f"  {'threats_detected':<22} {c.threats_detected}",
    ]
    if c.top_rejection_reasons:
        reasons = ", ".join(f"{r.threat_type} x{r.count}" for r in c.top_rejection_reasons)
        lines.append(f"  {'top_rejection_reasons':<22} {reasons}")
    if c.skip_reasons:
        lines.append(f"  {'skip_reasons':<22} " + ", ".join(f"{r.reason} x{r.count}" for r in c.skip_reasons))
    return "\n".join(lines)
