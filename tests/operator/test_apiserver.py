"""The operator's own API client against the real API server: each way of logging in, and its errors."""

from __future__ import annotations

import base64
import threading

import kopf
import pytest
import yaml

from s1mple.executors.apiserver import STRATEGIC_MERGE_PATCH, ApiError, ApiServer
from s1mple.executors.kubernetes import KubernetesExecutor
from s1mple.kube.names import MANAGED_BY

pytestmark = pytest.mark.cluster


def _kubeconfig(kube_cluster) -> tuple[dict, dict]:
    doc = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    return doc["clusters"][0]["cluster"], doc["users"][0]["user"]


def test_client_certificate_from_files_and_from_kubeconfig_data(kube_cluster, tmp_path):
    cluster, user = _kubeconfig(kube_cluster)
    files = {}
    for field in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        source = cluster if field.startswith("certificate-authority") else user
        path = tmp_path / field
        path.write_bytes(base64.b64decode(source[field]))
        files[field] = str(path)
    by_path = kopf.ConnectionInfo(
        server=cluster["server"],
        ca_path=files["certificate-authority-data"],
        certificate_path=files["client-certificate-data"],
        private_key_path=files["client-key-data"],
    )
    by_data = kopf.ConnectionInfo(
        server=cluster["server"],
        ca_data=cluster["certificate-authority-data"],
        certificate_data=user["client-certificate-data"],
        private_key_data=user["client-key-data"],
    )
    for info in (by_path, by_data):
        api = ApiServer(login=lambda info=info: info)
        assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_a_token_is_a_service_account_and_errors_carry_the_status(kube_cluster, kube_api, kube_namespace):
    ns = kube_namespace
    kube_api.create(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "op"}})
    token = kube_api.create(
        f"/api/v1/namespaces/{ns}/serviceaccounts/op/token", {"spec": {"expirationSeconds": 600}}
    )["status"]["token"]
    cluster, _ = _kubeconfig(kube_cluster)
    info = kopf.ConnectionInfo(
        server=cluster["server"], ca_data=cluster["certificate-authority-data"], token=token
    )
    executor = KubernetesExecutor("=".join(MANAGED_BY), ApiServer(login=lambda: info))
    # authenticated as the ServiceAccount (403, not 401), which has no RBAC in this namespace
    with pytest.raises(ApiError) as err:
        executor.read_job(ns, "nope")
    assert err.value.status == 403
    assert f"system:serviceaccount:{ns}:op" in str(err.value)


def test_a_rejected_token_logs_in_again_once_then_says_unauthorized(kube_cluster):
    cluster, _ = _kubeconfig(kube_cluster)
    logins = []

    def login() -> kopf.ConnectionInfo:
        logins.append(1)
        return kopf.ConnectionInfo(
            server=cluster["server"], ca_data=cluster["certificate-authority-data"], token="not-a-token"
        )

    api = ApiServer(login=login)
    with pytest.raises(ApiError) as err:
        api.get("/api/v1/namespaces/default")
    assert err.value.status == 401
    assert len(logins) == 2  # at start, and once more after the 401 (a rotated token would be re-read)


def test_watch_and_patch_see_each_other(kube_api, kube_namespace):
    """The calls the tests and the node agent add: a merge patch, a strategic merge patch, a watch."""
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    kube_api.create(path, {"metadata": {"name": "w"}, "data": {"a": "1"}})
    listed = kube_api.get(path)
    events = []

    def watch() -> None:
        params = {"resourceVersion": listed["metadata"]["resourceVersion"], "timeoutSeconds": "20"}
        for event in kube_api.watch(path, params, stop):
            events.append((event["type"], event["object"]["data"]))
            if len(events) == 2:
                stop.set()

    stop = threading.Event()
    watcher = threading.Thread(target=watch)
    watcher.start()
    kube_api.patch(f"{path}/w", {"data": {"b": "2"}})
    kube_api.patch(f"{path}/w", {"data": {"c": "3"}}, STRATEGIC_MERGE_PATCH)
    watcher.join(60)
    assert events == [("MODIFIED", {"a": "1", "b": "2"}), ("MODIFIED", {"a": "1", "b": "2", "c": "3"})]
    assert [c["metadata"]["name"] for c in kube_api.list(path) if c["metadata"]["name"] == "w"] == ["w"]


def test_an_unreachable_api_server_is_an_api_error_without_a_status():
    info = kopf.ConnectionInfo(server="https://127.0.0.1:9", insecure=True)
    with pytest.raises(ApiError) as err:
        ApiServer(login=lambda: info, timeout=2).get("/api/v1/namespaces")
    assert err.value.status is None and "unreachable" in str(err.value)
