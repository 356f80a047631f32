"""The sweep service with a fake engine: resume, outputs, bayesian/random search, variant curves, fallback."""

from __future__ import annotations

import json
import os
import sys

import pandas as pd
import pytest

from s1mple.executors.sweep import LocalSweep
from s1mple.meta.planner import plan_file
from s1mple_engine.runs import read_records
from s1mple_engine.store import FileStore, StoreError

from .conftest import fake_run, write_spec
from .test_planner import MA_GRID

EXEC_LOG = "S1MPLE_TEST_FAKE_LOG"


def logging_fake(payload):
    with open(os.environ[EXEC_LOG], "a") as fh:
        fh.write(payload["run_id"] + "\n")
    return fake_run(payload)


def sweep(plan, out, **kw):
    kw.setdefault("run_fn", logging_fake)
    sweep = LocalSweep(plan, out=str(out), validator=False, warm=False, progress=False, max_workers=2, **kw)
    return sweep.run()


@pytest.fixture
def exec_log(tmp_path, monkeypatch):
    path = tmp_path / "executed.log"
    monkeypatch.setenv(EXEC_LOG, str(path))
    return path


def executed(path):
    return path.read_text().split() if path.exists() else []


def test_outputs_of_an_optimization(base_dir, exec_log):
    spec = write_spec(base_dir, MA_GRID + "  constraints: {min_trades: 60}\n")
    plan = plan_file(spec)
    out = base_dir / "out"
    o = sweep(plan, out, csv=True)
    assert o.summary.completed == 640 and o.skipped == 0
    store = FileStore(out)
    manifest = store.get_json("manifest.json")
    assert (
        manifest["total"] == 640
        and manifest["plan_id"] == plan.plan_id
        and manifest["kind"] == "optimization"
    )
    lines = store.get_bytes("manifest.jsonl").decode().splitlines()
    assert len(lines) == 640 and json.loads(lines[5])["index"] == 5
    result = store.get_json("result.json")
    assert result == json.loads(json.dumps(o.result))
    assert result["total_combinations"] == 640 and result["successful_runs"] == 640
    # fake metrics: sharpe = (slow - fast)/10, trades = 100 - (slow - fast); min_trades 60 -> gap <= 40
    best = result["best_configuration"]
    assert best["configuration"]["ma_crossover"]["slow"] - best["configuration"]["ma_crossover"]["fast"] == 40
    assert result["infeasible_runs"] == sum(1 for f in range(5, 30) for s in range(10, 69, 2) if s - f > 40)
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 640 and frame.iloc[0]["run_id"] == best["run_id"]
    assert {"ma_crossover.fast", "ma_crossover.slow", "sharpe_ratio", "feasible", "run_id", "error"} <= set(
        frame
    )
    assert len(pd.read_csv(out / "results.csv")) == 640
    assert len(set(executed(exec_log))) == 640


def test_rerun_skips_stored_results_and_gives_the_same_result(base_dir, exec_log):
    plan = plan_file(write_spec(base_dir, MA_GRID))
    out = base_dir / "out"
    first = sweep(plan, out)
    # lose part of the results, as a killed sweep would
    store = FileStore(out)
    records = read_records(store)
    for key in store.list_keys("results/"):
        store.delete(key)
    store.put_jsonl("results/partial.jsonl", records[:300])
    exec_log.write_text("")
    second = sweep(plan, out)
    assert second.skipped == 300 and second.summary.completed == 340
    ran = executed(exec_log)
    assert len(ran) == 340 and not set(ran) & {r["run_id"] for r in records[:300]}
    strip = lambda r: {k: v for k, v in r.items() if k != "timestamp"}  # noqa: E731
    assert strip(second.result) == strip(first.result)
    exec_log.write_text("")
    third = sweep(plan, out)
    assert third.summary.completed == 0 and executed(exec_log) == [] and third.skipped == 640


def test_failed_runs_are_kept_unless_retry_failed(base_dir, exec_log):
    plan = plan_file(write_spec(base_dir, MA_GRID))
    out = base_dir / "out"

    def flaky(payload):
        if payload["index"] % 100 == 0:
            return {**fake_run(payload), "status": "failed", "error": "boom", "metrics": {}}
        return logging_fake(payload)

    o = sweep(plan, out, run_fn=flaky)
    assert o.result["failed_runs"] == 7 and o.result["results"][-1]["error"] == "boom"
    exec_log.write_text("")
    again = sweep(plan, out)
    assert again.summary.completed == 0
    fixed = sweep(plan, out, retry_failed=True)
    assert fixed.summary.completed == 7 and fixed.result["failed_runs"] == 0


