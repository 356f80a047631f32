"""What a cluster needs beyond the research spec: operation source, market data, storage, runner, pods.

These models are composed with the local optimization/variant configs into the CRD specs
(:mod:`s1mple.kube.resources`), so a field means the same thing in a YAML file and in a resource.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from s1mple_engine.config import Operation, SpecModel

DEFAULT_RUNNER_IMAGE = "ghcr.io/s1mple/s1mple-runner:0.1.0"
_K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
#: A non-negative Kubernetes quantity (``500m``, ``1.5``, ``2Gi``, ``1e3``): the API server's own syntax
#: would let ``-1`` through to a Job it then rejects.
QUANTITY = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=64)]


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "its prefix must be a DNS subdomain (lowercase, dots), at most 253 characters"
    if not _LABEL_NAME.match(name):
        return "its name must be 1-63 characters, alphanumeric at both ends, [-_.A-Za-z0-9] inside"
    return None


class ConfigMapOperationRef(SpecModel):
    """A ConfigMap holding the operation YAML (its blueprint links inline, or further keys of it)."""

    name: str = Field(pattern=_K8S_NAME, max_length=253)
    key: str = Field(default="operation.yaml", max_length=253)


class OperationSource(SpecModel):
    """Where the base operation comes from: exactly one of inline, a ConfigMap, or a path in the image."""

    inline: Operation | None = None
    config_map_ref: ConfigMapOperationRef | None = None
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

    name: str = Field(pattern=_K8S_NAME, max_length=253)


class StorageSpec(SpecModel):
    """Where runs write results: an s3:// bucket/prefix (MinIO or S3)."""

    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", max_length=512)
    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        max_length=512,
        description="S3 endpoint URL, e.g. http://minio.minio:9000",
    )
    region: str | None = None
    credentials_secret_ref: CredentialsSecretRef | None = None
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
    key: str | None = None
    operator: str | None = Field(default=None, pattern="^(Exists|Equal)$")
    value: str | None = None
    effect: str | None = Field(default=None, pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: int | None = None

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists matches any value: drop value (or use operator Equal)")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        return self


class Resources(SpecModel):
    requests: dict[str, Quantity] = Field(default_factory=lambda: {"cpu": "500m", "memory": "512Mi"})
    limits: dict[str, Quantity] = Field(default_factory=lambda: {"memory": "1Gi"})


class RunnerSpec(SpecModel):
    """The backtest container: image and where/how its pods run."""

    image: str = Field(default=DEFAULT_RUNNER_IMAGE, min_length=1, max_length=512, pattern=r"^[^\s]+$")
    image_pull_policy: str | None = Field(default=None, pattern="^(Always|IfNotPresent|Never)$")
    resources: Resources = Field(default_factory=Resources)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    service_account_name: str | None = Field(default=None, pattern=_K8S_NAME, max_length=253)

    @field_validator("node_selector")
    @classmethod
    def _labels(cls, selector: dict[str, str]) -> dict[str, str]:
        for key, value in selector.items():
            problem = label_key_problem(key)
            if problem:
                raise ValueError(f"nodeSelector key {key!r}: {problem}")
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ValueError(
                    f"nodeSelector[{key!r}]: a label value is at most 63 characters of [-_.A-Za-z0-9]"
                )
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
    storage: StorageSpec
    runner: RunnerSpec = Field(default_factory=RunnerSpec)


def k8s_env_list(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Plain ``{name: value}`` as a container env list (sorted: a stable pod template)."""
    return [{"name": k, "value": str(v)} for k, v in sorted(values.items()) if v is not None]
