"""What a cluster needs beyond the research spec: operation source, market data, storage, runner, pods.

These models are composed with the local optimization/variant configs into the CRD specs
(:mod:`s1mple.kube.resources`), so a field means the same thing in a YAML file and in a resource.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from importlib.metadata import version
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from s1mple_engine.config import Operation, SpecModel

# The runner image of a resource that names none: the controller's setting (the chart's runner.image,
# S1MPLE_RUNNER_IMAGE) or else this release's image, tagged with the s1mple distribution's version
# (pyproject.toml), the tag tests/cluster/images gives the image it builds.
DEFAULT_RUNNER_IMAGE = (
    os.environ.get("S1MPLE_RUNNER_IMAGE") or f"ghcr.io/s1mple/s1mple-runner:{version('s1mple')}"
)
_K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
#: The Kueue label that names the LocalQueue a Job waits in (https://kueue.sigs.k8s.io).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: Label/annotation prefixes the controller and the Job controller own: a user value would clash.
RESERVED_PREFIXES = ("s1mple.io/", "batch.kubernetes.io/")
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ANNOTATIONS_BYTES = 256 * 1024  # the API server's limit on all annotations of one object


#: A non-negative Kubernetes quantity (``500m``, ``1.5``, ``2Gi``, ``1e3``): the API server's own syntax
#: would let ``-1`` through to a Job it then rejects.
QUANTITY = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][0-9]+|[numkMGTPE]|[KMGTPE]i)?$"


def _quantity_text(value: Any) -> Any:
    """A quantity is int-or-string in Kubernetes (``cpu: 2`` and ``cpu: "2"`` are the same): keep the text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: The CRD says int-or-string with the pattern (as controller-gen writes quantities); the controller checks
#: the text, so a negative integer is refused with the same message as "-1".
Quantity = Annotated[
    str,
    StringConstraints(pattern=QUANTITY, max_length=64),
    BeforeValidator(_quantity_text),
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]


def key_syntax_problem(key: str) -> str | None:
    """Why ``key`` is not a syntactically valid label/annotation key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if not _NAME_PART.match(name) or len(name) > 63:
        return (
            f"key {key!r}: the name part must be 1-63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    if "/" in key and (not _SUBDOMAIN.match(prefix) or len(prefix) > 253):
        return f"key {key!r}: the prefix must be a lowercase DNS subdomain (e.g. example.com/)"
    return None


def label_value_problem(key: str, value: str) -> str | None:
    """Why ``value`` is not a valid value of label ``key`` (pod labels and nodeSelector alike), or None."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            f"value {value[:70]!r} of {key!r}: at most 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return None


def label_problems(
    labels: dict[str, str], key_problem: Callable[[str], str | None] = key_syntax_problem
) -> list[str]:
    """Every key (by ``key_problem``) and value of ``labels`` that may not be a label, said at once."""
    problems = [p for p in map(key_problem, labels) if p]
    return problems + [p for k, v in labels.items() if (p := label_value_problem(k, v))]


def refuse(problems: list[str]) -> None:
    """A validator's verdict: pydantic reports the ValueError under the field's name."""
    if problems:
        raise ValueError("; ".join(problems))


def metadata_key_problem(key: str) -> str | None:
    """Why ``key`` may not be a label/annotation key set through ``runner`` (bad syntax, or a key the
    operator or the Job controller owns), or None when it may."""
    problem = key_syntax_problem(key)
    if problem:
        return problem
    if key == KUEUE_QUEUE_LABEL:
        return f"key {key!r} is set from runner.queueName: set that instead"
    if key.startswith(RESERVED_PREFIXES):
        owned = ", ".join(RESERVED_PREFIXES)
        return f"key {key!r} is under a prefix the controller sets ({owned}): rename it"
    return None


class ConfigMapOperationRef(SpecModel):
    """A ConfigMap holding the operation YAML (its blueprint links inline, or further keys of it)."""

    name: str = Field(pattern=_K8S_NAME, max_length=253, description="the ConfigMap, in the same namespace")
    key: str = Field(default="operation.yaml", max_length=253, description="the key holding the YAML")


class OperationSource(SpecModel):
    """Where the base operation comes from: exactly one of inline, a ConfigMap, or a path in the image."""

    inline: Operation | None = Field(default=None, description="the operation itself, as in its YAML file")
    config_map_ref: ConfigMapOperationRef | None = Field(
        default=None, description="a ConfigMap key holding the operation YAML"
    )
    path: str | None = Field(default=None, description="operation YAML path inside the runner image")

    @model_validator(mode="after")
    def _exactly_one(self) -> OperationSource:
        given = [k for k in ("inline", "config_map_ref", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of inline, configMapRef, path (got {given or 'none'})")
        return self


class CredentialsSecretRef(SpecModel):
    """A Secret with the S3 credentials, opted in for s1mple (label s1mple.io/storage-credentials=true,
    keys AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, annotation s1mple.io/storage-endpoint; see
    docs/security.md)."""

    name: str = Field(pattern=_K8S_NAME, max_length=253, description="the Secret, in the same namespace")


class StorageSpec(SpecModel):
    """Where runs write results: an s3:// bucket/prefix (MinIO or S3)."""

    uri: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        max_length=512,
        description="s3://bucket/prefix under which each resource gets its own folder",
    )
    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        max_length=512,
        description="S3 endpoint URL, e.g. http://minio.minio:9000 (must match the Secret's "
        "s1mple.io/storage-endpoint annotation)",
    )
    external_endpoint: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://",
        description="the same storage as users reach it from outside the cluster (`s1mple results` uses it)",
    )
    region: str | None = Field(default=None, description="S3 region (default us-east-1)")
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None,
        description="the Secret with the S3 credentials, opted in for s1mple "
        "(default: the pods' environment)",
    )
    cleanup: bool = Field(
        default=False, description="delete this resource's artefacts from storage when it is deleted"
    )

    @field_validator("uri")
    @classmethod
    def _plain_prefix(cls, uri: str) -> str:
        segments = uri[len("s3://") :].split("/")[1:]
        if any(s in (".", "..") for s in segments):
            raise ValueError("'.' and '..' are not allowed in the prefix; name the folder itself")
        return uri


