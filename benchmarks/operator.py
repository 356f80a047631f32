"""Benchmark: a 10,000-run Optimization through the operator vs the same sweep locally.

Prints the wall time of each (apply -> Succeeded on the cluster; `s1mple optimize` locally, both with 2
workers on this machine), their ratio (target <= 1.3x), the status size, and the operator's peak memory
(target < 300 MB). Starts its own test cluster (tests/cluster; binaries from `tests/cluster/build`), or
uses a running one: S1MPLE_CLUSTER_REUSE=/tmp/s1mple-cluster.

    python benchmarks/operator.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import yaml  # noqa: E402

from tests.cluster import cluster as test_cluster  # noqa: E402
from tests.cluster.fixtures import KubeCluster  # noqa: E402
from tests.operator.harness import OperatorProcess, kubectl_apply, storage_secret, wait_for_phase  # noqa: E402

WORKERS = 2


def space(runs: int) -> dict:
    """fast x slow grid of ``runs`` combinations (fast < slow always holds)."""
    side = int(round(runs**0.5))
    return {
        "fast": {"values": list(range(5, 5 + side))},
        "slow": {"start": 200, "end": 200 + 2 * (runs // side - 1), "step": 2},
    }


def research_spec(runs: int) -> dict:
    return {
        "baseOperation": "config/operations/ma_crossover.yaml",
        "parameterSpace": [
            {
                "workerCategory": "opportunity_workers",
                "workerPlugin": "ma_crossover",
                "parameters": space(runs),
            }
        ],
        "optimizationTargets": {"primaryMetric": "sharpe_ratio"},
        "parallelConfig": {"maxWorkers": WORKERS, "timeoutPerRun": 60},
    }


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_local(runs: int, work: Path) -> tuple[float, dict]:
    spec = {"name": "bench-local", **research_spec(runs)}
    spec["baseOperation"] = str(ROOT / spec["baseOperation"])
    path = work / "local.yaml"
    path.write_text(yaml.safe_dump({"optimization_config": spec}))
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "s1mple"),
            "optimize",
            str(path),
            "--out",
            str(work / "local"),
            "--max-workers",
            str(WORKERS),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0, json.loads((work / "local" / "result.json").read_text())


def run_cluster(kc: KubeCluster, runs: int, work: Path) -> tuple[float, dict, float]:
    ns = "bench"
    kc.kubectl("create", "namespace", ns, check=False)
    kc.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kc.kubectl("wait", "--for=condition=Established", "crd/optimizations.s1mple.io")
    s3 = boto3.client(
        "s3",
        endpoint_url=kc.s3_endpoint,
        aws_access_key_id=kc.s3_access_key,
        aws_secret_access_key=kc.s3_secret_key,
        region_name="us-east-1",
    )
    bucket = f"bench-{int(time.time())}"
    s3.create_bucket(Bucket=bucket)
    kubectl_apply(kc, storage_secret(ns, kc))
    operator = OperatorProcess(kc, ns, work / "operator.log")
    operator.extra_env = {"S1MPLE_RECONCILE_INTERVAL": "2", "MALLOC_ARENA_MAX": "2"}  # as deployed
    operator.start()
    time.sleep(2)  # let it connect, as a running operator would be
    name = f"bench-{int(time.time())}"
    doc = {
        "apiVersion": "s1mple.io/v1alpha1",
        "kind": "Optimization",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            **research_spec(runs),
            "storage": {
                "uri": f"s3://{bucket}/research",
                "endpoint": kc.s3_endpoint,
                "credentialsSecretRef": {"name": "s1mple-storage"},
            },
        },
    }
    t0 = time.perf_counter()
    kubectl_apply(kc, doc)
    timeline = {}
    api = kc.cluster.api()
    base = f"{kc.api_url}/apis/s1mple.io/v1alpha1/namespaces/{ns}/optimizations/{name}"
    while time.perf_counter() - t0 < 1800:
        body = api.get(base).json()
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body.get("metadata", {}).get("generation")
        phase = status.get("phase") if current else None
        if phase and phase not in timeline:
            timeline[phase] = time.perf_counter() - t0
        if phase == "Running" and "Job complete" not in timeline and status.get("jobName"):
            job = api.get(f"{kc.api_url}/apis/batch/v1/namespaces/{ns}/jobs/{status['jobName']}").json()
            if any(c["type"] == "Complete" for c in (job.get("status") or {}).get("conditions") or []):
                timeline["Job complete"] = time.perf_counter() - t0
        if phase in ("Succeeded", "Failed", "Invalid"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    res = wait_for_phase(kc, "optimizations", ns, name, ("Succeeded", "Failed", "Invalid"), operator=operator)
    print("timeline (s after kubectl apply): " + ", ".join(f"{k} {v:.1f}" for k, v in timeline.items()))
    rss = peak_rss_mb(operator.proc.pid)
    operator.stop()
    return elapsed, res, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    reuse = os.environ.get("S1MPLE_CLUSTER_REUSE")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        c = test_cluster.Cluster(reuse or work / "cluster", owned=not reuse)
        if reuse:
            c.load()
        else:
            c.start()
        try:
            kc = KubeCluster(c)
            local_s, local = run_local(args.runs, work)
            cluster_s, res, rss = run_cluster(kc, args.runs, work)
        finally:
            if not reuse:
                c.stop()
    status = res["status"]
    size = len(json.dumps(status, separators=(",", ":")))
    print(f"runs: {status['counts']['total']} (local {local['planned_runs']}), phase {status['phase']}")
    print(f"local  s1mple optimize, {WORKERS} workers:     {local_s:7.1f} s")
    print(f"cluster apply -> Succeeded, parallelism {WORKERS}: {cluster_s:7.1f} s")
    print(f"ratio cluster/local: {cluster_s / local_s:.2f}x (target <= 1.3x)")
    print(f"status size: {size} bytes (target <= 32768)")
    print(f"operator peak memory (VmHWM): {rss:.0f} MB (target < 300 MB)")
    same = status["bestConfiguration"]["runId"] == local["best_configuration"]["run_id"]
    print(f"same best run as local: {same}")


if __name__ == "__main__":
    main()
