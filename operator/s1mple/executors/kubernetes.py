"""The Kubernetes executor: the few API calls that drive an Indexed Job (create, read, retire, events).

The runs themselves happen in the Job's pods (``s1mple-runner``) and meet the local executor's contract
through the store; this module only talks to the API server.  Every call is idempotent, so a restarted
operator repeating one is harmless (an existing Job is found, not duplicated).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


def api_client() -> client.ApiClient:
    """An API client from the in-cluster service account, else the current kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


@dataclass(frozen=True)
class JobState:
    """What the operator needs from a Job's status."""

    name: str
    active: int
    succeeded: int
    failed: int
    finished: bool
    complete: bool
    failed_indexes: str
    message: str

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> JobState:
        status = job.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
        failed = conditions.get("Failed")
        return cls(
            name=job["metadata"]["name"],
            active=status.get("active") or 0,
            succeeded=status.get("succeeded") or 0,
            failed=status.get("failed") or 0,
            finished="Complete" in conditions or failed is not None,
            complete="Complete" in conditions,
            failed_indexes=status.get("failedIndexes") or "",
            message=(failed or {}).get("message") or (failed or {}).get("reason") or "",
        )


class KubernetesExecutor:
    def __init__(self, api: client.ApiClient | None = None):
        self.api = api or api_client()
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)

    def ensure_job(self, job: dict[str, Any]) -> bool:
        """Create the Job unless it exists; True when this call created it."""
        try:
            self.batch.create_namespaced_job(job["metadata"]["namespace"], job)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def read_job(self, namespace: str, name: str) -> JobState | None:
        try:
            job = self.batch.read_namespaced_job(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return JobState.from_job(json.loads(job.data))

    def retire_jobs(self, namespace: str, owner_uid: str, keep: str) -> list[str]:
        """Delete this resource's Jobs of earlier generations (their finished runs stay in storage)."""
        jobs = self.batch.list_namespaced_job(
            namespace, label_selector="app.kubernetes.io/managed-by=s1mple-operator"
        )
        retired = []
        for job in jobs.items:
            owners = job.metadata.owner_references or []
            if job.metadata.name != keep and any(o.uid == owner_uid for o in owners):
                try:
                    self.batch.delete_namespaced_job(
                        job.metadata.name, namespace, propagation_policy="Background"
                    )
                    retired.append(job.metadata.name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        return retired

    def read_config_map_key(self, namespace: str, name: str, key: str) -> str:
        cm = self.core.read_namespaced_config_map(name, namespace)
        data = cm.data or {}
        if key not in data:
            raise KeyError(f"ConfigMap {name!r} has no key {key!r} (keys: {sorted(data)})")
        return data[key]

    def read_secret_keys(self, namespace: str, name: str, keys: tuple[str, ...]) -> dict[str, str]:
        """The storage credentials a resource names: the operator writes manifests and reads results too."""
        import base64

        secret = self.core.read_namespaced_secret(name, namespace)
        data = secret.data or {}
        missing = [k for k in keys if k not in data]
        if missing:
            raise KeyError(f"Secret {name!r} has no key(s) {missing} (keys: {sorted(data)})")
        return {k: base64.b64decode(data[k]).decode() for k in keys}
