"""Results unchanged: every example sweep and operation gives the metrics it gave before the speed work.

The golden file ``tests/golden/example_metrics.json`` holds, for every example in
config/optimizations, config/variants and config/operations, each run's numeric results keyed by what
the run IS (its configuration, worker choices and labels; a variant by its name; an operation by its
strategy link), not by run_id (the run_id contains the engine's code fingerprint, which changes with
every engine edit).  Per run: every metric, the causality counters, and the per-bar return summary
(bars, Sharpe, skewness, kurtosis) the validation statistics are built from; per optimization also the
numbers of result.json's ``validation`` (deflated Sharpe, PBO).  The test re-runs the examples with
today's code and asserts every number equals the golden to 1e-9 relative (integers exactly).

How the golden was produced: commit fe82313 of main (before the speed work of issue 16), with

    .venv/bin/python -m tests.meta.test_results_unchanged --write

Regenerate it the same way, deliberately, only when a change is MEANT to change results (a bug fix in
a metric, a new plugin default), and say so in the commit message: the diff of the golden file shows
which numbers moved.  A speed-up must never need it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "example_metrics.json"
REL = 1e-9
ABS = 1e-12  # for values that are zero up to rounding (a flat return, a zero drawdown)

SWEEPS = sorted((ROOT / "config" / "optimizations").glob("*.yaml")) + sorted(
    (ROOT / "config" / "variants").glob("*.yaml")
)
OPERATIONS = sorted((ROOT / "config" / "operations").glob("*.yaml"))
# examples too slow to run whole in CI (448 ICT runs on 10,000 bars take ~40 s on 2 cores): every n-th run
SAMPLED = {"optimizations/comprehensive_ict_optimization.yaml": 16}


def _numbers(d: dict[str, Any] | None) -> dict[str, Any]:
    """The numeric (and None) entries of a flat dict, recursing into nested dicts with dotted keys."""
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        if isinstance(v, int | float) or v is None:  # bool is an int
            out[k] = v
        elif isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in _numbers(v).items()})
    return out


def run_numbers(record: dict[str, Any]) -> dict[str, Any]:
    """What the golden keeps of one run record (see the module docstring)."""
    returns = {k: v for k, v in (record.get("returns") or {}).items() if k != "blocks"}
    return {
        "status": record.get("status"),
        **{f"metrics.{k}": v for k, v in _numbers(record.get("metrics")).items()},
        **{f"causality.{k}": v for k, v in _numbers(record.get("causality")).items()},
        **{f"returns.{k}": v for k, v in _numbers(returns).items()},
    }


def run_key(record: dict[str, Any]) -> str:
    """A run's identity without the engine fingerprint: its name (variants) or configuration + labels."""
    if record.get("kind") == "variant_test":
        return f"variant:{record.get('name')}"
    ident = {
        "configuration": record.get("configuration") or {},
        "labels": record.get("labels") or {},
        "window": record.get("window"),
    }
    return json.dumps(ident, sort_keys=True, separators=(",", ":"))


def sweep_numbers(path: Path, out_dir: Path) -> dict[str, Any]:
    """Run one example sweep on the real engine: the whole sweep through the local pool, as `s1mple
    optimize` does, or (a large, slow example: :data:`SAMPLED`) every n-th planned run in this process."""
    from s1mple.executors.local import execute_payload
    from s1mple.executors.sweep import LocalSweep
    from s1mple.meta.aggregation import latest_by_run_id
    from s1mple.meta.planner import plan_file
    from s1mple_engine.runs import read_records

    plan = plan_file(path)
    entry: dict[str, Any] = {}
    stride = SAMPLED.get(f"{path.parent.name}/{path.name}")
    if stride:
        records = [execute_payload(plan.payload(i)) for i in range(0, plan.total, stride)]
        entry["sampled"] = f"every {stride}th of {plan.total} planned runs"
    else:
        sweep = LocalSweep(plan, out=str(out_dir), progress=False, max_workers=2)
        sweep.write_report = lambda *_: None  # the report is not a result; skip its rendering
        outcome = sweep.run()
        records = list(latest_by_run_id(read_records(sweep.store)).values())
        validation = outcome.result.get("validation")
        if validation:
            entry["validation"] = _numbers(validation)
    runs: dict[str, Any] = {}
    for rec in records:
        key = run_key(rec)
        assert key not in runs, f"{path.name}: two runs share the identity {key}"
        runs[key] = run_numbers(rec)
    entry["runs"] = dict(sorted(runs.items()))
    return entry


def operation_numbers(path: Path) -> dict[str, Any]:
    """Every strategy link of one example operation, as `s1mple run` runs it."""
    from s1mple_engine.backtest import operation_blueprint, run_backtest
    from s1mple_engine.config import load_operation

    op = load_operation(path)
    runs = {}
    for link in range(len(op.strategy_links)):
        result = run_backtest(op, operation_blueprint(op, link))
        runs[f"link:{link}"] = {
            "bars": result.bars,
            **{f"metrics.{k}": v for k, v in _numbers(result.metrics.model_dump()).items()},
            **{f"causality.{k}": v for k, v in _numbers(result.causality.model_dump()).items()},
        }
    return {"runs": runs}


