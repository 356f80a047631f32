"""`s1mple plan/optimize/variant-test` as real commands, with the real engine on the sample data; and
recovery after a sweep killed with SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from s1mple_engine.runs import EXECUTION_LOG_ENV, read_records
from s1mple_engine.store import FileStore

ROOT = Path(__file__).resolve().parents[2]
S1MPLE = shutil.which("s1mple", path=str(Path(sys.executable).parent)) or "s1mple"


def s1mple(*args, cwd=ROOT, env=None, timeout=300):
    return subprocess.run(
        [S1MPLE, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


OP = "config/operations/ma_crossover.yaml"
HEAD = (
    f"optimization_config:\n  name: x\n  base_operation: {OP}\n  parameter_space:\n"
    "    - worker_category: opportunity_workers\n      worker_plugin: ma_crossover\n"
)


def test_plan_prints_counts_dimensions_samples():
    r = s1mple("plan", "config/optimizations/ma_crossover_grid.yaml")
    assert r.returncode == 0, r.stderr
    assert "total_combinations: 640" in r.stdout and "750 before parameter constraints" in r.stdout
    assert "ma_crossover.fast & ma_crossover.slow" in r.stdout and "validation: OK" in r.stdout
    j = json.loads(s1mple("plan", "config/optimizations/ma_crossover_grid.yaml", "--json").stdout)
    assert j["total_combinations"] == 640 and len(j["samples"]) == 3
    v = json.loads(s1mple("plan", "config/variants/ma_crossover_variants.yaml", "--json").stdout)
    assert v["total_variants"] == 6 and v["variants"][0]["variant_name"] == "baseline"


@pytest.mark.parametrize(
    "body,needle",
    [
        (
            "optimization_config: {name: x, base_operation: " + OP + ", paramter_space: []}",
            "parameter_space",
        ),
        (
            HEAD + "      parameters: {fast: {start: 1, end: 9}}\n"
            "  parameter_constraints: [ma_crossover.fats < 3]\n",
            "ma_crossover.fast",
        ),
        (
            HEAD + "      parameters: {fast: {start: 1, end: 1000}, slow: {start: 1, end: 1000}}\n",
            "above the cap",
        ),
        (
            HEAD + "      parameters: {fast: {values: [30]}, slow: {values: [20]}}\n",
            "fast (30) must be smaller than slow (20)",
        ),
        ("optimization_config:\n  name: x\n  base_operation: config/operations/nope.yaml\n", "not found"),
        (
            "variant_config: {name: v, base_operation: " + OP + ", variants: [{name: a}]}",
            "variant test",
        ),
        ("optimization_config: [", "invalid YAML"),
    ],
)
def test_config_errors_exit_2_without_traceback(tmp_path, body, needle):
    spec = tmp_path / "bad.yaml"
    spec.write_text(body)
    for cmd in (("optimize",), ("plan",)) if "variant test" not in needle else (("optimize",),):
        r = s1mple(
            *cmd,
            spec,
            "--out" if cmd == ("optimize",) else "--json",
            *((tmp_path / "o",) if cmd == ("optimize",) else ()),
        )
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and needle in r.stderr, r.stderr
    assert not (tmp_path / "o" / "results").exists()


def test_optimize_runs_the_example_and_prints_the_top_table(tmp_path):
    r = s1mple(
        "optimize",
        "config/optimizations/ma_crossover_grid.yaml",
        "--out",
        tmp_path / "o",
        "--max-workers",
        2,
        "--csv",
        "--top",
        5,
    )
    assert r.returncode == 0, r.stderr
    assert "640 combinations, 640 with results" in r.stdout and "Top 5 by sharpe_ratio" in r.stdout
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    frame = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert len(frame) == 640 and (tmp_path / "o" / "results.csv").exists()
    best = result["best_configuration"]
    assert frame.iloc[0]["run_id"] == best["run_id"]
    # feasible first, sorted by the primary metric
    feasible = frame[frame["feasible"]]
    assert list(feasible["sharpe_ratio"]) == sorted(feasible["sharpe_ratio"], reverse=True)
    assert frame["feasible"].tolist() == sorted(frame["feasible"].tolist(), reverse=True)
    # under the table: DSR, PBO and a verdict in plain words, the numbers of result.json's validation
    v = result["validation"]
    assert f"deflated Sharpe ratio: {v['deflated_sharpe']['dsr']:.3f}" in r.stdout
    assert f"probability of backtest overfitting: {v['pbo']['pbo']:.3f} (12,870 CSCV splits" in r.stdout
    assert f"verdict: {v['verdict']}" in r.stdout
    assert v["deflated_sharpe"]["trials"] == 640 and v["pbo"]["runs"] == result["feasible_runs"]
    # every run's PSR, and the block sums PBO is computed from, are columns of the table
    assert frame["psr"].between(0, 1).all() and frame["block_sum"].map(len).eq(16).all()


def test_quiet_prints_nothing_but_the_results_are_written(tmp_path):
    """--quiet: no table, no progress, no "resuming" note; with --json the JSON alone."""
    spec = "config/variants/ma_crossover_variants.yaml"
    for attempt in ("first", "resumed"):
        r = s1mple("variant-test", spec, "--out", tmp_path / "v", "--quiet")
        assert r.returncode == 0, r.stderr
        assert (r.stdout, r.stderr) == ("", ""), attempt
    assert json.loads((tmp_path / "v" / "result.json").read_text())["successful_runs"] == 6
    assert (tmp_path / "v" / "report.html").stat().st_size > 0
    r = s1mple("variant-test", spec, "--out", tmp_path / "v", "--quiet", "--json")
    assert r.returncode == 0 and r.stderr == ""
    assert json.loads(r.stdout)["successful_runs"] == 6


def test_data_flag_swaps_the_market_data(tmp_path):
    from backtesting.test import GOOG

    csv = tmp_path / "goog.csv"
    GOOG.to_csv(csv, index_label="Date")
    r = s1mple(
        "variant-test",
        "config/variants/ma_crossover_variants.yaml",
        "--out",
        tmp_path / "v",
        "--data",
        csv,
        "--json",
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["successful_runs"] == 6
    # every variant is tested against the first (the baseline) on the same bars
    assert result["comparative_analysis"]["baseline"] == "baseline"
    tested = result["significance"]["variants"]
    assert sorted(tested) == sorted(v["variant_name"] for v in result["results"][1:])
    assert all(t["bars"] == 2148 and 0 < t["sharpe"]["p_value"] <= 1 for t in tested.values())
    manifest = FileStore(tmp_path / "v").get_bytes("manifest.jsonl").decode().splitlines()
    assert json.loads(manifest[0])["operation"]["market_data"]["path"] == str(csv)
    curves = pd.read_parquet(tmp_path / "v" / "curves" / "baseline.parquet")
    assert curves["timestamp"].iloc[0].startswith("2004-08-19")


KILL_SPEC = """\
optimization_config:
  name: kill me
  base_operation: {root}/config/operations/ma_crossover.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: 2, end: 60}}
        slow: {{start: 3, end: 130}}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
  max_combinations: 10000
