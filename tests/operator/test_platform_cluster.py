"""Platform integration against the real control plane: kstatus conditions with the real `kubectl wait`,
the `-o wide` Message column, the Argo CD health of real objects, a Kueue-style suspended Job, and
`/metrics` scraped during a sweep."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.fixtures import wait_for
from tests.operator.harness import (
    OperatorProcess,
    example,
    get_resource,
    jobs_of,
    kubectl_apply,
    storage_secret,
    wait_for_phase,
)
from tests.operator.test_argocd_health import CHECKS, LUA, health
from tests.operator.test_operator_cluster import OPT, VT

pytestmark = pytest.mark.cluster


def _typo(doc: dict) -> dict:
    doc["metadata"]["name"] = "typo"
    doc["spec"]["parameterSpace"][0]["workerPlugin"] = "ma_crosover"
    return doc


def _condition(res: dict, kind: str) -> dict:
    return next(c for c in res["status"]["conditions"] if c["type"] == kind)


def _wide_rows(cluster, plural: str, namespace: str) -> list[dict[str, str]]:
    """`kubectl get -o wide` as rows of {HEADER: cell}, cut at the header's column starts."""
    lines = cluster.kubectl("get", plural, "-n", namespace, "-o", "wide").stdout.splitlines()
    header = lines[0]
    names = header.split()
    starts = [header.index(f" {n}") + 1 if i else 0 for i, n in enumerate(names)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines[1:]]


def test_kubectl_wait_ready_stalled_and_the_wide_message(
    kube_cluster, kube_namespace, s3_bucket, operator, tmp_path
):
    vt = example(VT, kube_namespace, s3_bucket, kube_cluster)
    bad = _typo(example(OPT, kube_namespace, s3_bucket, kube_cluster))
    for doc in (vt, bad):
        kubectl_apply(kube_cluster, doc)
    name = vt["metadata"]["name"]
    # the real kubectl's own waiting, on the kstatus conditions
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        "--timeout=300s",
        f"varianttest/{name}",
        "-n",
        kube_namespace,
        timeout=320,
    )
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Stalled",
        "--timeout=120s",
        "optimization/typo",
        "-n",
        kube_namespace,
        timeout=140,
    )
    done = get_resource(kube_cluster, "varianttests", kube_namespace, name)
    invalid = get_resource(kube_cluster, "optimizations", kube_namespace, "typo")
    assert done["status"]["phase"] == "Succeeded" and invalid["status"]["phase"] == "Invalid"
    generation = {c["observedGeneration"] for r in (done, invalid) for c in r["status"]["conditions"]}
    assert generation == {1}
    assert [c["type"] for c in done["status"]["conditions"]] == [
        "Succeeded",
        "Ready",
        "Reconciling",
        "Stalled",
    ]
    assert _condition(done, "Reconciling")["status"] == "False"
    assert _condition(invalid, "Ready")["status"] == "False"
    message = _condition(invalid, "Stalled")["message"]
    assert "\n" not in message and message == _condition(invalid, "Ready")["message"]
    assert "unknown plugin 'ma_crosover'" in message and "did you mean 'ma_crossover'?" in message

    # -o wide says why, exactly the condition's message (one line: kubectl would cut it at the first
    # newline); the default output stays narrow
    rows = _wide_rows(kube_cluster, "opt", kube_namespace)
    assert rows == [
        {
            "NAME": "typo",
            "PHASE": "Invalid",
            "PROGRESS": "",
            "FAILED": "0",
            "BEST": "",
            "PBO": "",
            "DSR": "",
            "AGE": rows[0]["AGE"],
            "MESSAGE": message,
        }
    ]
    rows = _wide_rows(kube_cluster, "vt", kube_namespace)
    assert rows == [
        {
            "NAME": name,
            "PHASE": "Succeeded",
            "PROGRESS": "3/3",
            "FAILED": "0",
            "BEST": done["status"]["best"],
            "AGE": rows[0]["AGE"],
            "MESSAGE": "3 runs succeeded, 0 failed",
        }
    ]
    narrow = kube_cluster.kubectl("get", "vt", "-n", kube_namespace).stdout.splitlines()[0].split()
    assert narrow == ["NAME", "PHASE", "PROGRESS", "FAILED", "BEST", "AGE"]

    # Argo CD's view of the real objects, and the fixtures have their shape
    if LUA:
        assert health(done, "VariantTest", tmp_path) == ("Healthy", "3 runs succeeded, 0 failed")
        assert health(invalid, "Optimization", tmp_path) == ("Degraded", message)
    for real, fixture in (
        (done, "VariantTest/testdata/succeeded.yaml"),
        (invalid, "Optimization/testdata/invalid.yaml"),
    ):
        shape = yaml.safe_load((CHECKS / fixture).read_text())["status"]
        assert sorted(real["status"]) == sorted(shape)

        def shape_of(conditions):
            return [(sorted(c), c["type"], c["status"], c["reason"]) for c in conditions]

        assert shape_of(real["status"]["conditions"]) == shape_of(shape["conditions"])