class Toleration(SpecModel):
    """A pod toleration, as in a pod spec."""

    key: str | None = Field(default=None, description="the taint key (empty with Exists: every taint)")
    operator: str | None = Field(default=None, pattern="^(Exists|Equal)$", description="Exists or Equal")
    value: str | None = Field(default=None, description="the taint value (with Equal)")
    effect: str | None = Field(
        default=None,
        pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$",
        description="the taint effect to tolerate (empty: all)",
    )
    toleration_seconds: int | None = Field(
        default=None, description="how long a NoExecute taint is tolerated"
    )

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists matches any value: drop value (or use operator Equal)")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        return self


class Resources(SpecModel):
    """The runner container's resources, as in a pod spec."""

    requests: dict[str, Quantity] = Field(
        default_factory=lambda: {"cpu": "500m", "memory": "512Mi"}, description="e.g. cpu: 500m"
    )
    limits: dict[str, Quantity] = Field(
        default_factory=lambda: {"memory": "1Gi"}, description="e.g. memory: 1Gi"
    )


class Affinity(SpecModel):
    """Pod affinity rules, as in a pod spec (checked by the API server when the Job is created)."""

    node_affinity: dict[str, Any] | None = Field(default=None, description="a pod spec's nodeAffinity")
    pod_affinity: dict[str, Any] | None = Field(default=None, description="a pod spec's podAffinity")
    pod_anti_affinity: dict[str, Any] | None = Field(default=None, description="a pod spec's podAntiAffinity")


class LocalObjectReference(SpecModel):
    """A Secret in the resource's namespace, by name."""

    name: str = Field(pattern=_K8S_NAME, max_length=253, description="the Secret's name")


class RunnerSpec(SpecModel):
    """The backtest container: image and where/how its pods run."""

    image: str = Field(
        default=DEFAULT_RUNNER_IMAGE,
        min_length=1,
        max_length=512,
        pattern=r"^[^\s]+$",
        description="the runner image",
    )
    image_pull_policy: str | None = Field(
        default=None, pattern="^(Always|IfNotPresent|Never)$", description="Always, IfNotPresent or Never"
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, max_length=16, description="Secrets to pull the runner image with"
    )
    resources: Resources = Field(default_factory=Resources, description="the runner container's resources")
    node_selector: dict[str, str] = Field(default_factory=dict, description="node labels the pods need")
    tolerations: list[Toleration] = Field(default_factory=list, description="taints the pods tolerate")
    affinity: Affinity | None = Field(default=None, description="node and pod (anti-)affinity of the pods")
    service_account_name: str | None = Field(
        default=None, pattern=_K8S_NAME, max_length=253, description="the pods' ServiceAccount"
    )
    priority_class_name: str | None = Field(
        default=None, pattern=_K8S_NAME, max_length=253, description="the pods' PriorityClass"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="extra labels on the Job's pods (not under s1mple.io/)"
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="extra annotations on the Job's pods (not under s1mple.io/)"
    )
    queue_name: str | None = Field(
        default=None,
        pattern=_K8S_NAME,
        max_length=63,
        description="a Kueue LocalQueue: the Job gets the kueue.x-k8s.io/queue-name label and is created "
        "suspended, for Kueue to admit",
    )

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        refuse(label_problems(labels, metadata_key_problem))
        return labels

    @field_validator("annotations")
    @classmethod
    def _valid_annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        problems = [p for p in map(metadata_key_problem, annotations) if p]
        size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
        if size > ANNOTATIONS_BYTES // 2:  # leave room for s1mple's and the Kubernetes controllers' own
            problems.append(f"{size} bytes in all; keep them under {ANNOTATIONS_BYTES // 2}")
        refuse(problems)
        return annotations

    @field_validator("node_selector")
    @classmethod
    def _labels(cls, selector: dict[str, str]) -> dict[str, str]:
        refuse([f"nodeSelector {p}" for p in label_problems(selector)])
        return selector


class ClusterFields(SpecModel):
    """The cluster half of an Optimization / VariantTest spec."""

    operation: OperationSource | None = Field(
        default=None, description="the base operation; defaults to baseOperation as a path in the image"
    )
    market_data: str | None = Field(
        default=None,
        description="market data URI (s3://..., a path in the image, or sample:NAME); "
        "replaces the base operation's market data",
    )
    storage: StorageSpec = Field(description="where the runs write their results")
    runner: RunnerSpec = Field(default_factory=RunnerSpec, description="the pods that run the backtests")


def k8s_env_list(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Plain ``{name: value}`` as a container env list (sorted: a stable pod template)."""
    return [{"name": k, "value": str(v)} for k, v in sorted(values.items()) if v is not None]
