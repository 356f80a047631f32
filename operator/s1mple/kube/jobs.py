"""The Indexed Job of one resource generation, as a plain dict (tested as data, applied by the handlers).

Each completion index runs ``runsPerPod`` runs of the plan (the layout in the plan manifest, see
:mod:`s1mple_engine.chunks`).  A run that fails is a failed *run*, recorded in storage by the runner, and
the pod still exits 0; a pod fails only for infrastructure errors (storage unreachable: exit 1, retried up
to ``retries`` times per index) or a plan it cannot use (exit 3: the index fails at once, retrying cannot
help).  A pod stopped by SIGTERM before its runs are done (deleted, drained, evicted, preempted) exits 4
(or 143 if the signal came before the runner's handler was installed): its index is retried without
counting against ``retries``, and the retry skips what was stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from s1mple.kube.names import API_VERSION, child_labels
from s1mple.kube.spec import KUEUE_QUEUE_LABEL, RunnerSpec, StorageSpec, k8s_env_list
from s1mple_engine.runner import EXIT_BAD_MANIFEST, EXIT_INTERRUPTED, EXIT_SIGTERM  # podFailurePolicy codes

RUNNER_CONTAINER = "runner"
#: Seconds a pod gets beyond its runs' timeouts (interpreter start, data load, storage writes).
POD_SLACK_SECONDS = 120
TTL_AFTER_FINISHED = 24 * 3600
RUNNER_UID = 65532
MAX_RUNS_PER_POD = 50_000


@dataclass(frozen=True)
class JobPlan:
    """Everything the Job depends on; the same plan always gives the same Job."""

    name: str
    namespace: str
    owner: dict[str, str]  # apiVersion, kind, name, uid of the resource
    generation: int
    total_runs: int
    runs_per_pod: int
    max_workers: int
    timeout_per_run: int
    retries: int
    store_uri: str  # the resource's folder in storage
    plan_id: str  # the pods read plans/<plan_id>/ under it
    storage: StorageSpec
    runner: RunnerSpec
    max_failed_indexes: int | None = None  # None: default_max_failed_indexes

    @property
    def completions(self) -> int:
        return max(1, math.ceil(self.total_runs / self.runs_per_pod))


def default_max_failed_indexes(completions: int) -> int:
    """A quarter of the indexes (at least one).  An index fails only for infrastructure reasons, after
    all its retries (a failed *run* still exits 0): when a quarter of them did, the cause is the image,
    storage or the plan, not one pod's bad luck, so the Job stops instead of burning the rest of its
    pods on the same error, and the resource reports Failed with the runs that are missing."""
    return max(1, math.ceil(completions / 4))
#: activeDeadlineSeconds is an int64 in the API but validated to int32 range by some servers and tools;
#: a longer deadline (68 years) is no deadline anyway.
MAX_DEADLINE_SECONDS = 2**31 - 1


def pod_deadline_seconds(runs_per_pod: int, timeout_per_run: int) -> int:
    """A pod that outlives all its runs' timeouts is hung: the kubelet kills it and the index retries."""
    return min(MAX_DEADLINE_SECONDS, runs_per_pod * timeout_per_run + POD_SLACK_SECONDS)


def runs_per_pod_for(total_runs: int, max_workers: int, requested: int | None) -> int:
    """Runs per pod: as requested, else one wave of pods.  Each further wave costs a pod start and the
    Job controller's ~1 s before it replaces a finished pod (100,000 runs on 2 workers: 28.7 s in one
    wave, 42.9 s in ten).  A retried index does not redo the runs it stored, so big pods lose little to a
    retry; the cap bounds a pod's lifetime (its activeDeadlineSeconds) and the run lines it holds."""
    if requested:
        return max(1, requested)
    return max(1, min(MAX_RUNS_PER_POD, math.ceil(total_runs / max_workers)))


