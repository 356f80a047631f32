"""The Kubernetes executor: the few API calls that drive an Indexed Job (create, read, retire, events).

The runs themselves happen in the Job's pods (``s1mple-runner``) and meet the local executor's contract
through the store; this module only talks to the API server.  Every call is idempotent, so a restarted
operator repeating one is harmless (an existing Job is found, not duplicated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s1mple.executors.apiserver import ApiError, ApiServer


@dataclass(frozen=True)
class JobState:
    """What the controller needs from a Job's status."""

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
    """``managed_by``: the label selector of the Jobs this executor made (their labels are the caller's:
    :mod:`s1mple.kube.jobs` writes them), so earlier generations' Jobs can be found to retire."""

    def __init__(self, managed_by: str, api: ApiServer | None = None):
        self.managed_by = managed_by
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
        listed = self.api.get(_jobs(namespace), labelSelector=self.managed_by)
        retired = []
        for job in listed.get("items") or []:
            meta = job["metadata"]
            owners = meta.get("ownerReferences") or []
            if meta["name"] != keep and any(o.get("uid") == owner_uid for o in owners):
                try:
                    background = {"propagationPolicy": "Background"}
                    self.api.delete(f"{_jobs(namespace)}/{meta['name']}", background)
                    retired.append(meta["name"])
                except ApiError as exc:
                    if exc.status != 404:
                        raise
        return retired

    def pod_creation_failure(self, namespace: str, job_name: str) -> str | None:
        """The Job controller's latest FailedCreate message, if no pod was created since (a missing
        ServiceAccount, a quota, an admission webhook): the Job's status does not say it."""
        listed = self.api.get(
            f"/api/v1/namespaces/{namespace}/events",
            fieldSelector=f"involvedObject.kind=Job,involvedObject.name={job_name}",
        )
        latest: dict[str, tuple[str, str]] = {}
        for event in listed.get("items") or []:
            when = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""
            reason = event.get("reason") or ""
            if reason in ("FailedCreate", "SuccessfulCreate") and when >= latest.get(reason, ("", ""))[0]:
                latest[reason] = (when, event.get("message") or reason)
        failed, created = latest.get("FailedCreate"), latest.get("SuccessfulCreate")
        if failed is None or (created is not None and created[0] >= failed[0]):
            return None
        return failed[1]

    def read_config_map_key(self, namespace: str, name: str, key: str) -> str:
        """One key of a ConfigMap; the error names only what the resource named (never the other keys)."""
        data = self.api.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}").get("data") or {}
        if key not in data:
            raise KeyError(f"ConfigMap {name!r} has no key {key!r}")
        return data[key]

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret a resource names for storage (None: missing); whether it may be used is decided by
        :mod:`s1mple.kube.credentials`."""
        try:
            return self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise


def _jobs(namespace: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs"