def test_random_search_runs_the_sample(base_dir, exec_log):
    spec = write_spec(
        base_dir,
        MA_GRID.replace(
            "  parameter_space:", "  search: {strategy: random, max_trials: 25, seed: 3}\n  parameter_space:"
        ),
    )
    plan = plan_file(spec)
    o = sweep(plan, base_dir / "out")
    assert (
        o.summary.completed == 25 and o.result["planned_runs"] == 25 and o.result["total_combinations"] == 640
    )
    assert sorted(r["index"] for r in o.result["results"]) == list(plan.planned_indices())


BAYES = MA_GRID.replace(
    "  parameter_space:", "  search: {strategy: bayesian, max_trials: 40, seed: 11}\n  parameter_space:"
)


def test_bayesian_search_is_seeded_batched_and_resumable(base_dir, exec_log):
    plan = plan_file(write_spec(base_dir, BAYES))
    switch = sys.getswitchinterval()
    a = sweep(plan, base_dir / "a")
    assert a.summary.completed == 40 and len(set(executed(exec_log))) == 40
    assert sys.getswitchinterval() == switch  # shortened while TPE fits beside the pool's loop, then restored
    ids_a = [r["run_id"] for r in a.result["results"]]
    for r in a.result["results"]:
        c = r["configuration"]["ma_crossover"]
        assert c["fast"] < c["slow"]  # parameter constraints respected
    b = sweep(plan_file(write_spec(base_dir, BAYES, "again.yaml")), base_dir / "b")
    assert [r["run_id"] for r in b.result["results"]] == ids_a  # same seed, same results: same trials
    # TPE learns: the best of 40 trials beats the median of the space (sharpe = (slow - fast) / 10)
    assert a.result["best_configuration"]["metrics"]["sharpe_ratio"] > 3.0
    # resume: nothing runs again
    exec_log.write_text("")
    c = sweep(plan, base_dir / "a")
    assert executed(exec_log) == [] and c.skipped == 40
    assert [r["run_id"] for r in c.result["results"]] == ids_a


VARIANTS = """\
variant_config:
  name: "My Variants"
  base_operation: op.yaml
  variants:
    - name: baseline
    - name: "atr exits/v2"
      overrides:
        planning_workers:
          exit_planning: [{plugin: atr_based_stops}]
"""


def fake_variant(payload):
    rec = fake_run(payload)
    rec["curves"] = {
        "equity_curve": {"index": ["2020-01-01", "2020-01-02"], "values": [100.0, 101.0]},
        "drawdown_curve": {"index": ["2020-01-01", "2020-01-02"], "values": [0.0, 0.0]},
        "monthly_returns": {"index": ["2020-01"], "values": [1.0]},
    }
    return rec


def test_variant_test_saves_curves_and_comparison(base_dir):
    plan = plan_file(write_spec(base_dir, VARIANTS))
    out = base_dir / "out"
    o = sweep(plan, out, run_fn=fake_variant)
    r = o.result
    assert r["total_variants"] == 2 and r["successful_runs"] == 2
    assert [x["variant_name"] for x in r["results"]] == ["baseline", "atr exits/v2"]
    assert set(r["comparative_analysis"]) == {
        "best_sharpe",
        "best_return",
        "lowest_drawdown",
        "most_trades",
        "most_defensive",
    }
    keys = FileStore(out).list_keys("curves/")
    assert keys == [
        "curves/atr_exits_v2.monthly.parquet",
        "curves/atr_exits_v2.parquet",
        "curves/baseline.monthly.parquet",
        "curves/baseline.parquet",
    ]
    curve = pd.read_parquet(out / "curves/baseline.parquet")
    assert list(curve.columns) == ["timestamp", "equity", "drawdown"] and list(curve["equity"]) == [
        100.0,
        101.0,
    ]
    assert r["results"][1]["curves"] == "curves/atr_exits_v2.parquet"
    # no curves inside the stored records
    assert all("curves" not in rec for rec in read_records(FileStore(out)))