"""


def executions(log: Path) -> Counter:
    """run_id -> how many times it was executed (the engine's execution log: "<run_id> <pid>" lines)."""
    return Counter(line.split()[0] for line in log.read_text().splitlines() if line.strip())


def test_recovery_after_a_killed_sweep(tmp_path):
    spec = tmp_path / "kill.yaml"
    spec.write_text(KILL_SPEC.format(root=ROOT))
    log = tmp_path / "executed.log"
    out = tmp_path / "out"
    env = {**os.environ, EXECUTION_LOG_ENV: str(log)}
    total = sum(1 for f in range(2, 61) for s in range(3, 131) if f < s)
    cmd = [S1MPLE, "optimize", str(spec), "--out", str(out), "--max-workers", "2", "--quiet"]
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        parts = list((out / "results").glob("*.jsonl")) if (out / "results").exists() else []
        if len(parts) >= 2:
            break
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()}"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-sweep
    proc.wait()
    time.sleep(0.2)
    stored = {r["run_id"] for r in read_records(FileStore(out))}
    first = executions(log)
    assert 0 < len(stored) < total, "kill it mid-way: some but not all results"
    assert stored <= set(first)

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    counts = executions(log)
    second = counts - first
    assert not set(second) & stored, "a run with a stored result ran again"
    assert all(n == 1 for n in second.values())
    assert all(counts[rid] == 1 for rid in stored)
    assert max(counts.values()) <= 2  # only runs in flight at the kill ran twice
    assert len(counts) == total

    resumed = json.loads((out / "result.json").read_text())
    clean_out = tmp_path / "clean"
    r = subprocess.run(
        [S1MPLE, "optimize", str(spec), "--out", str(clean_out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    clean = json.loads((clean_out / "result.json").read_text())
    assert resumed["successful_runs"] == clean["successful_runs"] == total
    strip = lambda res: [(x["run_id"], x["rank"], x["metrics"]) for x in res["results"]]  # noqa: E731
    assert strip(resumed) == strip(clean)
    assert resumed["best_configuration"] == clean["best_configuration"]
