"""The operator against the real control plane and MinIO: apply a resource, get the local results.

Every test runs the real `s1mple operator` (a subprocess, watching the test's namespace: these tests kill
it, restart it or give it a team's plugin), the real Job controller, and runs in pods the node agent
starts from the built runner image (one test maps a team's image to a process with its plugin). The
operator as it ships, its Deployment from the operator image, is test_operator_image.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.fixtures import wait_for
from tests.operator.harness import (
    ROOT,
    example,
    get_resource,
    jobs_of,
    kubectl_apply,
    storage_secret,
    wait_for_phase,
)

pytestmark = pytest.mark.cluster

OPT = "config/resources/optimization-ma-crossover.yaml"
VT = "config/resources/varianttest-ma-crossover.yaml"
CLUSTER_FIELDS = ("storage", "runner", "operation", "marketData")


def local_run(doc: dict, kind: str, tmp_path: Path) -> dict:
    """The same research spec through `s1mple optimize` / `s1mple variant-test` on this machine."""
    research = {k: v for k, v in doc["spec"].items() if k not in CLUSTER_FIELDS}
    research.setdefault("name", doc["metadata"]["name"])  # a resource's name defaults to metadata.name
    research["baseOperation"] = str(ROOT / research["baseOperation"])
    pc = research.get("parallelConfig", {})
    research["parallelConfig"] = {k: v for k, v in pc.items() if k in ("maxWorkers", "timeoutPerRun")}
    root = "optimization_config" if kind == "Optimization" else "variant_config"
    path = tmp_path / f"{kind.lower()}.yaml"
    path.write_text(yaml.safe_dump({root: research}))
    out = tmp_path / "local-results"
    command = "optimize" if kind == "Optimization" else "variant-test"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "s1mple"), command, str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "result.json").read_text())


def applied_until_done(kube_cluster, namespace: str, doc: dict, operator) -> dict:
    """Apply a research resource and wait until it succeeded, failed or was found invalid."""
    kubectl_apply(kube_cluster, doc)
    plural = "optimizations" if doc["kind"] == "Optimization" else "varianttests"
    done = ("Succeeded", "Failed", "Invalid")
    return wait_for_phase(kube_cluster, plural, namespace, doc["metadata"]["name"], done, operator=operator)


def stored_result(s3_client, bucket: str, status: dict) -> dict:
    uri = status["results"]["summary"]
    assert uri.startswith(f"s3://{bucket}/")
    body = s3_client.get_object(Bucket=bucket, Key=uri[len(f"s3://{bucket}/") :])["Body"].read()
    return json.loads(body)


def report_opens_in_chromium(s3_client, bucket: str, status: dict, tmp_path: Path, check: str) -> Any:
    """The report status names exists in MinIO and opens in chromium without a JavaScript error;
    ``check``: JavaScript evaluated in the page once every chart is drawn."""
    from tests.report.browser import Browser, artifacts_dir

    uri = status["results"]["report"]
    assert uri.startswith(f"s3://{bucket}/") and uri.endswith("/report.html")
    page = tmp_path / "report.html"
    page.write_bytes(s3_client.get_object(Bucket=bucket, Key=uri[len(f"s3://{bucket}/") :])["Body"].read())
    browser = Browser()
    try:
        browser.open(page.as_uri())
        browser.eval("window.s1mpleReport.drawAll()")
        value = browser.eval(check)
        assert browser.errors() == []
        browser.screenshot(artifacts_dir() / ("cluster-" + "-".join(uri.split("/")[-3:-1]) + ".png"))
    finally:
        browser.close()
    return value


def by_run_id(result: dict) -> dict[str, dict]:
    return {r["run_id"]: r["metrics"] for r in result["results"]}


def same_metrics(a: dict[str, dict], b: dict[str, dict]) -> bool:
    """Same keys (run_ids or variant names) and metrics equal to 1e-9 relative: a pod and a local worker
    can sum the same floats in a different SIMD order, which moves the last bit of a Sharpe ratio."""
    assert sorted(a) == sorted(b)
    for key in a:
        assert sorted(a[key]) == sorted(b[key]), key
        for metric, value in a[key].items():
            assert value == pytest.approx(b[key][metric], rel=1e-9, abs=1e-12), (key, metric)
    return True


def same_validation(a: dict, b: dict) -> bool:
    """Equal validation blocks, numbers to 1e-9 relative (see :func:`same_metrics`)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b)
        return all(same_validation(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        return all(same_validation(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    else:
        assert a == b
    return True


def test_optimization_matches_local_sweep(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator, tmp_path
):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    res = applied_until_done(kube_cluster, kube_namespace, doc, operator)
    status = res["status"]
    assert status["phase"] == "Succeeded", status
    cond = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert cond["status"] == "True" and cond["observedGeneration"] == res["metadata"]["generation"]

    local = local_run(doc, "Optimization", tmp_path)
    assert status["counts"]["total"] == local["planned_runs"] == 12  # 4 fast x 3 slow, all fast < slow
    assert status["counts"]["succeeded"] == local["successful_runs"]
    assert status["counts"]["failed"] == local["failed_runs"]
    assert status["progress"] == f"{local['planned_runs']}/{local['planned_runs']}"
    assert status["bestConfiguration"]["runId"] == local["best_configuration"]["run_id"]
    assert status["bestConfiguration"]["metrics"]["sharpe_ratio"] == pytest.approx(
        local["best_configuration"]["metrics"]["sharpe_ratio"]
    )
    # the whole table: same run_ids, same metrics
    cluster_result = stored_result(s3_client, s3_bucket, status)
    assert same_metrics(by_run_id(cluster_result), by_run_id(local))
    # the same validation (DSR, PBO over 12,870 splits, verdict), and status shows it
    assert same_validation(cluster_result["validation"], local["validation"])
    assert local["validation"]["pbo"]["splits"] == 12870
    assert status["validation"]["pbo"] == pytest.approx(local["validation"]["pbo"]["pbo"])
    assert status["validation"]["dsr"] == pytest.approx(local["validation"]["deflated_sharpe"]["dsr"])
    risk = next(c for c in status["conditions"] if c["type"] == "OverfitRisk")
    assert risk["status"] == ("True" if local["validation"]["overfit_risk"] else "False")
    assert risk["message"] == local["validation"]["verdict"]
    assert len(status["topResults"]) == min(10, local["planned_runs"])
    # the report: in MinIO, and its heatmap has one cell per (fast, slow) combination
    z = report_opens_in_chromium(
        s3_client, s3_bucket, status, tmp_path, "document.getElementById('heatmap').data[0].z"
    )
    assert len([v for row in z for v in row if v is not None]) == 12
    # one Job, owned by the resource, with our labels only
    jobs = jobs_of(kube_cluster, kube_namespace)
    assert len(jobs) == 1
    assert jobs[0]["metadata"]["ownerReferences"][0]["uid"] == res["metadata"]["uid"]


def same_numbers(a, b, where: str = "") -> bool:
    """The same structure, numbers equal to 1e-9 relative (see same_metrics)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        return all(same_numbers(a[k], b[k], f"{where}.{k}") for k in a)
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        return all(same_numbers(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), where
        return True
    assert a == b, where
    return True


def test_validated_optimization_matches_local_sweep(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator, tmp_path
):
    """Holdout windows and the walk-forward's whole-data runs are runs of the one Job; the selection in
    the shared aggregation gives the cluster and `s1mple optimize` the same validation numbers."""
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    doc["metadata"]["name"] = "ma-crossover-validated"
    doc["spec"]["validation"] = {
        "holdout": {"outOfSample": 0.3, "top": 3},
        "walkForward": {"train": 1500, "test": 500},
    }
    doc["spec"]["parallelConfig"]["runsPerPod"] = 36
    res = applied_until_done(kube_cluster, kube_namespace, doc, operator)
    status = res["status"]
    assert status["phase"] == "Succeeded", (status["conditions"], status["counts"])
    local = local_run(doc, "Optimization", tmp_path)
    # 12 configurations x (in-sample, out-of-sample, whole data with the 2 walk-forward windows' train
    # and test parts as segments)
    assert status["counts"]["total"] == local["planned_runs"] == 12 * 3
    assert status["counts"]["succeeded"] == local["successful_runs"] == 36
    assert len(jobs_of(kube_cluster, kube_namespace)) == 1
    cluster_result = stored_result(s3_client, s3_bucket, status)
    assert len(cluster_result["results"]) == len(local["results"]) == 12  # ranked on in-sample runs
    assert same_metrics(by_run_id(cluster_result), by_run_id(local))
    assert status["bestConfiguration"]["runId"] == local["best_configuration"]["run_id"]
    assert same_numbers(cluster_result["validation"], local["validation"])
    assert len(local["validation"]["walk_forward"]["windows"]) == 2
    # the stitched out-of-sample line is per bar (the chosen configurations' test returns, chained)
    curve = local["validation"]["walk_forward"]["out_of_sample"]["curve"]
    assert len(curve["equity"]) == len(curve["time"]) == 2 * 500
    assert cluster_result["validation"]["walk_forward"]["out_of_sample"]["curve"] == curve
    holdout_best = local["validation"]["holdout"]["best"]
    oos_best = holdout_best["out_of_sample"]["sharpe_ratio"]
    assert status["validation"]["oosPrimaryMetric"] == pytest.approx(oos_best)


def test_variant_test_matches_local_and_has_comparative_analysis(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator, tmp_path
):
    doc = example(VT, kube_namespace, s3_bucket, kube_cluster)
    res = applied_until_done(kube_cluster, kube_namespace, doc, operator)
    status = res["status"]
    assert status["phase"] == "Succeeded", status
    local = local_run(doc, "VariantTest", tmp_path)
    assert status["comparativeAnalysis"] == {k: v for k, v in local["comparative_analysis"].items() if v}
    assert status["best"] == local["comparative_analysis"]["best_sharpe"]
    assert status["counts"]["total"] == local["total_variants"] == 3
    cluster_result = stored_result(s3_client, s3_bucket, status)
    assert same_metrics(
        {r["variant_name"]: r["metrics"] for r in cluster_result["results"]},
        {r["variant_name"]: r["metrics"] for r in local["results"]},
    )
    # the significance of each variant against the baseline: the same bootstrap, the same numbers
    assert same_validation(cluster_result["significance"], local["significance"])
    assert local["comparative_analysis"]["baseline"] == local["results"][0]["variant_name"]
    lines = report_opens_in_chromium(
        s3_client, s3_bucket, status, tmp_path, "document.getElementById('variant-equity').data.length"
    )
    assert lines == 3


def test_kubectl_get_shows_the_columns(kube_cluster, kube_namespace, s3_bucket, operator):
    doc = example(VT, kube_namespace, s3_bucket, kube_cluster)
    kubectl_apply(kube_cluster, doc)
    wait_for_phase(
        kube_cluster,
        "varianttests",
        kube_namespace,
        doc["metadata"]["name"],
        ("Succeeded",),
        operator=operator,
    )
    out = kube_cluster.kubectl("get", "vt", "-n", kube_namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "PHASE", "PROGRESS", "FAILED", "BEST", "AGE"]
    row = out[1].split()
    assert row[0] == doc["metadata"]["name"] and row[1] == "Succeeded" and row[2] == "3/3" and row[3] == "0"
    opt = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    kubectl_apply(kube_cluster, opt)
    wait_for_phase(
        kube_cluster,
        "optimizations",
        kube_namespace,
        opt["metadata"]["name"],
        ("Succeeded",),
        operator=operator,
    )
    out = kube_cluster.kubectl("get", "optimizations", "-n", kube_namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "PHASE", "PROGRESS", "FAILED", "BEST", "PBO", "DSR", "AGE"]
    row = out[1].split()
    assert row[4].startswith("sharpe_ratio=")
    assert 0 <= float(row[5]) <= 1 and 0 <= float(row[6]) <= 1  # 12 feasible runs: PBO is computed


def test_invalid_resource_gets_a_clear_message_and_no_job(kube_cluster, kube_namespace, s3_bucket, operator):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    doc["metadata"]["name"] = "typo"
    doc["spec"]["parameterSpace"][0]["workerPlugin"] = "ma_crosover"  # a typo the API server cannot see
    kubectl_apply(kube_cluster, doc)
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, "typo", ("Invalid",), operator=operator
    )
    cond = next(c for c in res["status"]["conditions"] if c["type"] == "Succeeded")
    assert cond["status"] == "False" and cond["reason"] == "InvalidSpec"
    # names the field and the typo, and suggests the fix
    assert "parameter_space.0.worker_plugin: unknown plugin 'ma_crosover'" in cond["message"]
    assert "did you mean 'ma_crossover'?" in cond["message"]
    assert jobs_of(kube_cluster, kube_namespace) == []
    events = kube_cluster.kubectl("get", "events", "-n", kube_namespace, "-o", "json").stdout
    assert "InvalidSpec" in events


def test_unreachable_storage_is_reported_and_a_fixed_spec_recovers(
    kube_cluster, kube_namespace, s3_bucket, operator
):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    doc["metadata"]["name"] = "nostore"
    doc["spec"]["storage"]["endpoint"] = "http://127.0.0.1:9"  # nothing listens there
    elsewhere = storage_secret(kube_namespace, kube_cluster)  # credentials bound to that endpoint
    elsewhere["metadata"]["name"] = "nostore-credentials"
    elsewhere["metadata"]["annotations"]["s1mple.io/storage-endpoint"] = "http://127.0.0.1:9"
    kubectl_apply(kube_cluster, elsewhere)
    doc["spec"]["storage"]["credentialsSecretRef"] = {"name": "nostore-credentials"}
    kubectl_apply(kube_cluster, doc)

    def storage_condition():
        status = get_resource(kube_cluster, "optimizations", kube_namespace, "nostore").get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["reason"] == "StorageUnavailable"), None)

    cond = wait_for(storage_condition, timeout=120, what="StorageUnavailable")
    assert cond["status"] == "Unknown"
    assert "127.0.0.1:9" in cond["message"] and "Check the endpoint" in cond["message"]
    assert jobs_of(kube_cluster, kube_namespace) == []  # nothing scheduled without storage
    doc["spec"]["storage"]["endpoint"] = kube_cluster.s3_endpoint  # the fix, as a new generation
    doc["spec"]["storage"]["credentialsSecretRef"] = {"name": "s1mple-storage"}
    kubectl_apply(kube_cluster, doc)
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, "nostore", ("Succeeded",), operator=operator
    )
    assert res["status"]["counts"]["succeeded"] > 0


def test_operator_killed_mid_sweep_converges_to_the_same_status(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator, tmp_path
):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    name = doc["metadata"]["name"]
    kubectl_apply(kube_cluster, doc)
    wait_for_phase(kube_cluster, "optimizations", kube_namespace, name, ("Running",), operator=operator)
    operator.kill()  # SIGKILL while the Job runs
    time.sleep(2)
    operator.start()
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded", "Failed"), operator=operator
    )
    status = res["status"]
    local = local_run(doc, "Optimization", tmp_path)
    assert status["phase"] == "Succeeded"
    assert status["counts"]["succeeded"] == local["successful_runs"]
    assert status["counts"]["failed"] == local["failed_runs"]
    assert status["bestConfiguration"]["runId"] == local["best_configuration"]["run_id"]
    assert same_metrics(by_run_id(stored_result(s3_client, s3_bucket, status)), by_run_id(local))
    assert len(jobs_of(kube_cluster, kube_namespace)) == 1  # no duplicate Job


def test_killed_pod_is_retried_and_counts_stay_exact(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator, tmp_path
):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    name = doc["metadata"]["name"]
    doc["spec"]["parallelConfig"].update(maxWorkers=1, runsPerPod=12)  # one pod does everything
    kubectl_apply(kube_cluster, doc)
    agent = kube_cluster.node_agent
    deadline = time.monotonic() + 120
    killed = None
    while time.monotonic() < deadline and killed is None:
        pods = json.loads(kube_cluster.kubectl("get", "pods", "-n", kube_namespace, "-o", "json").stdout)[
            "items"
        ]
        for pod in pods:
            pid = agent.container_pid(kube_namespace, pod["metadata"]["name"], "runner")
            if pid and pod["status"].get("phase") == "Running":
                os.kill(pid, signal.SIGKILL)
                killed = pod["metadata"]["name"]
                break
        time.sleep(0.05)
    assert killed, "no running runner pod to kill"
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded", "Failed"), operator=operator
    )
    local = local_run(doc, "Optimization", tmp_path)
    assert res["status"]["phase"] == "Succeeded", res["status"]
    assert res["status"]["counts"]["succeeded"] == local["successful_runs"]
    assert same_metrics(by_run_id(stored_result(s3_client, s3_bucket, res["status"])), by_run_id(local))
    job = jobs_of(kube_cluster, kube_namespace)[0]
    assert job["status"].get("failed", 0) >= 1  # the killed pod counted, and its index was retried


def test_new_generation_runs_only_new_combinations(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator
):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    name = doc["metadata"]["name"]
    kubectl_apply(kube_cluster, doc)
    first = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded",), operator=operator
    )
    before = first["status"]["counts"]["total"]
    doc["spec"]["parameterSpace"][0]["parameters"]["fast"]["values"].append(25)  # a wider range, from Git
    kubectl_apply(kube_cluster, doc)
    second = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded",), operator=operator
    )
    assert second["metadata"]["generation"] == 2
    assert second["status"]["counts"]["total"] == before + 3
    # the new Job ran only the 3 new combinations; the old generation's Job was retired
    jobs = jobs_of(kube_cluster, kube_namespace)
    assert [j["metadata"]["labels"]["s1mple.io/generation"] for j in jobs] == ["2"]
    manifest_uri = second["status"]["results"]["manifest"]
    key = manifest_uri[len(f"s3://{s3_bucket}/") :]
    manifest = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    assert manifest["cluster"]["todo"] == 3


def _finished(job: dict) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def test_a_run_that_raises_is_a_failed_run_not_a_failed_pod(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator
):
    """A team's plugin (shipped in its runner image, named by S1MPLE_PLUGINS) raises for some params."""
    custom = {"S1MPLE_PLUGINS": "tests.operator.flaky_plugin", "PYTHONPATH": str(ROOT)}
    kube_cluster.node_agent.set_image_map({"registry.example/team-runner:*": {"env": custom}})
    operator.stop()
    # the operator image carries the same plugins, to validate them; the admin allows the team's image
    operator.extra_env = {**custom, "S1MPLE_ALLOWED_RUNNER_IMAGES": "registry.example/team-runner"}
    operator.start()
    blueprint = {
        "name": "fragile",
        "opportunityWorkers": [{"plugin": "fragile_crossover", "params": {"fail_on_slow": [50]}}],
        "planningWorkers": {
            "entryPlanning": [{"plugin": "market_entry_immediate"}],
            "exitPlanning": [{"plugin": "opposite_signal_exit"}],
            "sizePlanning": [{"plugin": "fixed_fraction_sizer", "params": {"fraction": 1.0}}],
        },
    }
    doc = {
        "apiVersion": "s1mple.io/v1alpha1",
        "kind": "Optimization",
        "metadata": {"name": "fragile", "namespace": kube_namespace},
        "spec": {
            "operation": {
                "inline": {
                    "name": "fragile",
                    "strategyLinks": [{"blueprint": blueprint}],
                    "marketData": {"path": "sample:synthetic_daily"},
                    "commission": 0.002,
                }
            },
            "parameterSpace": [
                {
                    "workerCategory": "opportunity_workers",
                    "workerPlugin": "fragile_crossover",
                    "parameters": {"fast": {"values": [5, 10]}, "slow": {"values": [30, 50, 70]}},
                }
            ],
            "parallelConfig": {"maxWorkers": 2, "runsPerPod": 3, "retries": 0},
            "runner": {"image": "registry.example/team-runner:1.0"},
            "storage": {
                "uri": f"s3://{s3_bucket}/research",
                "endpoint": kube_cluster.s3_endpoint,
                "credentialsSecretRef": {"name": "s1mple-storage"},
            },
        },
    }
    kubectl_apply(kube_cluster, doc)
    res = wait_for_phase(
        kube_cluster,
        "optimizations",
        kube_namespace,
        "fragile",
        ("Succeeded", "Failed", "Invalid"),
        operator=operator,
    )
    status = res["status"]
    assert status["phase"] == "Succeeded", status
    counts = status["counts"]
    assert (counts["total"], counts["succeeded"], counts["failed"], counts["running"]) == (6, 4, 2, 0)
    # the resource is done once every run has a record; the Job catches up a moment later
    job = wait_for(
        lambda: next(
            (j for j in jobs_of(kube_cluster, kube_namespace) if _finished(j)),
            None,
        ),
        timeout=60,
        what="the Job to finish",
    )
    assert job["status"].get("succeeded") == 2 and not job["status"].get("failed")  # no pod failed
    result = stored_result(s3_client, s3_bucket, status)
    failed = [r for r in result["results"] if r["status"] != "ok"]
    assert len(failed) == 2
    assert all("cannot handle slow=50" in r["error"] for r in failed)
    assert status["bestConfiguration"]["configuration"]["fragile_crossover"]["slow"] != 50


def test_narrowed_range_needs_no_job(kube_cluster, kube_namespace, s3_bucket, operator):
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    name = doc["metadata"]["name"]
    kubectl_apply(kube_cluster, doc)
    wait_for_phase(kube_cluster, "optimizations", kube_namespace, name, ("Succeeded",), operator=operator)
    doc["spec"]["parameterSpace"][0]["parameters"]["fast"]["values"] = [5, 10]  # every run already stored
    kubectl_apply(kube_cluster, doc)
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded",), operator=operator
    )
    assert res["metadata"]["generation"] == 2
    assert res["status"]["counts"]["total"] == 6 and res["status"]["counts"]["succeeded"] == 6
    assert "jobName" not in res["status"]
    assert jobs_of(kube_cluster, kube_namespace) == []  # generation 1's Job retired, none created


def _keys(s3_client, bucket: str) -> list[str]:
    return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_deletion_keeps_storage_unless_cleanup_is_asked(
    kube_cluster, kube_namespace, s3_bucket, s3_client, operator
):
    kept = example(VT, kube_namespace, s3_bucket, kube_cluster)
    kept["metadata"]["name"] = "kept"
    cleaned = example(VT, kube_namespace, s3_bucket, kube_cluster)
    cleaned["metadata"]["name"] = "cleaned"
    cleaned["spec"]["storage"]["cleanup"] = True
    for doc in (kept, cleaned):
        kubectl_apply(kube_cluster, doc)
    for name in ("kept", "cleaned"):
        wait_for_phase(kube_cluster, "varianttests", kube_namespace, name, ("Succeeded",), operator=operator)
    res = get_resource(kube_cluster, "varianttests", kube_namespace, "cleaned")
    assert "s1mple.io/storage-cleanup" in res["metadata"].get("finalizers", [])
    assert "s1mple.io/storage-cleanup" not in get_resource(
        kube_cluster, "varianttests", kube_namespace, "kept"
    )["metadata"].get("finalizers", [])
    prefix = f"research/{kube_namespace}/varianttest/"
    assert any(k.startswith(prefix + "cleaned/") for k in _keys(s3_client, s3_bucket))
    kube_cluster.kubectl("delete", "varianttest", "kept", "cleaned", "-n", kube_namespace, "--timeout=120s")
    keys = _keys(s3_client, s3_bucket)
    assert not any(k.startswith(prefix + "cleaned/") for k in keys)
    assert any(k.startswith(prefix + "kept/result.json") for k in keys)