def indexed_job(plan: JobPlan) -> dict[str, Any]:
    labels = child_labels(plan.owner["kind"], plan.owner["name"], plan.generation)
    deadline = pod_deadline_seconds(plan.runs_per_pod, plan.timeout_per_run)
    waves = math.ceil(plan.completions / plan.max_workers)
    queue = plan.runner.queue_name
    failed_indexes = plan.max_failed_indexes or default_max_failed_indexes(plan.completions)
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": plan.name,
            "namespace": plan.namespace,
            "labels": {**labels, KUEUE_QUEUE_LABEL: queue} if queue else labels,
            "annotations": {"s1mple.io/store": plan.store_uri, "s1mple.io/plan": plan.plan_id},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": plan.owner["kind"],
                    "name": plan.owner["name"],
                    "uid": plan.owner["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": plan.completions,
            "parallelism": min(plan.max_workers, plan.completions),
            "backoffLimitPerIndex": plan.retries,
            # a hopeless Job (bad image, storage gone) fails early instead of running every index
            "maxFailedIndexes": min(failed_indexes, plan.completions),
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailIndex",
                        "onExitCodes": {
                            "containerName": RUNNER_CONTAINER,
                            "operator": "In",
                            "values": [EXIT_BAD_MANIFEST],
                        },
                    },
                    # stopped by SIGTERM mid-chunk (kubectl delete pod, drain): not the runs' fault
                    {
                        "action": "Ignore",
                        "onExitCodes": {
                            "containerName": RUNNER_CONTAINER,
                            "operator": "In",
                            "values": [EXIT_INTERRUPTED, EXIT_SIGTERM],
                        },
                    },
                    # evictions and preemptions are not the runner's fault: retry without counting
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "activeDeadlineSeconds": min(
                MAX_DEADLINE_SECONDS, deadline * waves * (plan.retries + 1) + POD_SLACK_SECONDS
            ),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": _pod_metadata(plan.runner, labels),
                "spec": _pod_spec(plan, deadline),
            },
        },
    }
    if queue:  # Kueue admits a Job by unsuspending it
        job["spec"]["suspend"] = True
    return job


def _pod_metadata(runner: RunnerSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The user's labels and annotations, then ours (validated not to overlap, see RunnerSpec)."""
    metadata: dict[str, Any] = {"labels": {**runner.labels, **labels}}
    if runner.annotations:
        metadata["annotations"] = dict(runner.annotations)
    return metadata


def _pod_spec(plan: JobPlan, deadline: int) -> dict[str, Any]:
    runner = plan.runner
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": deadline,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": RUNNER_CONTAINER,
                "image": runner.image,
                "command": ["s1mple-runner"],
                "args": [
                    "--store",
                    plan.store_uri,
                    "--plan",
                    plan.plan_id,
                    "--timeout-per-run",
                    str(plan.timeout_per_run),
                ],
                "env": _env(plan.storage),
                "resources": runner.resources.model_dump(),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if runner.image_pull_policy:
        spec["containers"][0]["imagePullPolicy"] = runner.image_pull_policy
    if runner.node_selector:
        spec["nodeSelector"] = dict(runner.node_selector)
    if runner.tolerations:
        spec["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in runner.tolerations]
    if runner.service_account_name:
        spec["serviceAccountName"] = runner.service_account_name
    if runner.priority_class_name:
        spec["priorityClassName"] = runner.priority_class_name
    if runner.affinity:
        spec["affinity"] = runner.affinity.model_dump(by_alias=True, exclude_none=True)
    if runner.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s.name} for s in runner.image_pull_secrets]
    return spec


def _env(storage: StorageSpec) -> list[dict[str, Any]]:
    env = k8s_env_list(
        {
            "AWS_ENDPOINT_URL": storage.endpoint,
            "AWS_DEFAULT_REGION": storage.region or "us-east-1",
            # the root filesystem is read-only: everything that writes goes to the /tmp emptyDir
            "HOME": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    # the Job controller also injects JOB_COMPLETION_INDEX; the annotation is the documented source
    env.append(
        {
            "name": "S1MPLE_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        }
    )
    ref = storage.credentials_secret_ref
    if ref is not None:
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the Secret's fixed key names
            env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": var}}})
    return env
