"""Benchmark: a 10,000-run Optimization through the operator vs the same sweep locally.

Prints the wall time of each (apply -> Succeeded on the cluster; `s1mple optimize` locally, both with 2
workers on this machine; measured in turns, medians compared), their ratio (target <= 1.3x), a timeline
and the CPU each component used, the status size, and the operator's memory (peak target < 300 MB).
Starts its own test cluster (tests/cluster; binaries from `tests/cluster/build`), or uses a running
one: S1MPLE_CLUSTER_REUSE=/tmp/s1mple-cluster.

    python benchmarks/operator.py [--runs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import yaml  # noqa: E402

from s1mple.executors.apiserver import ApiError  # noqa: E402
from tests.cluster import cluster as test_cluster  # noqa: E402
from tests.cluster.fixtures import KubeCluster  # noqa: E402
from tests.operator.harness import OperatorProcess, kubectl_apply, storage_secret, wait_for_phase  # noqa: E402

WORKERS = 2


def space(runs: int) -> dict:
    """fast x slow grid of ``runs`` combinations (fast < slow always holds)."""
    side = int(round(runs**0.5))
    slow0 = max(200, 6 + side)  # every slow above every fast
    return {
        "fast": {"values": list(range(5, 5 + side))},
        "slow": {"start": slow0, "end": slow0 + 2 * (runs // side - 1), "step": 2},
    }


def research_spec(runs: int, runs_per_pod: int | None = None) -> dict:
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
        "parallelConfig": {"maxWorkers": WORKERS, "timeoutPerRun": 60}
        | ({"runsPerPod": runs_per_pod} if runs_per_pod else {}),
    }


def rss_mb(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (the node agent reaps pods)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def component_pids(kc: KubeCluster) -> dict[str, int]:
    return {name: p["pid"] for name, p in kc.cluster.state["procs"].items()}


class Timeline(dict):
    """When each step became visible, from API watches (no polling load on the 2-core machine)."""

    def __init__(self, kc: KubeCluster, ns: str, name: str):
        super().__init__()
        self.t0 = time.perf_counter()
        self.done = threading.Event()
        self.pods: dict[str, str] = {}
        self.completions = 0
        base = f"/apis/s1mple.io/v1alpha1/namespaces/{ns}/optimizations"
        for path, params, fn in (
            (base, {"fieldSelector": f"metadata.name={name}"}, self._resource),
            (f"/apis/batch/v1/namespaces/{ns}/jobs", {"labelSelector": f"s1mple.io/name={name}"}, self._job),
            (f"/api/v1/namespaces/{ns}/pods", {"labelSelector": f"s1mple.io/name={name}"}, self._pod),
        ):
            threading.Thread(target=self._watch, args=(kc, path, params, fn), daemon=True).start()

    def mark(self, what: str) -> None:
        self.setdefault(what, time.perf_counter() - self.t0)

    def _watch(self, kc: KubeCluster, path: str, params: dict, fn) -> None:
        try:
            for event in kc.cluster.rest().watch(path, {**params, "timeoutSeconds": "1800"}):
                fn(event["object"])
        except ApiError:
            return  # the benchmark is over (or the cluster stopped)

    def _resource(self, body: dict) -> None:
        status = body.get("status") or {}
        if status.get("observedGeneration") == body["metadata"].get("generation") and status.get("phase"):
            self.mark(status["phase"])
            if status["phase"] in ("Succeeded", "Failed", "Invalid"):
                self.done.set()

    def _job(self, job: dict) -> None:
        self.completions = job["spec"].get("completions") or 0
        if any(c["type"] == "Complete" for c in (job.get("status") or {}).get("conditions") or []):
            self.mark("Job complete")

    def _pod(self, pod: dict) -> None:
        self.pods[pod["metadata"]["name"]] = (pod.get("status") or {}).get("phase", "")
        phases = list(self.pods.values())
        if "Running" in phases:
            self.mark("first pod running")
        if self.completions and phases.count("Succeeded") >= self.completions:
            self.mark("pods done")


def run_local(runs: int, work: Path, n: int = 0) -> tuple[float, dict]:
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
            str(work / f"local-{n}"),  # a fresh folder: nothing to resume
            "--max-workers",
            str(WORKERS),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0, json.loads((work / f"local-{n}" / "result.json").read_text())


class MemorySampler:
    """The operator's RSS every 10 ms, as the peak of each step of a timeline (VmHWM only says how high,
    not when: planning and progress ticks, or the aggregation and its report)."""

    def __init__(self, pid: int, timeline: Timeline):
        self.pid, self.timeline = pid, timeline
        self.peaks: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.01):
            rss = rss_mb(self.pid, "VmRSS")
            step = "aggregating" if "Job complete" in self.timeline else "planning and running"
            self.peaks[step] = max(self.peaks.get(step, 0.0), rss)

    def done(self) -> str:
        self.stop.set()
        self.thread.join()
        return ", ".join(f"{k} {v:.0f} MB" for k, v in self.peaks.items())


class ClusterBench:
    """The operator (started once, as it runs in a cluster) and one Optimization per measurement."""

    def __init__(self, kc: KubeCluster, work: Path):
        self.kc, self.ns = kc, "bench"
        kc.kubectl("create", "namespace", self.ns, check=False)
        kc.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kc.kubectl("wait", "--for=condition=Established", "crd/optimizations.s1mple.io")
        s3 = boto3.client(
            "s3",
            endpoint_url=kc.s3_endpoint,
            aws_access_key_id=kc.s3_access_key,
            aws_secret_access_key=kc.s3_secret_key,
            region_name="us-east-1",
        )
        self.bucket = f"bench-{int(time.time())}"
        s3.create_bucket(Bucket=self.bucket)
        kubectl_apply(kc, storage_secret(self.ns, kc))
        self.operator = OperatorProcess(kc, self.ns, work / "operator.log")
        self.operator.extra_env = {"MALLOC_ARENA_MAX": "2"}  # as deployed (tick interval: the default)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        liveness = f"http://127.0.0.1:{port}/healthz"
        self.operator.extra_args = ["--liveness", liveness]
        self.operator.start()
        self.idle_rss = self._idle(liveness)

    def _idle(self, url: str) -> float:
        """RSS once the operator answers its liveness probe (started, startup handlers run), not while it
        is still importing (a loaded machine takes seconds)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return rss_mb(self.operator.proc.pid, "VmRSS")
            except OSError:
                pass
            if self.operator.proc.poll() is not None:
                raise RuntimeError(f"the operator exited:\n{self.operator.log()[-2000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not answer in 120 s")

    def run(self, runs: int, n: int, runs_per_pod: int | None = None) -> tuple[float, dict]:
        """Seconds from kubectl apply to Succeeded, and the resource at the end."""
        kc, ns = self.kc, self.ns
        name = f"bench-{int(time.time())}-{n}"
        doc = {
            "apiVersion": "s1mple.io/v1alpha1",
            "kind": "Optimization",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                **research_spec(runs, runs_per_pod),
                "storage": {
                    "uri": f"s3://{self.bucket}/research",
                    "endpoint": kc.s3_endpoint,
                    "credentialsSecretRef": {"name": "s1mple-storage"},
                },
            },
        }
        pids = {**component_pids(kc), "operator": self.operator.proc.pid}
        cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
        timeline = Timeline(kc, ns, name)
        t0 = timeline.t0 = time.perf_counter()
        sampler = MemorySampler(self.operator.proc.pid, timeline)
        kubectl_apply(kc, doc)
        timeline.done.wait(1800)
        elapsed = time.perf_counter() - t0
        steps = sampler.done()
        cpu = {k: cpu_seconds(pid) - cpu0[k] for k, pid in pids.items()}
        res = wait_for_phase(
            kc, "optimizations", ns, name, ("Succeeded", "Failed", "Invalid"), operator=self.operator
        )
        print(
            f"  cluster: {elapsed:.2f} s; s after kubectl apply: "
            + ", ".join(f"{k} {v:.2f}" for k, v in timeline.items())
        )
        rss, peak = (rss_mb(self.operator.proc.pid, f) for f in ("VmRSS", "VmHWM"))
        print(f"    operator memory after it: {rss:.0f} MB, peak so far {peak:.0f} MB (RSS peaks: {steps})")
        used = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        print(f"    CPU s used meanwhile (node-agent includes its pods): {used}")
        return elapsed, res

    def stop(self) -> float:
        """The operator's peak memory (MB) over every measurement."""
        peak = rss_mb(self.operator.proc.pid, "VmHWM")
        self.operator.stop()
        return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each; medians are compared")
    parser.add_argument("--runs-per-pod", type=int, default=None, help="spec.parallelConfig.runsPerPod")
    args = parser.parse_args()
    reuse = os.environ.get("S1MPLE_CLUSTER_REUSE")
    local_times, cluster_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        c = test_cluster.Cluster(reuse or work / "cluster", owned=not reuse)
        if reuse:
            c.load()
        else:
            c.start()
        try:
            bench = ClusterBench(KubeCluster(c), work)
            for n in range(args.repeat):  # interleaved: both sides see the same machine noise
                local_s, local = run_local(args.runs, work, n)
                print(f"  local: {local_s:.2f} s")
                cluster_s, res = bench.run(args.runs, n, args.runs_per_pod)
                local_times.append(local_s)
                cluster_times.append(cluster_s)
            peak = bench.stop()
        finally:
            if not reuse:
                c.stop()
    status = res["status"]
    size = len(json.dumps(status, separators=(",", ":")))
    local_m, cluster_m = statistics.median(local_times), statistics.median(cluster_times)
    print(f"runs: {status['counts']['total']} (local {local['planned_runs']}), phase {status['phase']}")
    n = len(local_times)
    print(f"local  s1mple optimize, {WORKERS} workers:     median {local_m:5.2f} s of {n}")
    print(f"cluster apply -> Succeeded, parallelism {WORKERS}: median {cluster_m:5.2f} s of {n}")
    print(f"ratio cluster/local: {cluster_m / local_m:.2f}x (target <= 1.3x)")
    print(f"status size: {size} bytes (target <= 32768)")
    print(f"operator memory: {bench.idle_rss:.0f} MB idle, peak (VmHWM) {peak:.0f} MB (target < 300 MB)")
    same = status["bestConfiguration"]["runId"] == local["best_configuration"]["run_id"]
    print(f"same best run as local: {same}")


if __name__ == "__main__":
    main()
