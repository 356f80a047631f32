"""`s1mple-runner` stopped by SIGTERM mid-chunk (a deleted or evicted pod), as a real process.

It must keep what finished and exit 4 (the Job's podFailurePolicy retries the index without counting it);
the retried index runs only what is missing.  The same on a cluster: test_faults_cluster.py."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from s1mple.meta.models import OptimizationConfig
from s1mple.meta.planner import OptimizationPlan, load_base_operation
from s1mple_engine import chunks
from s1mple_engine.runner import EXIT_INTERRUPTED, EXIT_OK
from s1mple_engine.runs import RESULTS_PREFIX, read_records
from s1mple_engine.store import FileStore
from tests.operator import flaky_plugin  # noqa: F401 - registers slow_crossover here too, whatever ran first
from tests.operator.test_faults_cluster import PLUGIN_ENV, SLOW_SPACE, slow_operation

ROOT = Path(__file__).resolve().parents[2]


def _stored(store: FileStore) -> set[str]:
    return {r["run_id"] for r in read_records(store, prefix=RESULTS_PREFIX)}


def test_sigterm_mid_chunk_keeps_what_finished_and_exits_4(tmp_path, monkeypatch):
    for k, v in PLUGIN_ENV.items():
        monkeypatch.setenv(k, v)
    op_path = tmp_path / "op.yaml"
    op_path.write_text(yaml.safe_dump({"operation": slow_operation(0.4)}))
    config = OptimizationConfig.model_validate(
        {"name": "slow", "baseOperation": str(op_path), "parameterSpace": SLOW_SPACE}
    )
    plan = OptimizationPlan(config, load_base_operation(str(op_path), None, None))
    store = FileStore(tmp_path / "store")
    writer = chunks.ChunkWriter(store, plan.plan_id)
    run_ids = []
    for payload in plan.payloads():
        run_ids.append(payload["run_id"])
        writer.add(payload)
    writer.flush()
    store.put_json(
        chunks.manifest_key(plan.plan_id), {"cluster": chunks.Layout(len(run_ids), len(run_ids)).as_dict()}
    )

    argv = [
        str(Path(sys.executable).parent / "s1mple-runner"),
        "--store",
        str(store.root),
        "--plan",
        plan.plan_id,
        "--index",
        "0",
    ]
    env = {**os.environ, **PLUGIN_ENV}
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _stored(store) and time.monotonic() < deadline:  # a first batch is stored: mid-chunk
        time.sleep(0.1)
    assert _stored(store), "no batch stored"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    first = _stored(store)
    assert 0 < len(first) < len(run_ids)  # stopped mid-chunk, and what finished before it is kept

    retry = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert retry.returncode == EXIT_OK, retry.stderr
    assert f"{len(first)} already stored" in retry.stderr  # the retry skips them
    assert _stored(store) == set(run_ids)
