"""The real Job and garbage-collector controllers acting on pods run by the node agent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from s1mple.executors.apiserver import ApiServer
from tests.cluster.fixtures import wait_for

pytestmark = pytest.mark.cluster

IMAGE = "s1mple-test:local"  # any image runs in the current venv (see README)


def py(script: str) -> list[str]:
    return ["python", "-c", textwrap.dedent(script)]


def job_manifest(name: str, script: str, **spec) -> dict:
    container = spec.pop("container", {})
    template_spec = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "main", "image": IMAGE, "command": py(script), **container}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": template_spec}, **spec},
    }


def pods(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def jobs(ns: str) -> str:
    return f"/apis/batch/v1/namespaces/{ns}/jobs"


def conditions(obj: dict) -> list[dict]:
    return obj.get("status", {}).get("conditions") or []


def wait_job_finished(api: ApiServer, ns: str, name: str, timeout: float = 240) -> dict:
    def finished():
        job = api.get(f"{jobs(ns)}/{name}")
        for c in conditions(job):
            if c["type"] in ("Complete", "Failed") and c["status"] == "True":
                return job
        return None

    return wait_for(finished, timeout=timeout, interval=0.5, what=f"Job {ns}/{name} to finish")


def condition(job: dict, ctype: str) -> dict | None:
    return next((c for c in conditions(job) if c["type"] == ctype and c["status"] == "True"), None)


def describe(api: ApiServer, ns: str, kube_cluster) -> str:
    lines = []
    for p in api.list(pods(ns)):
        cs = p["status"].get("containerStatuses") or []
        state = cs[0]["state"] if cs else None
        name = p["metadata"]["name"]
        log = kube_cluster.node_agent.container_log(ns, name)[-500:]
        lines.append(f"{name} {p['status'].get('phase')} {state}\n  log: {log!r}")
    return "\n".join(lines)


def test_indexed_job_writes_objects_to_minio(kube_cluster, kube_api, kube_namespace, s3_client, s3_bucket):
    api, ns = kube_api, kube_namespace
    api.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {
            "metadata": {"name": "s3-creds"},
            "stringData": {
                "AWS_ACCESS_KEY_ID": kube_cluster.s3_access_key,
                "AWS_SECRET_ACCESS_KEY": kube_cluster.s3_secret_key,
                "endpoint": kube_cluster.s3_endpoint,
            },
        },
    )
    api.create(
        f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "run"}, "data": {"bucket": s3_bucket}}
    )
    script = """
        import os, boto3
        idx = os.environ["JOB_COMPLETION_INDEX"]
        assert idx == os.environ["INDEX_FROM_ANNOTATION"], (idx, os.environ["INDEX_FROM_ANNOTATION"])
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
        body = f"index={idx} pod={os.environ['POD_NAME']} ns={os.environ['POD_NAMESPACE']}"
        s3.put_object(Bucket=os.environ["BUCKET"], Key=f"out/{idx}.txt", Body=body.encode())
        print("wrote", idx, flush=True)
    """
    container = {
        # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY come from the Secret (envFrom),
        # the endpoint from one key of it, the bucket from a ConfigMap.
        "envFrom": [{"secretRef": {"name": "s3-creds"}}],
        "env": [
            {"name": "S3_ENDPOINT", "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "endpoint"}}},
            {"name": "BUCKET", "valueFrom": {"configMapKeyRef": {"name": "run", "key": "bucket"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {
                "name": "INDEX_FROM_ANNOTATION",
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    }
                },
            },
        ],
    }
    api.create(
        jobs(ns),
        job_manifest(
            "writer",
            script,
            completionMode="Indexed",
            completions=3,
            parallelism=2,
            backoffLimit=0,
            container=container,
        ),
    )
    job = wait_job_finished(api, ns, "writer")
    assert condition(job, "Complete"), describe(api, ns, kube_cluster)
    assert job["status"].get("succeeded") == 3
    assert job["status"].get("completedIndexes") == "0-2"
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", []))
    assert keys == ["out/0.txt", "out/1.txt", "out/2.txt"]
    for i in range(3):
        body = s3_client.get_object(Bucket=s3_bucket, Key=f"out/{i}.txt")["Body"].read().decode()
        assert body.startswith(f"index={i} pod=writer-{i}-") and body.endswith(f"ns={ns}")


FAIL_TWICE = """
    import os, sys, pathlib
    idx = int(os.environ["JOB_COMPLETION_INDEX"])
    if idx == int(os.environ["FLAKY_INDEX"]):
        marker = pathlib.Path(os.environ["MARKER_DIR"]) / f"attempts-{idx}"
        n = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(n + 1))
        print("attempt", n + 1, flush=True)
        if n < int(os.environ["FAILURES"]):
            sys.exit(1)
    print("ok", idx)
