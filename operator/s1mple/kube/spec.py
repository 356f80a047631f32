"""What a cluster needs beyond the research spec: operation source, market data, storage, runner, pods.

These models are composed with the local optimization/variant configs into the CRD specs
(:mod:`s1mple.kube.resources`), so a field means the same thing in a YAML file and in a resource.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from s1mple_engine.config import Operation, SpecModel

DEFAULT_RUNNER_IMAGE = "ghcr.io/s1mple/s1mple-runner:0.1.0"
_K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


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
    """A Secret with the S3 credentials; key names default to the ones boto3 reads."""

    name: str = Field(pattern=_K8S_NAME, max_length=253)
    access_key_id_key: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_key: str = "AWS_SECRET_ACCESS_KEY"


class StorageSpec(SpecModel):
    """Where runs write results: an s3:// bucket/prefix (MinIO or S3)."""

    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", max_length=512)
    endpoint: str | None = Field(default=None, description="S3 endpoint URL, e.g. http://minio.minio:9000")
    region: str | None = None
    credentials_secret_ref: CredentialsSecretRef | None = None
    cleanup: bool = Field(
        default=False, description="delete this resource's artefacts from storage when it is deleted"
    )


class Toleration(SpecModel):
    key: str | None = None
    operator: str | None = Field(default=None, pattern="^(Exists|Equal)$")
    value: str | None = None
    effect: str | None = Field(default=None, pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: int | None = None


class Resources(SpecModel):
    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "500m", "memory": "512Mi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "1Gi"})


class RunnerSpec(SpecModel):
    """The backtest container: image and where/how its pods run."""

    image: str = Field(default=DEFAULT_RUNNER_IMAGE, max_length=512)
    image_pull_policy: str | None = Field(default=None, pattern="^(Always|IfNotPresent|Never)$")
    resources: Resources = Field(default_factory=Resources)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    service_account_name: str | None = Field(default=None, pattern=_K8S_NAME, max_length=253)


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
