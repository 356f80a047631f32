"""Fault injection against the real test cluster: prints what survived (issue #10's figures).

Scenarios, each on the shipped 12-run Optimization (or the slow 16-run one for pod disruptions), compared
by run_id and metrics with an undisturbed reference run:

* operator SIGKILLs at several stages of a sweep;
* MinIO restarted (killed, down a few seconds, started again) mid-sweep;
* kube-apiserver restarted mid-sweep;
* runner pods deleted (``kubectl delete pod``) and evicted (Eviction API) mid-chunk;
* every hostile spec of tests/operator/test_faults_cluster.py: schema rejection, clear condition, or silent.

Prints counts: sweeps identical to the reference, runs lost, duplicate Jobs, operator crashes, tracebacks
per minute in the operator log.  Starts its own cluster (or S1MPLE_CLUSTER_REUSE=<dir>).

    python benchmarks/faults.py [--kills 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from tests.cluster import cluster as test_cluster  # noqa: E402
from tests.cluster.fixtures import KubeCluster, wait_for  # noqa: E402
from tests.operator import test_faults_cluster as faults  # noqa: E402
from tests.operator.harness import (  # noqa: E402
    OperatorProcess,
    example,
    get_resource,
    jobs_of,
    kubectl_apply,
    storage_secret,
    wait_for_phase,
)

OPT = "config/resources/optimization-ma-crossover.yaml"


def raised(log: str) -> list[str]:
    """The exception line (and the log line before it) of each traceback in a log."""
    lines, out = log.splitlines(), []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            last = next((x for x in lines[i + 1 :] if x and not x.startswith(" ")), "?")
            before = lines[i - 1][:160] if i else ""
            out.append(f"{before} -> {last[:200]}")
    return out


def metrics(s3, bucket: str, status: dict) -> dict:
    key = status["results"]["summary"][len(f"s3://{bucket}/") :]
    result = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return {r["run_id"]: {k: round(v, 9) for k, v in r["metrics"].items()} for r in result["results"]}


class Campaign:
    def __init__(self, kc: KubeCluster, work: Path):
        self.kc, self.ns, self.work = kc, "faults", work
        kc.kubectl("create", "namespace", self.ns, check=False)
        kc.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kc.kubectl("wait", "--for=condition=Established", "crd/optimizations.s1mple.io")
        self.s3 = boto3.client(
            "s3",
            endpoint_url=kc.s3_endpoint,
            aws_access_key_id=kc.s3_access_key,
            aws_secret_access_key=kc.s3_secret_key,
            region_name="us-east-1",
        )
        self.bucket = f"faults-{int(time.time())}"
        self.s3.create_bucket(Bucket=self.bucket)
        kubectl_apply(kc, storage_secret(self.ns, kc))
        kc.node_agent.set_image_map({"registry.example/team-runner:*": {"env": faults.PLUGIN_ENV}})
        self.operator = OperatorProcess(kc, self.ns, work / "operator.log")
        self.operator.extra_env = {
            **faults.PLUGIN_ENV,
            "S1MPLE_ALLOWED_RUNNER_IMAGES": "ghcr.io/s1mple/s1mple-runner,registry.example/team-runner",
        }
        self.operator.start()
        self.t0 = time.monotonic()
        self.crashes = 0
        self.sweeps: list[tuple[str, bool, int, int]] = []  # scenario, identical, runs lost, Jobs

    def sweep(self, name: str, disturb, reference: dict | None, doc: dict | None = None) -> dict:
        doc = doc or example(OPT, self.ns, self.bucket, self.kc)
        doc["metadata"]["name"] = name
        doc["spec"]["storage"]["uri"] = f"s3://{self.bucket}/{name}"  # its own results: a cold sweep
        kubectl_apply(self.kc, doc)
        disturb(name)
        res = wait_for_phase(
            self.kc, "optimizations", self.ns, name, ("Succeeded", "Failed", "Invalid"), 600, self.operator
        )
        status = res["status"]
        lost = status["counts"]["total"] - status["counts"]["succeeded"] - status["counts"]["failed"]
        got = metrics(self.s3, self.bucket, status) if status.get("results", {}).get("summary") else {}
        jobs = [j for j in jobs_of(self.kc, self.ns) if j["metadata"]["labels"]["s1mple.io/name"] == name]
        self.sweeps.append((name, reference is None or got == reference, lost, len(jobs)))
        why = (status.get("conditions") or [{}])[0].get("message", "")[:300]
        same = self.sweeps[-1][1]
        print(f"  {name}: {status['phase']}, identical={same}, runs lost {lost} {why}", flush=True)
        if self.operator.proc.poll() is not None:
            self.crashes += 1
            self.operator.start()
        return got

    def phase_is(self, name: str, *phases: str) -> bool:
        return (get_resource(self.kc, "optimizations", self.ns, name).get("status") or {}).get(
            "phase"
        ) in phases

    def hostile(self) -> tuple[int, int, int]:
        schema = clear = silent = 0
        for case_id, edits, _ in faults.HOSTILE:
            doc = example(OPT, self.ns, self.bucket, self.kc)
            doc["metadata"]["name"] = f"hostile-{case_id}"
            for path, value in edits.items():
                faults._set(
                    doc, path, value.replace("BUCKET", self.bucket) if isinstance(value, str) else value
                )
            proc = kubectl_apply(self.kc, doc, check=False)
            if proc.returncode != 0:
                schema += 1
                continue
            try:
                wait_for(
                    lambda d=doc: faults._condition(self.kc, self.ns, d["metadata"]["name"]),
                    timeout=120,
                    what="a condition",
                )
                clear += 1
            except TimeoutError:
                silent += 1
                print(f"  SILENT: {case_id}")
        return schema, clear, silent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=3, help="sweeps with an operator SIGKILL")
    args = parser.parse_args()
    reuse = os.environ.get("S1MPLE_CLUSTER_REUSE")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        c = test_cluster.Cluster(reuse or work / "cluster", owned=not reuse)
        c.load() if reuse else c.start()
        try:
            kc = KubeCluster(c)
            api = c.rest()
            cp = Campaign(kc, work)
            reference = cp.sweep("reference", lambda name: None, None)

            def kill_at(phase_wait: float):
                def disturb(name: str) -> None:
                    time.sleep(phase_wait)
                    cp.operator.kill()
                    time.sleep(1)
                    cp.operator.start()

                return disturb

            for k in range(args.kills):
                cp.sweep(f"kill-{k}", kill_at(0.5 + 2.0 * k), reference)

            def outage(component: str, down: float):
                def disturb(name: str) -> None:
                    try:
                        wait_for(lambda: cp.phase_is(name, "Running", "Succeeded"), timeout=120)
                    except TimeoutError:
                        status = get_resource(kc, "optimizations", cp.ns, name).get("status")
                        raise SystemExit(f"{name}: {status}\n{cp.operator.log()[-5000:]}") from None
                    with c.outage(component):
                        time.sleep(down)  # the outage itself

                return disturb

            cp.sweep("minio-restart", outage("minio", 5.0), reference)
            cp.sweep("apiserver-restart", outage("kube-apiserver", 2.0), reference)

            slow_ref = cp.sweep(
                "slow-reference", lambda name: None, None, faults.slow_doc(cp.ns, cp.bucket, kc, "x", 1.0)
            )

            def delete_and_evict(name: str) -> None:
                done: set[str] = set()

                def step() -> bool:
                    for pod in faults._pods(kc, cp.ns):
                        pname = pod["metadata"]["name"]
                        if (
                            pname in done
                            or not pname.startswith("opt-disrupted")
                            or pod["status"].get("phase") != "Running"
                        ):
                            continue
                        if not done:
                            kc.kubectl("delete", "pod", pname, "-n", cp.ns, "--wait=false")
                        else:  # the Eviction API, as a drain does
                            api.create(
                                f"/api/v1/namespaces/{cp.ns}/pods/{pname}/eviction",
                                {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pname}},
                            )
                        done.add(pname)
                        time.sleep(3)
                    return len(done) >= 2

                wait_for(step, timeout=180, interval=0.5)

            cp.sweep("disrupted", delete_and_evict, slow_ref, faults.slow_doc(cp.ns, cp.bucket, kc, "x", 1.0))
            schema, clear, silent = cp.hostile()
            minutes = (time.monotonic() - cp.t0) / 60
            tracebacks = raised(cp.operator.log())
            cp.operator.stop()
        finally:
            if not reuse:
                c.stop()
    for name, same, lost, jobs in cp.sweeps:
        print(f"  {name:18s} identical={same} runs_lost={lost} jobs={jobs}")
    disturbed = [s for s in cp.sweeps if "reference" not in s[0]]
    print(f"sweeps disturbed: {len(disturbed)}, identical to the reference: {sum(s[1] for s in disturbed)}")
    duplicates = sum(max(0, s[3] - 1) for s in cp.sweeps)
    print(f"runs lost: {sum(s[2] for s in cp.sweeps)}; duplicate Jobs: {duplicates}")
    print(f"operator crashes: {cp.crashes}; tracebacks in its log: {len(tracebacks)} in {minutes:.1f} min")
    for line in tracebacks:
        print(f"  {line}")
    print(
        f"hostile specs: {len(faults.HOSTILE)}: {schema} rejected by the schema, {clear} with a clear "
        f"condition, {silent} silent"
    )


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
