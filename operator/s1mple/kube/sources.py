"""What a resource names outside itself, read safely: its operation (a path in the image, inline or a
ConfigMap key) and its storage (an S3 folder with the credentials of a Secret it names).

Paths stay inside the image's config root, what a ConfigMap holds is never echoed into status, and a
Secret's credentials are used only when they opt in to the endpoint (:mod:`s1mple.kube.credentials`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from s1mple.executors.apiserver import ApiError
from s1mple.kube import credentials
from s1mple.kube.names import resource_prefix
from s1mple.kube.resources import KINDS, OptimizationSpec, VariantTestSpec
from s1mple.kube.spec import OperationSource
from s1mple.meta.planner import BasePlan, OptimizationPlan, VariantPlan, with_market_data
from s1mple_engine.config import (
    ConfigError,
    Operation,
    load_operation,
    parse_model,
    resolve_operation,
)
from s1mple_engine.store import S3Store, Store, StoreError

#: API-server answers to reading a resource's ConfigMap that the spec must fix (missing, forbidden).
CONFIG_MAP_REFUSED = (403, 404)


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int


def config_root() -> Path:
    """Where paths inside the image resolve (the operator and runner images ship config/ under it)."""
    return Path(os.environ.get("S1MPLE_CONFIG_ROOT", os.getcwd()))


def confined(value: str, field: str, root: Path) -> Path:
    """A path a resource names, inside the image's config root: absolute paths and '..' are refused
    before the file system is asked anything, so nothing about files outside reaches status."""
    if value.startswith("file://"):
        value = value[len("file://") :]
    parts = Path(value).parts
    if not value.strip() or Path(value).is_absolute() or ".." in parts:
        raise ConfigError(
            f"{field}: {value!r} must be a relative path inside the runner image's config root "
            "(no leading '/', no '..'), e.g. config/operations/ma_crossover.yaml"
        )
    path = root / value
    if not path.is_file():
        raise ConfigError(
            f"{field}: {value!r} is not a file in the image (paths are relative to its config root)"
        )
    return path


def confine_operation(op: Operation, field: str, root: Path) -> None:
    """Blueprint links and the market-data path of a resource-supplied operation stay inside ``root``."""
    for i, link in enumerate(op.strategy_links):
        if isinstance(link.blueprint, str):
            confined(link.blueprint, f"{field}.strategyLinks.{i}.blueprint", root)
    data = op.market_data.path
    if not data.startswith(("sample:", "s3://")):
        confined(data, f"{field}.marketData.path", root)


def parse_spec(ref: ResourceRef, spec: dict[str, Any]) -> OptimizationSpec | VariantTestSpec:
    """The spec as the shared model; ``name`` defaults to the resource's name."""
    model = KINDS[ref.kind]["spec"]
    data = {"name": ref.name, **spec}
    source = f"{ref.kind} {ref.namespace}/{ref.name} spec"
    parsed = parse_model(data, model, source=source)
    search = getattr(parsed, "search", None)
    if search is not None and search.strategy.value == "bayesian":
        raise ConfigError(
            "search.strategy: bayesian asks for each batch after the previous one finished, which runs "
            "locally (s1mple optimize); on the cluster use grid or random",
            source,
        )
    return parsed


def base_operation(ref: ResourceRef, spec: OptimizationSpec | VariantTestSpec, cluster: Any) -> Operation:
    """The base operation from its source, with spec.marketData swapped in (like ``--data`` locally)."""
    root = config_root()
    source = spec.operation or OperationSource(path=spec.base_operation)
    where = f"{ref.kind} {ref.namespace}/{ref.name} spec.operation"
    if source.inline is not None:
        confine_operation(source.inline, "operation.inline", root)
        op = resolve_operation(source.inline, base_dir=root)
    elif source.config_map_ref is not None:
        cm = source.config_map_ref
        try:
            text = cluster.read_config_map_key(ref.namespace, cm.name, cm.key)
        except (KeyError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status not in CONFIG_MAP_REFUSED:
                raise  # the API server is down or restarting: retried, not the spec's fault
            raise ConfigError(
                f"configMapRef: cannot read ConfigMap {cm.name!r} key {cm.key!r}: {exc}", where
            ) from None
        # what the ConfigMap holds is never echoed (the resource's author may not be able to read it):
        # positions and counts only
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"configMapRef {cm.name}/{cm.key}: invalid YAML{at}", where) from None
        try:
            parsed = parse_model(data, Operation, root="operation", source=where)
        except ConfigError as exc:
            raise ConfigError(
                f"configMapRef {cm.name}/{cm.key}: not a valid operation ({len(exc.problems)} problem(s)); "
                "check it where you can read it with `s1mple plan`",
                where,
            ) from None
        confine_operation(parsed, f"configMapRef {cm.name}/{cm.key}: operation", root)
        op = resolve_operation(parsed, base_dir=root)
    else:
        field = "baseOperation" if spec.operation is None else "operation.path"
        op = load_operation(confined(str(source.path), field, root))
    if spec.market_data and not spec.market_data.startswith(("sample:", "s3://")):
        confined(spec.market_data, "marketData", root)
    return with_market_data(op, spec.market_data, "spec.marketData", base_dir=root)


def open_resource_store(ref: ResourceRef, spec: OptimizationSpec | VariantTestSpec, cluster: Any) -> Store:
    """The resource's folder in its storage, with the credentials of the Secret it names."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    storage = spec.storage
    bucket, _, prefix = storage.uri[len("s3://") :].partition("/")
    own_endpoint = os.environ.get("AWS_ENDPOINT_URL")
    endpoint = storage.endpoint or own_endpoint
    # without a Secret, the controller's own credentials go only to its own endpoint: elsewhere, unsigned
    foreign = storage.endpoint is not None and not (
        own_endpoint and credentials.same_endpoint(storage.endpoint, own_endpoint)
    )
    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": storage.region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "config": Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3},
            signature_version=UNSIGNED if foreign and storage.credentials_secret_ref is None else None,
        ),
    }
    ref_ = storage.credentials_secret_ref
    if ref_ is not None:
        try:
            secret = cluster.read_secret(ref.namespace, ref_.name)
        except ApiError as exc:  # e.g. forbidden: the condition says so until the Role is fixed
            raise StoreError(
                f"storage.credentialsSecretRef: cannot read Secret {ref_.name!r}: {exc}"
            ) from None
        # opted in, and bound to this endpoint: checked before any request is signed with it
        key_id, secret_key = credentials.usable_credentials(secret, ref_.name, storage.endpoint)
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = key_id, secret_key
        kwargs["endpoint_url"] = storage.endpoint
    client = boto3.client("s3", **kwargs)
    full_prefix = "/".join(
        p for p in (prefix.strip("/"), resource_prefix(ref.namespace, ref.kind, ref.name)) if p
    )
    return S3Store(bucket, full_prefix, endpoint_url=kwargs["endpoint_url"], client=client)


#: How the reconcile step opens a resource's storage (injected: a unit test passes a file store).
OpenStore = Callable[[ResourceRef, OptimizationSpec | VariantTestSpec, Any], Store]


def make_plan(spec: OptimizationSpec | VariantTestSpec, op: Operation) -> BasePlan:
    if isinstance(spec, OptimizationSpec):
        return OptimizationPlan(spec, op, source=None, max_combinations=spec.max_combinations)
    return VariantPlan(spec, op, source=None)
