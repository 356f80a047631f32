"""A run spec: one fully resolved backtest of a sweep, and the manifest that lists them.

A :class:`RunSpec` is the design's "temporary operation.yaml": an :class:`Operation` with exactly ONE inline
strategy link (the resolved blueprint), plus what the sweep needs to know about it: its ``index`` in the
plan, the ``labels`` of its choices per dimension, and the ``configuration`` ({plugin: params}) of what
varies.  ``run_id`` is a content hash: sha256 of the canonical JSON of the resolved operation and of the
code fingerprint of the engine and the plugins it uses (:mod:`.fingerprint`), 16 hex, so the same backtest
by the same code has the same id in every sweep, on every machine, in every order, and edited code gets
new ids (its results are computed again).

The manifest (``manifest.json`` + ``manifest.jsonl``, one RunSpec per line) is what the Kubernetes runner pod
reads: pod ``i`` runs line ``i``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .config import Operation, dump_model
from .fingerprint import operation_code
from .result import DEFAULT_BLOCKS

RUN_ID_LENGTH = 16
MANIFEST_KEY = "manifest.json"
MANIFEST_RUNS_KEY = "manifest.jsonl"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any, length: int = RUN_ID_LENGTH) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def run_id_of(operation: Operation | dict[str, Any], code: dict[str, str] | None = None) -> str:
    """The run id of a resolved operation (a model, or its :func:`dump_model` data) computed by ``code``
    (its :func:`~.fingerprint.operation_code`, found from the operation when not given)."""
    data = dump_model(operation) if isinstance(operation, BaseModel) else operation
    return content_hash({"operation": data, "code": code if code is not None else operation_code(data)})


class RunSpec(BaseModel):
    """One run of a sweep (snake_case wire format; not a CRD)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    index: int = Field(ge=0, description="position in the plan (grid index, or trial number)")
    kind: str = Field(default="optimization", pattern="^(optimization|variant_test)$")
    name: str | None = Field(default=None, description="variant name (variant tests)")
    window: str | None = Field(default=None, description="validation window label: is, oos, wf<k>.train|test")
    labels: dict[str, str] = Field(default_factory=dict, description="dimension -> choice label")
    configuration: dict[str, dict[str, Any]] = Field(default_factory=dict, description="{plugin: params}")
    operation: Operation
    code: dict[str, str] | None = Field(
        default=None, description="the code fingerprint the run_id was planned with (checked by the runner)"
    )
    curves: bool = Field(default=False, description="also record equity/drawdown curves, monthly returns")
    blocks: int = Field(
        default=DEFAULT_BLOCKS, ge=0, le=64, description="blocks of the per-bar returns to record (CSCV)"
    )

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RunSpec:
        """Build from planner data (``operation`` as a dict), validating the operation once."""
        return cls.model_validate(payload)

    def to_payload(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=True)
        data["operation"] = dump_model(self.operation)
        return data


class DimensionInfo(BaseModel):
    name: str
    kind: str
    size: int
    describe: str = ""


class RunManifest(BaseModel):
    """Plan metadata of a sweep (``manifest.json``); the run specs themselves are ``manifest.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(pattern="^(optimization|variant_test)$")
    name: str
    plan_id: str
    source: str | None = None
    created: str
    total: int = Field(ge=0, description="total_combinations / total_variants")
    planned_runs: int = Field(ge=0, description="runs this plan executes (search may sample fewer)")
    search: dict[str, Any] = Field(default_factory=dict)
    dimensions: list[DimensionInfo] = Field(default_factory=list)
    spec: dict[str, Any] = Field(default_factory=dict, description="the optimization/variant spec")
    base_operation: dict[str, Any] = Field(default_factory=dict)
