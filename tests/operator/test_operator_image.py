"""The operator as it ships: config/deploy's Deployment, run by the node agent from the built operator
image, reconciles the example resources of config/resources with runs in the built runner image.

(The other end-to-end tests, test_operator_cluster.py, run `s1mple operator` as a subprocess of the test,
because they kill it, restart it or give it a team's plugin; their runs also use the runner image.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.cluster.cluster import free_ports, version
from tests.cluster.fixtures import wait_for
from tests.operator.harness import ROOT, example, kubectl_apply, storage_secret, wait_for_phase
from tests.operator.test_operator_cluster import OPT, VT

pytestmark = pytest.mark.cluster

SYSTEM_NS = "s1mple-system"
OPERATOR = f"ghcr.io/s1mple/s1mple-operator:{version()}"
RUNNER = f"ghcr.io/s1mple/s1mple-runner:{version()}"


def deploy_docs(health_port: int) -> list[dict]:
    """config/deploy as a user applies it; only the health port moves off 8080 (the test cluster's pods
    share the host's network with everything else on the machine)."""
    docs = []
    for f in ("rbac.yaml", "operator.yaml"):
        docs += [d for d in yaml.safe_load_all((ROOT / "config/deploy" / f).read_text()) if d]
    docs.sort(key=lambda d: d["kind"] != "Namespace")  # the namespace before what lives in it
    for d in docs:
        if d["kind"] == "Deployment":
            c = d["spec"]["template"]["spec"]["containers"][0]
            c["args"] = [a.replace(":8080/", f":{health_port}/") for a in c["args"]]
            c["ports"] = [{**p, "containerPort": health_port} for p in c.get("ports", [])]
    return docs


def operator_pod(kube_api) -> dict | None:
    items = kube_api.list(
        f"/api/v1/namespaces/{SYSTEM_NS}/pods",
        label_selector="app.kubernetes.io/name=s1mple,app.kubernetes.io/component=operator",
    )
    running = [
        p
        for p in items
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]
    return running[0] if running else None


def process_uids(pid: int) -> set[int]:
    """Real uids of a process and all its descendants, as the host sees them."""
    uids, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            uids.add(int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1]))
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return uids


@pytest.fixture
def deployed_operator(kube_cluster, kube_api, crds, built_images):
    docs = deploy_docs(free_ports(1)[0])
    for d in docs:
        kubectl_apply(kube_cluster, d)
    try:
        pod = wait_for(
            lambda: operator_pod(kube_api), timeout=300, what="the operator Deployment's pod Running"
        )
        yield pod
    finally:
        for d in reversed(docs):
            kube_cluster.kubectl(
                "delete",
                d["kind"].lower(),
                d["metadata"]["name"],
                *(["-n", d["metadata"]["namespace"]] if d["metadata"].get("namespace") else []),
                "--ignore-not-found",
                "--wait=true",
                "--timeout=180s",
                check=False,
                timeout=200,
            )


def test_examples_succeed_with_the_operator_deployment_and_runner_image(
    kube_cluster, kube_api, kube_namespace, s3_bucket, deployed_operator
):
    pod = deployed_operator
    name = pod["metadata"]["name"]
    status = pod["status"]["containerStatuses"][0]
    assert status["image"] == OPERATOR and status["imageID"].startswith("sha256:")
    pid = kube_cluster.node_agent.container_pid(SYSTEM_NS, name, "operator")
    # the operator's python runs as 65532 (only the unshare/mount wrapper above it is root)
    wait_for(lambda: 65532 in process_uids(pid), timeout=60, what="the operator's process as uid 65532")

    kubectl_apply(kube_cluster, storage_secret(kube_namespace, kube_cluster))
    for path in (OPT, VT):
        kubectl_apply(kube_cluster, example(path, kube_namespace, s3_bucket, kube_cluster))
    try:
        for plural, path in (("optimizations", OPT), ("varianttests", VT)):
            doc = yaml.safe_load((ROOT / path).read_text())
            done = wait_for_phase(
                kube_cluster,
                plural,
                kube_namespace,
                doc["metadata"]["name"],
                ("Succeeded", "Failed"),
                timeout=900,
            )
            assert done["status"]["phase"] == "Succeeded", json.dumps(done["status"])[:3000]
    except AssertionError:
        log = kube_cluster.node_agent.container_log(SYSTEM_NS, name, "operator")
        raise AssertionError(f"operator pod log tail:\n{log[-4000:]}") from None

    runner_pods = kube_api.list(f"/api/v1/namespaces/{kube_namespace}/pods")
    assert runner_pods, "the runs' pods"
    for p in runner_pods:
        cs = p["status"]["containerStatuses"][0]
        assert cs["image"] == RUNNER and cs["imageID"].startswith("sha256:"), cs