def test_a_queued_job_waits_suspended_and_runs_once_admitted(
    kube_cluster, kube_namespace, s3_bucket, operator
):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    name = doc["metadata"]["name"]
    doc["spec"]["runner"] = {
        **doc["spec"].get("runner", {}),
        "queueName": "research",
        "labels": {"team": "quant"},
    }
    kubectl_apply(kube_cluster, doc)
    queued = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Queued",), operator=operator
    )
    ready = _condition(queued, "Ready")
    assert ready["reason"] == "Queued" and "waiting for Kueue LocalQueue 'research'" in ready["message"]
    assert _condition(queued, "Reconciling")["status"] == "True"

    def suspended_job():
        jobs = jobs_of(kube_cluster, kube_namespace)
        conditions = (jobs[0].get("status") or {}).get("conditions") or [] if jobs else []
        return (
            jobs[0] if any(c["type"] == "Suspended" and c["status"] == "True" for c in conditions) else None
        )

    job = wait_for(suspended_job, timeout=60, what="the Job controller to see the Job suspended")
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "research"
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "quant"
    pods = json.loads(kube_cluster.kubectl("get", "pods", "-n", kube_namespace, "-o", "json").stdout)["items"]
    assert pods == []  # the controller has acted on the suspended Job and started nothing
    assert get_resource(kube_cluster, "optimizations", kube_namespace, name)["status"]["phase"] == "Queued"

    # admitted, as Kueue does it
    kube_cluster.kubectl(
        "patch",
        "job",
        job["metadata"]["name"],
        "-n",
        kube_namespace,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false}}',
    )
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded", "Failed"), operator=operator
    )
    assert res["status"]["phase"] == "Succeeded", res["status"]
    assert res["status"]["counts"]["succeeded"] == res["status"]["counts"]["total"] == 12
    events = json.loads(kube_cluster.kubectl("get", "events", "-n", kube_namespace, "-o", "json").stdout)
    reasons = [e["reason"] for e in events["items"] if e["involvedObject"].get("name") == name]
    assert "Admitted" in reasons


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_during_a_sweep_and_json_step_logs(kube_cluster, kube_namespace, s3_bucket, crds, tmp_path):
    port = _free_port()
    op = OperatorProcess(kube_cluster, kube_namespace, tmp_path / "operator.log")
    op.extra_args = ["--metrics-port", str(port), "--metrics-host", "127.0.0.1", "--log-format", "json"]
    kubectl_apply(kube_cluster, storage_secret(kube_namespace, kube_cluster))
    op.start()
    try:
        wait_for(lambda: _scrape(port), timeout=60, what="/metrics to answer")
        doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
        name = doc["metadata"]["name"]
        doc["spec"]["parallelConfig"].update(maxWorkers=1, runsPerPod=3)  # 4 pods one after another
        kubectl_apply(kube_cluster, doc)
        done_key = ("s1mple_runs_done_total", (("kind", "Optimization"),))
        seen = []

        def finished():
            seen.append(_scrape(port).get(done_key, 0.0))
            status = get_resource(kube_cluster, "optimizations", kube_namespace, name).get("status") or {}
            return status.get("phase") in ("Succeeded", "Failed", "Invalid")

        wait_for(finished, timeout=300, interval=0.3, what="the sweep to finish")
        final = _scrape(port)
    finally:
        op.stop()
    assert seen == sorted(seen), seen  # a counter: never goes down
    assert seen[0] < 12 and final[done_key] == 12, seen
    print(f"runs done as scraped during the sweep: {sorted(set(seen))}")
    assert final[("s1mple_resources", (("kind", "Optimization"), ("phase", "Succeeded")))] == 1
    assert final[("s1mple_reconciles_total", (("kind", "Optimization"),))] > 0
    assert final.get(("s1mple_reconcile_errors_total", (("kind", "Optimization"),)), 0) == 0
    assert final[("s1mple_aggregation_seconds_count", (("kind", "Optimization"),))] == 1
    assert final.get(("s1mple_runs_failed_total", (("kind", "Optimization"),)), 0) == 0

    steps = []
    for line in op.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("step") and record.get("object", {}).get("name") == name:
                steps.append((record["step"], record["severity"]))
    expected = [("Planned", "info"), ("JobCreated", "info"), ("Completed", "info")]
    status = get_resource(kube_cluster, "optimizations", kube_namespace, name)["status"]
    if status["validation"].get("overfitRisk"):  # a 12-run sweep on one stock may well be flagged
        expected.append(("OverfitRisk", "warn"))
    assert steps == expected, op.log()[-3000:]


def test_kubectl_explain_shows_the_descriptions(kube_cluster, crds):
    def explained():
        out = kube_cluster.kubectl("explain", "optimizations.spec.runner.queueName", check=False)
        return out.stdout if out.returncode == 0 else None

    text = wait_for(explained, timeout=60, what="the CRD in the published OpenAPI")
    assert "a Kueue LocalQueue: the Job gets the kueue.x-k8s.io/queue-name label" in " ".join(text.split())
    status = kube_cluster.kubectl("explain", "varianttests.status.conditions.reason").stdout
    assert "one CamelCase word a program can match" in " ".join(status.split())


def test_runner_quantities_are_int_or_string(kube_cluster, kube_namespace, s3_bucket, crds):
    """`cpu: 2` (a YAML integer) is a quantity as in a pod spec; a malformed one is refused by the schema,
    naming the field; the operator reads both spellings as the same text."""
    from s1mple.kube.spec import RunnerSpec

    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    resources = {"requests": {"cpu": 2, "memory": "512Mi"}, "limits": {"cpu": "1.5"}}
    doc["spec"]["runner"] = {"resources": resources}
    assert kubectl_apply(kube_cluster, doc).returncode == 0
    stored = get_resource(kube_cluster, "optimizations", kube_namespace, doc["metadata"]["name"])
    assert stored["spec"]["runner"]["resources"]["requests"]["cpu"] == 2  # kept as the user wrote it
    runner = RunnerSpec.model_validate(stored["spec"]["runner"])
    assert runner.resources.requests["cpu"] == "2" and runner.resources.limits["cpu"] == "1.5"

    doc["spec"]["runner"] = {"resources": {"requests": {"cpu": "-1"}}}
    refused = kubectl_apply(kube_cluster, doc, check=False)
    assert refused.returncode != 0 and "spec.runner.resources.requests" in refused.stderr, refused.stderr
