"""`s1mple run` and `s1mple plugins` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OP = str(ROOT / "config/operations/ma_crossover.yaml")
EXE = str(Path(sys.executable).with_name("s1mple"))


def s1mple(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_run_summary_and_json():
    text = s1mple("run", OP)
    assert text.returncode == 0, text.stderr
    assert "total_return" in text.stdout and "opportunities_detected" in text.stdout
    out = s1mple("run", OP, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["metrics"]) >= {
        "sharpe_ratio",
        "sortino_ratio",
        "total_return",
        "max_drawdown",
        "win_rate",
        "total_trades",
        "avg_trade_duration",
        "profit_factor",
        "exposure",
        "calmar_ratio",
    }
    assert set(result["causality"]) >= {
        "opportunities_detected",
        "opportunities_rejected",
        "threats_detected",
        "top_rejection_reasons",
    }
    assert len(result["equity_curve"]["values"]) == result["bars"] == 2520
    trade = result["trades"][0]
    assert set(trade) >= {
        "opportunity_id",
        "side",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "size",
        "pnl",
        "return_pct",
        "exit_reason",
    }
    assert trade["opportunity_id"].startswith("OPP-")


def test_run_from_another_directory_and_set(tmp_path):
    base = json.loads(s1mple("run", OP, "--json").stdout)
    out = s1mple(
        "run", OP, "--json", "--set", "ma_crossover.fast=5", "--set", "operation.commission=0", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    changed = json.loads(out.stdout)
    assert changed["metrics"]["total_trades"] != base["metrics"]["total_trades"]
    assert all(f["commission"] == 0 for f in changed["fills"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "ma_crossover.fst=5"], "ma_crossover has no param 'fst'; did you mean 'fast'?"),
        (["--set", "ma_crosover.fast=5"], "no worker uses plugin 'ma_crosover'"),
        (["--set", "ma_crossover.fast=__import__('os')"], "Input should be a valid integer"),
        (["--set", "ma_crossover.fast"], "expected PLUGIN.PARAM=VALUE"),
        (["--set", "ma_crossover.slow=5"], "fast (10) must be smaller than slow (5)"),
        (["--data", "sample:nope"], "unknown sample 'nope'"),
        (["--data", "/nonexistent.csv"], "file not found"),
    ],
)
def test_run_errors_exit_2_without_traceback(args, message):
    out = s1mple("run", OP, *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_run_bad_operation_file(tmp_path):
    bad = tmp_path / "op.yaml"
    bad.write_text(
        "operation:\n  strategy_links: [x.yaml]\n  market_data: {path: sample:synthetic_daily}\n  cahs: 1\n"
    )
    out = s1mple("run", str(bad))
    assert out.returncode == 2 and "cahs: unknown key; did you mean 'cash'?" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_with_csv_data(tmp_path):
    import backtesting

    goog = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
    out = s1mple("run", OP, "--json", "--data", str(goog))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metrics"]["total_trades"] == 94


def test_plugins_json():
    out = s1mple("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    fvg = plugins["fvg_entry_detector"]
    assert set(fvg) >= {
        "name",
        "category",
        "subtype",
        "params",
        "capabilities",
        "triggers",
        "publishes",
        "listens",
    }
    assert fvg["params"]["min_gap_size"]["bounds"] == {"ge": 0, "le": 10000}
    assert plugins["max_drawdown_monitor"]["triggers"] == ["on_ledger_update"]
    assert plugins["emergency_exit_agent"]["capabilities"] == ["events"]
    text = s1mple("plugins")
    assert text.returncode == 0 and "ma_crossover" in text.stdout