def test_unreachable_store_fails_before_running(base_dir, exec_log, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    plan = plan_file(write_spec(base_dir, MA_GRID))
    with pytest.raises(StoreError, match="127.0.0.1:9"):
        LocalSweep(
            plan,
            out="s3://results/x",
            endpoint_url="http://127.0.0.1:9",
            run_fn=logging_fake,
            validator=False,
            warm=False,
            progress=False,
        ).run()
    assert executed(exec_log) == []


def test_results_kept_locally_when_the_store_fails_mid_sweep(base_dir, exec_log, monkeypatch):
    plan = plan_file(write_spec(base_dir, MA_GRID))
    monkeypatch.chdir(base_dir)

    class Flaky(FileStore):
        def put_bytes(self, key, data):
            if key.startswith("results/"):
                raise StoreError("endpoint went away")
            super().put_bytes(key, data)

    fallback = FileStore(base_dir / "local")
    s = LocalSweep(
        plan, out=str(base_dir / "remote"), run_fn=logging_fake, validator=False, warm=False, progress=False
    )
    s.store = Flaky(base_dir / "remote")
    s.fallback = fallback
    o = s.run()
    assert o.fallback and len(read_records(fallback)) == 640
    assert o.result["successful_runs"] == 640


@pytest.mark.cluster
def test_sweep_to_s3_and_resume(kube_cluster, s3_bucket, s3_client, base_dir, exec_log, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", kube_cluster.s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", kube_cluster.s3_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", kube_cluster.s3_secret_key)
    monkeypatch.setenv("AWS_REGION", kube_cluster.s3_region)
    monkeypatch.chdir(base_dir)
    plan = plan_file(write_spec(base_dir, MA_GRID))
    out = f"s3://{s3_bucket}/sweeps/ma"
    first = sweep(plan, out)
    assert first.summary.completed == 640 and first.location == f"s3://{s3_bucket}/sweeps/ma"
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {
        "sweeps/ma/manifest.json",
        "sweeps/ma/manifest.jsonl",
        "sweeps/ma/result.json",
        "sweeps/ma/results.parquet",
    } <= keys
    assert any(k.startswith("sweeps/ma/results/") and k.endswith(".jsonl") for k in keys)
    assert not (base_dir / "runs").exists()  # nothing needed the local fallback
    exec_log.write_text("")
    again = sweep(plan, out)
    assert again.skipped == 640 and executed(exec_log) == []
    assert again.result["best_configuration"] == first.result["best_configuration"]


def test_results_of_slow_runs_are_written_before_the_next_run_finishes(base_dir, monkeypatch):
    """Each finished run is stored within the flush delay even when no other run finishes meanwhile."""
    import time

    out = base_dir / "out"
    monkeypatch.setenv("S1MPLE_TEST_OUT", str(out))

    def slow(payload):
        stored = len(read_records(FileStore(os.environ["S1MPLE_TEST_OUT"])))
        time.sleep(0.8)  # margin for a loaded 2-core machine; the flush delay is 0.1 s
        rec = fake_run(payload)
        rec["metrics"]["stored_before"] = stored
        return rec

    spec = write_spec(
        base_dir,
        MA_GRID.replace("fast: {start: 5, end: 29, step: 1}", "fast: {values: [5]}").replace(
            "slow: {start: 10, end: 68, step: 2}", "slow: {start: 10, end: 16, step: 1}"
        ),
    )
    plan = plan_file(spec)
    o = LocalSweep(
        plan,
        out=str(out),
        run_fn=slow,
        validator=False,
        warm=False,
        progress=False,
        max_workers=1,
        flush_delay=0.1,
    ).run()
    seen = [r["metrics"]["stored_before"] for r in sorted(o.result["results"], key=lambda r: r["index"])]
    # one worker runs them in order: when run k starts, runs 0..k-2 are stored (k-1 may be in flight)
    assert all(n >= k - 1 for k, n in enumerate(seen)), seen


def test_variants_resolving_to_the_same_backtest_run_once_and_share_curves(base_dir, exec_log):
    spec = write_spec(
        base_dir,
        VARIANTS
        + """\
    - name: same_as_baseline
      overrides:
        operator_overrides:
          OpportunityOperator: {execution_strategy: PARALLEL}
""",
    )
    plan = plan_file(spec)
    o = sweep(plan, base_dir / "out", run_fn=fake_variant)
    assert o.summary.completed == 2
    by_name = {r["variant_name"]: r for r in o.result["results"]}
    assert by_name["same_as_baseline"]["run_id"] == by_name["baseline"]["run_id"]
    assert by_name["same_as_baseline"]["status"] == "ok"
    assert by_name["same_as_baseline"]["curves"] == by_name["baseline"]["curves"] == "curves/baseline.parquet"
