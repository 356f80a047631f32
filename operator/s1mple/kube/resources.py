"""The two custom resources: their spec models (local config + cluster fields) and their CRDs.

``OptimizationSpec`` *is* an ``OptimizationConfig`` with the cluster half added, so the research
part of a resource validates exactly like the YAML file of ``s1mple optimize``.  The CRD documents are
generated from these models (``s1mple crds``); a test fails when the files in ``crds/`` drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from s1mple.kube.names import GROUP, VERSION
from s1mple.kube.schema import structural_schema
from s1mple.kube.spec import ClusterFields
from s1mple.kube.status import ResearchStatus
from s1mple.meta.models import DEFAULT_MAX_COMBINATIONS, OptimizationConfig, ParallelConfig, VariantConfig


class ClusterParallelConfig(ParallelConfig):
    """``parallelConfig`` on a cluster: maxWorkers is the Job's parallelism (pods at once)."""

    max_workers: int | None = Field(default=4, ge=1, le=1024, description="pods running at once")
    runs_per_pod: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="runs per Job index; default: one wave of pods (runs / maxWorkers, at most 50,000)",
    )
    timeout_per_run: float | None = Field(default=300, gt=0, le=86_400, description="seconds")
    retries: int = Field(default=2, ge=0, le=10, description="backoffLimitPerIndex: pod retries per index")
    max_failed_indexes: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="the Job fails once this many indexes failed all their retries; default a quarter "
        "of the indexes (at least 1)",
    )


class _ClusterResearch(ClusterFields):
    # as long as a metadata.name may be (253): the default must pass
    name: str | None = Field(default=None, max_length=253, description="default: metadata.name")
    base_operation: str | None = Field(
        default=None, description="operation YAML path inside the runner image (or use operation)"
    )
    parallel_config: ClusterParallelConfig = Field(default_factory=ClusterParallelConfig)

    @model_validator(mode="after")
    def _operation_given(self) -> _ClusterResearch:
        if self.base_operation is None and self.operation is None:
            raise ValueError("set operation (inline, configMapRef or path) or baseOperation")
        if self.base_operation is not None and self.operation is not None:
            raise ValueError("set operation or baseOperation, not both")
        return self


#: The most runs one Optimization may plan on a cluster: the controller keeps every run_id and stored record
#: of a generation (~1 KB a run), and one resource must not take it down for the others (a 100,000-run
#: Optimization peaks at ~371 MB; the Deployment's limit is 1 GiB).  Larger sweeps: split them, or sample.
CLUSTER_MAX_COMBINATIONS = 200_000


class OptimizationSpec(_ClusterResearch, OptimizationConfig):
    """spec of an Optimization: the design's optimization_config plus where and how to run it."""

    max_combinations: int = Field(
        default=DEFAULT_MAX_COMBINATIONS,
        ge=1,
        le=CLUSTER_MAX_COMBINATIONS,
        description=f"refuse a grid larger than this (at most {CLUSTER_MAX_COMBINATIONS:,} on a cluster)",
    )


class VariantTestSpec(_ClusterResearch, VariantConfig):
    """spec of a VariantTest: the design's variant_config plus where and how to run it."""


KINDS: dict[str, dict[str, Any]] = {
    "Optimization": {
        "plural": "optimizations",
        "singular": "optimization",
        "short": ["opt"],
        "spec": OptimizationSpec,
        "best": "Best",
    },
    "VariantTest": {
        "plural": "varianttests",
        "singular": "varianttest",
        "short": ["vt"],
        "spec": VariantTestSpec,
        "best": "Best",
    },
}


def printer_columns(kind: str = "Optimization") -> list[dict[str, Any]]:
    """``kubectl get`` columns; an Optimization also shows how far its best can be trusted (PBO, DSR)."""
    validation = [
        {"name": "PBO", "type": "number", "jsonPath": ".status.validation.pbo"},
        {"name": "DSR", "type": "number", "jsonPath": ".status.validation.dsr"},
    ]
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
        {"name": "Failed", "type": "integer", "jsonPath": ".status.counts.failed"},
        {"name": "Best", "type": "string", "jsonPath": ".status.best"},
        *(validation if kind == "Optimization" else []),
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        # -o wide: why it is Invalid, Failed, Queued or waiting (the Ready condition's message)
        {
            "name": "Message",
            "type": "string",
            "priority": 1,
            "jsonPath": '.status.conditions[?(@.type=="Ready")].message',
        },
    ]


def crd(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind``, with structural schemas from the models."""
    info = KINDS[kind]
    spec_schema = structural_schema(info["spec"])
    spec_schema["description"] = (info["spec"].__doc__ or "").strip()
    status_schema = structural_schema(ResearchStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info['plural']}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "plural": info["plural"],
                "singular": info["singular"],
                "shortNames": info["short"],
                "categories": ["s1mple"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(kind),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": f"{kind}: trading-strategy research run as Indexed Jobs.",
                            "properties": {
                                "apiVersion": {"type": "string", "description": f"{GROUP}/{VERSION}"},
                                "kind": {"type": "string", "description": kind},
                                # ObjectMeta: the API server allows nothing more here
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def generated_files(root: Path) -> dict[str, str]:
    """Every file ``s1mple crds`` writes, by repository path: the CRDs (also in the chart) and the chart's
    RBAC rules (taken from config/deploy/rbac.yaml, the one place they are written by hand)."""
    import yaml

    files: dict[str, str] = {}
    rbac = list(yaml.safe_load_all((root / "config/deploy/rbac.yaml").read_text()))
    rules = next(d for d in rbac if d and d.get("kind") == "ClusterRole")["rules"]
    files["charts/s1mple/files/rbac-rules.yaml"] = (
        "# Generated by `s1mple crds` from config/deploy/rbac.yaml; do not edit.\n"
        + yaml.safe_dump(rules, sort_keys=False)
    )
    header = "# Generated by `s1mple crds` from the pydantic models; do not edit.\n"
    for kind, info in KINDS.items():
        text = header + yaml.safe_dump(crd(kind), sort_keys=False, width=110)
        files[f"crds/{info['plural']}.{GROUP}.yaml"] = text
        files[f"charts/s1mple/crds/{info['plural']}.{GROUP}.yaml"] = text
    return files
