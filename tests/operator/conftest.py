"""Fixtures of the operator's cluster tests: the CRDs installed once, the operator of one test."""

from __future__ import annotations

import pytest

from tests.operator.harness import ROOT, OperatorProcess, kubectl_apply, storage_secret


@pytest.fixture(scope="session")
def crds(kube_cluster):
    kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/optimizations.s1mple.io",
        "crd/varianttests.s1mple.io",
    )
    return True


@pytest.fixture
def operator(kube_cluster, kube_namespace, crds, tmp_path):
    op = OperatorProcess(kube_cluster, kube_namespace, tmp_path / "operator.log")
    kubectl_apply(kube_cluster, storage_secret(kube_namespace, kube_cluster))
    op.start()
    yield op
    op.stop()
