"""pytest plugin: a real test cluster per session, a namespace and a bucket per test.

Registered in tests/conftest.py with ``pytest_plugins = ["tests.cluster.fixtures"]``.

Fixtures:

* ``kube_cluster`` (session): :class:`KubeCluster`, started on first use (about
  3-15 s) and stopped at the end of the session.  ``S1MPLE_CLUSTER_REUSE=<dir>``
  attaches to a cluster started by ``tests/cluster/up`` instead (faster when
  iterating; e.g. ``S1MPLE_CLUSTER_REUSE=/tmp/s1mple-cluster``).
* ``kube_api`` (session): the project's one REST client,
  :class:`~s1mple.executors.apiserver.ApiServer`, as the cluster's admin:
  ``get``/``list``/``create``/``patch``/``delete`` on plain API paths, dicts in and
  out, :class:`~s1mple.executors.apiserver.ApiError` (with ``.status``) on errors.
* ``kube_namespace``: a fresh namespace (its ``default`` ServiceAccount exists),
  deleted after the test.
* ``s3_client``: a boto3 S3 client for the cluster's MinIO.
* ``s3_bucket``: a fresh bucket, emptied and deleted after the test.

Tests that use them are marked ``@pytest.mark.cluster``.  When the binaries are
not built (``tests/cluster/build``) those tests are skipped, or fail if ``CI``
is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from s1mple.executors.apiserver import ApiError, ApiServer
from tests.cluster import cluster as _cluster


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cluster: needs the real test cluster of tests/cluster (etcd, kube-apiserver, "
        "kube-controller-manager, node agent, MinIO); see tests/cluster/README.md",
    )


def wait_for(predicate, timeout: float = 120, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled again until the deadline
            last_exc = e
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}"
                + (f" (last error: {last_exc!r})" if last_exc else "")
            )
        time.sleep(interval)


class NodeAgentHandle:
    """The node agent of a cluster: where pods' logs and pids are, the image map."""

    def __init__(self, c: _cluster.Cluster):
        self._c = c
        self.node_name = c.node_name
        self.pod_log_dir: Path = c.pod_log_dir
        self.image_map_path: Path = c.image_map_path

    @property
    def pid(self) -> int:
        return self._c.procs["node-agent"].pid

    def alive(self) -> bool:
        return self._c.procs["node-agent"].alive()

    def container_log(self, namespace: str, pod: str, container: str = "main") -> str:
        p = self.pod_log_dir / namespace / pod / f"{container}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def container_pid(self, namespace: str, pod: str, container: str = "main") -> int | None:
        p = self.pod_log_dir / namespace / pod / f"{container}.pid"
        try:
            return int(p.read_text().strip())
        except (OSError, ValueError):
            return None

    def set_image_map(self, mapping: dict) -> None:
        """Process-mode images: pattern -> PATH prefix (or {path, command, env, workingDir}), added to
        the cluster's defaults (PROCESS_IMAGES); read per pod."""
        tmp = self.image_map_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**_cluster.PROCESS_IMAGES, **mapping}, indent=2))
        tmp.replace(self.image_map_path)


class KubeCluster:
    """What tests need to talk to the session's cluster."""

    def __init__(self, c: _cluster.Cluster):
        self.cluster = c
        self.kubeconfig: Path = c.kubeconfig
        self.api_url: str = c.api_url
        self.s3_endpoint: str = c.s3_endpoint
        self.s3_access_key: str = c.s3_access_key
        self.s3_secret_key: str = c.s3_secret_key
        self.s3_region = "us-east-1"
        self.kubectl_path: Path = c.kubectl
        self.state_dir: Path = c.dir
        self.log_dir: Path = c.log_dir  # etcd.log, kube-apiserver.log, ..., node-agent.log
        self.pod_log_dir: Path = c.pod_log_dir  # <ns>/<pod>/<container>.log
        self.node_agent = NodeAgentHandle(c)
        self.env: dict[str, str] = c.env()  # KUBECONFIG, AWS_*, PATH with kubectl first

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def process_env(self) -> dict[str, str]:
        """os.environ plus this cluster's variables, for subprocesses (e.g. the operator)."""
        return {**os.environ, **self.env}


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory) -> KubeCluster:
    reuse = os.environ.get("S1MPLE_CLUSTER_REUSE")
    if reuse:
        c = _cluster.Cluster(reuse, owned=False)
        if not (c.load() and c.running()):
            pytest.fail(f"S1MPLE_CLUSTER_REUSE={reuse}: no running cluster there (tests/cluster/up)")
        yield KubeCluster(c)
        return
    missing = _cluster.missing_binaries()
    if missing:
        msg = f"test-cluster binaries not built, run tests/cluster/build (missing: {', '.join(missing)})"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    c = _cluster.Cluster(tmp_path_factory.mktemp("s1mple-cluster"), owned=True)
    try:
        c.start()
    except _cluster.ClusterError as e:
        pytest.fail(f"test cluster did not start: {e}")
    try:
        yield KubeCluster(c)
    finally:
        c.stop()


def _require_images(*names: str) -> dict[str, str]:
    archives = _cluster.image_archives().items()
    index = {ref: a for ref, a in archives if ref.rsplit("/", 1)[-1].split(":")[0] in names}
    missing = [ref for ref, archive in index.items() if not Path(archive).exists()]
    if missing:
        msg = f"images not built, run tests/cluster/images (missing: {', '.join(missing)})"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return index


@pytest.fixture(scope="session")
def built_images() -> dict[str, str]:
    """reference -> OCI archive of s1mple-operator and s1mple-runner (tests/cluster/images, run by
    `make test`); the node agent runs pods of these images from their filesystem."""
    return _require_images("s1mple-operator", "s1mple-runner")


@pytest.fixture(scope="session")
def runner_image() -> dict[str, str]:
    """Like built_images, for tests that run only the runner image."""
    return _require_images("s1mple-runner")


@pytest.fixture(scope="session")
def kube_api(kube_cluster) -> ApiServer:
    api = kube_cluster.cluster.rest()
    yield api
    api.close()


def _dns_name(prefix: str, nodeid: str, maxlen: int = 63) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", nodeid.split("::")[-1].lower()).strip("-")
    suffix = secrets.token_hex(3)
    base = base[: maxlen - len(prefix) - len(suffix) - 2].strip("-")
    return f"{prefix}-{base}-{suffix}" if base else f"{prefix}-{suffix}"


@pytest.fixture
def kube_namespace(kube_api: ApiServer, request) -> str:
    name = _dns_name("t", request.node.nodeid)
    kube_api.create(
        "/api/v1/namespaces", {"metadata": {"name": name, "labels": {"s1mple.test/namespace": "true"}}}
    )
    # Pods are only admitted once the namespace's default ServiceAccount exists.
    wait_for(
        lambda: kube_api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
        timeout=60,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    with contextlib.suppress(ApiError):
        kube_api.delete(f"/api/v1/namespaces/{name}", propagationPolicy="Background")


@pytest.fixture(scope="session")
def s3_client(kube_cluster):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=kube_cluster.s3_endpoint,
        aws_access_key_id=kube_cluster.s3_access_key,
        aws_secret_access_key=kube_cluster.s3_secret_key,
        region_name=kube_cluster.s3_region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


@pytest.fixture
def s3_bucket(s3_client, request) -> str:
    name = _dns_name("t", request.node.nodeid)
    s3_client.create_bucket(Bucket=name)
    yield name
    with contextlib.suppress(Exception):
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                s3_client.delete_objects(Bucket=name, Delete={"Objects": objs})
        s3_client.delete_bucket(Bucket=name)