EXAMPLES = {f"{p.parent.name}/{p.name}": p for p in SWEEPS + OPERATIONS}


def example_numbers(name: str, tmp: Path) -> dict[str, Any]:
    """One example's entry of the golden, computed with the code checked out now (cwd: the repo root)."""
    path = EXAMPLES[name]
    if path.parent.name == "operations":
        return operation_numbers(path)
    return sweep_numbers(path, tmp / path.stem)


def differences(golden: Any, now: Any, where: str = "") -> list[str]:
    """Human-readable mismatches: a number off by more than 1e-9 relative, a key missing or new."""
    if isinstance(golden, dict) and isinstance(now, dict):
        diffs = []
        for k in sorted(set(golden) | set(now)):
            if k not in now:
                diffs.append(f"{where}{k}: missing now (golden {str(golden[k])[:80]})")
            elif k not in golden:
                diffs.append(f"{where}{k}: new (not in the golden: {str(now[k])[:80]})")
            else:
                diffs += differences(golden[k], now[k], f"{where}{k} / ")
        return diffs
    same = golden == now
    if not same and isinstance(golden, int | float) and isinstance(now, int | float):
        exact = isinstance(golden, bool) or isinstance(now, bool)  # True == 1.0, and ints must match exactly
        if exact or (isinstance(golden, int) and isinstance(now, int)):
            same = False
        elif math.isnan(golden) and math.isnan(now):
            same = True
        else:
            same = math.isclose(golden, now, rel_tol=REL, abs_tol=ABS)
    return [] if same else [f"{where.rstrip(' /')}: golden {golden!r}, now {now!r}"]


def dump_golden(examples: dict[str, Any], commit: str) -> str:
    """JSON with one line per run (a readable diff when a number moves); a run is its list of values in
    the order of its example's ``fields``."""
    lines = [
        "{",
        '"produced_by": "python -m tests.meta.test_results_unchanged --write",',
        f'"commit": {json.dumps(commit)},',
        '"examples": {',
    ]
    for n, (name, entry) in enumerate(examples.items()):
        fields = sorted({f for values in entry["runs"].values() for f in values})
        lines.append(f"{json.dumps(name)}: {{")
        for k in ("sampled", "validation"):
            if k in entry:
                lines.append(f'"{k}": {json.dumps(entry[k], sort_keys=True)},')
        lines.append(f'"fields": {json.dumps(fields)},')
        lines.append('"runs": {')
        rows = [
            f"{json.dumps(key)}: {json.dumps([values.get(f) for f in fields])}"
            for key, values in entry["runs"].items()
        ]
        lines.append(",\n".join(rows))
        lines.append("}}" + ("," if n < len(examples) - 1 else ""))
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def parse_golden(text: str) -> dict[str, Any]:
    """The golden file's content with each run back as {field: value}."""
    doc = json.loads(text)
    for entry in doc["examples"].values():
        fields = entry.pop("fields")
        entry["runs"] = {k: dict(zip(fields, row, strict=True)) for k, row in entry["runs"].items()}
    return doc


@functools.cache
def _golden() -> dict[str, Any]:
    return parse_golden(GOLDEN.read_text())["examples"]


def test_golden_covers_every_example():
    assert set(_golden()) == set(EXAMPLES), "an example was added or removed: regenerate the golden"
    assert len(_golden()["optimizations/ma_crossover_grid.yaml"]["runs"]) == 640


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_metrics_unchanged(name, tmp_path, monkeypatch):
    """Every metric of every run of the example equals the golden (fe82313) to 1e-9 relative."""
    monkeypatch.chdir(ROOT)
    now = parse_golden(dump_golden({name: example_numbers(name, tmp_path)}, ""))["examples"][name]
    diffs = differences(_golden()[name], now)
    assert not diffs, f"{len(diffs)} numbers differ from {GOLDEN.name}:\n" + "\n".join(diffs[:40])


def test_the_comparison_catches_a_change():
    """The comparison is strict enough: a change in the 10th significant digit is reported."""
    golden = {"a": {"runs": {"x": {"metrics.sharpe_ratio": 0.123456789, "metrics.total_trades": 10}}}}
    assert differences(golden, json.loads(json.dumps(golden))) == []
    moved = {"a": {"runs": {"x": {"metrics.sharpe_ratio": 0.1234568, "metrics.total_trades": 10}}}}
    assert differences(golden, moved) == [
        "a / runs / x / metrics.sharpe_ratio: golden 0.123456789, now 0.1234568"
    ]
    assert differences(golden, {"a": {"runs": {}}}) != []


def main(argv: list[str]) -> int:
    import subprocess
    import tempfile

    if argv != ["--write"]:
        print(__doc__)
        return 2
    os.chdir(ROOT)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        examples = {name: example_numbers(name, Path(tmp)) for name in sorted(EXAMPLES)}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(dump_golden(examples, commit))
    runs = sum(len(e["runs"]) for e in examples.values())
    print(f"wrote {GOLDEN.relative_to(ROOT)}: {len(examples)} examples, {runs} runs (commit {commit})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