"""


def flaky_job(name: str, marker_dir: Path, failures: int, backoff_limit_per_index: int) -> dict:
    env = [
        {"name": "FLAKY_INDEX", "value": "1"},
        {"name": "FAILURES", "value": str(failures)},
        {"name": "MARKER_DIR", "value": str(marker_dir)},
    ]
    return job_manifest(
        name,
        FAIL_TWICE,
        completionMode="Indexed",
        completions=3,
        parallelism=3,
        backoffLimitPerIndex=backoff_limit_per_index,
        container={"env": env},
    )


def test_backoff_limit_per_index_retries_failing_index(kube_cluster, kube_api, kube_namespace, tmp_path):
    api, ns = kube_api, kube_namespace
    api.create(jobs(ns), flaky_job("flaky", tmp_path, failures=2, backoff_limit_per_index=2))
    job = wait_job_finished(api, ns, "flaky", timeout=300)
    assert condition(job, "Complete"), describe(api, ns, kube_cluster)
    assert (tmp_path / "attempts-1").read_text() == "3"
    assert job["status"].get("failed") == 2
    assert job["status"].get("succeeded") == 3
    assert not job["status"].get("failedIndexes")


def test_backoff_limit_per_index_exceeded_fails_index(kube_cluster, kube_api, kube_namespace, tmp_path):
    api, ns = kube_api, kube_namespace
    api.create(jobs(ns), flaky_job("broken", tmp_path, failures=99, backoff_limit_per_index=1))
    job = wait_job_finished(api, ns, "broken", timeout=300)
    failed = condition(job, "Failed")
    assert failed, describe(api, ns, kube_cluster)
    assert failed.get("reason") == "FailedIndexes"
    assert job["status"].get("failedIndexes") == "1"
    assert job["status"].get("completedIndexes") == "0,2"
    assert (tmp_path / "attempts-1").read_text() == "2"  # the first try and one retry


def test_pod_failure_policy_sees_exit_codes(kube_cluster, kube_api, kube_namespace):
    """onExitCodes acts on the exit code the node agent reports: no retries of index 1."""
    api, ns = kube_api, kube_namespace
    script = """
        import os, sys
        sys.exit(42 if os.environ["JOB_COMPLETION_INDEX"] == "1" else 0)
    """
    manifest = job_manifest(
        "policy",
        script,
        completionMode="Indexed",
        completions=3,
        parallelism=3,
        backoffLimitPerIndex=3,
        podFailurePolicy={
            "rules": [
                {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
    )
    api.create(jobs(ns), manifest)
    job = wait_job_finished(api, ns, "policy", timeout=180)
    assert condition(job, "Failed"), describe(api, ns, kube_cluster)
    assert job["status"].get("failedIndexes") == "1"
    assert job["status"].get("failed") == 1  # FailIndex: no retry
    statuses = [
        p["status"].get("containerStatuses") for p in api.list(pods(ns), label_selector="job-name=policy")
    ]
    codes = sorted(cs[0]["state"]["terminated"]["exitCode"] for cs in statuses if cs)
    assert codes == [0, 0, 42]


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_deleting_job_collects_pods_and_kills_processes(kube_cluster, kube_api, kube_namespace):
    api, ns = kube_api, kube_namespace
    script = """
        import os, time
        print("pid", os.getpid(), flush=True)
        time.sleep(3600)
    """
    api.create(jobs(ns), job_manifest("sleeper", script, completions=2, parallelism=2))
    agent = kube_cluster.node_agent

    def running_pids():
        sleepers = api.list(pods(ns), label_selector="job-name=sleeper")
        if len(sleepers) != 2 or any(p["status"].get("phase") != "Running" for p in sleepers):
            return None
        pids = {}
        for p in sleepers:
            name = p["metadata"]["name"]
            pid = agent.container_pid(ns, name)
            if pid is None or f"pid {pid}" not in agent.container_log(ns, name):
                return None
            pids[name] = pid
        return pids

    pids = wait_for(running_pids, timeout=120, what="2 running sleeper pods")
    assert all(pid_alive(pid) for pid in pids.values())
    api.delete(f"{jobs(ns)}/sleeper", propagationPolicy="Background")
    wait_for(
        lambda: not api.list(pods(ns), label_selector="job-name=sleeper"),
        timeout=180,
        what="the garbage collector to delete the Job's pods",
    )
    for name, pid in pids.items():
        assert not pid_alive(pid), f"process {pid} of pod {name} still runs"
