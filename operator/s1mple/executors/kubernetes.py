"""The Kubernetes executor: the few API calls that drive an Indexed Job (create, read, retire, events).

The runs themselves happen in the Job's pods (``s1mple-runner``) and meet the local executor's contract
through the store; this module only talks to the API server.  Every call is idempotent, so a restarted
operator repeating one is harmless (an existing Job is found, not duplicated).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from s1mple.executors.apiserver import ApiError, ApiServer
from s1mple.kube.names import MANAGED_BY


@dataclass(frozen=True)
class JobState:
    """What the operator needs from a Job's status."""

    name: str
    active: int
    succeeded: int
    failed: int
    finished: bool
    suspended: bool  # spec.suspend: queued (Kueue admits it by setting false) or paused
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
            suspended=bool((job.get("spec") or {}).get("suspend")),
            complete="Complete" in conditions,
            failed_indexes=status.get("failedIndexes") or "",
            message=(failed or {}).get("message") or (failed or {}).get("reason") or "",
        )


class KubernetesExecutor:
    def __init__(self, api: ApiServer | None = None):
        self.api = api or ApiServer()

    def ensure_job(self, job: dict[str, Any]) -> bool:
        """Create the Job unless it exists; True when this call created it."""
        try:
            self.api.create(_jobs(job["metadata"]["namespace"]), job)
            return True
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise

    def read_job(self, namespace: str, name: str) -> JobState | None:
        try:
            return JobState.from_job(self.api.get(f"{_jobs(namespace)}/{name}"))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def retire_jobs(self, namespace: str, owner_uid: str, keep: str) -> list[str]:
        """Delete this resource's Jobs of earlier generations (their finished runs stay in storage)."""
        listed = self.api.get(_jobs(namespace), labelSelector="=".join(MANAGED_BY))
        retired = []
        for job in listed.get("items") or []:
            meta = job["metadata"]
            owners = meta.get("ownerReferences") or []
            if meta["name"] != keep and any(o.get("uid") == owner_uid for o in owners):
                try:
                    self.api.delete(f"{_jobs(namespace)}/{meta['name']}")
                    retired.append(meta["name"])
                except ApiError as exc:
                    if exc.status != 404:
                        raise
        return retired

    def read_config_map_key(self, namespace: str, name: str, key: str) -> str:
        data = self.api.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}").get("data") or {}
        if key not in data:
            raise KeyError(f"ConfigMap {name!r} has no key {key!r} (keys: {sorted(data)})")
        return data[key]

    def read_secret_keys(self, namespace: str, name: str, keys: tuple[str, ...]) -> dict[str, str]:
        """The storage credentials a resource names: the operator writes manifests and reads results too."""
        data = self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}").get("data") or {}
        missing = [k for k in keys if k not in data]
        if missing:
            raise KeyError(f"Secret {name!r} has no key(s) {missing} (keys: {sorted(data)})")
        return {k: base64.b64decode(data[k]).decode() for k in keys}


def _jobs(namespace: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs"
