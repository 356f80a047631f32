"""A variant test's plan: one run per named variant, each the base blueprint with its overrides merged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from s1mple_engine.config import Blueprint, ConfigError, Operation, dump_model
from s1mple_engine.fingerprint import blueprint_plugins, code_fingerprint
from s1mple_engine.runspec import canonical_json, run_id_of

from ..merge import merge_override_data
from ..models import VariantConfig
from ..space import ChoiceDim
from .base import MAX_REPORTED_PROBLEMS, BasePlan, blueprint_problems, select_link

FLAT_CATEGORIES = ("context_workers", "opportunity_workers", "threat_workers")
PHASE_CATEGORIES = ("planning_workers", "execution_workers")


class VariantPlan(BasePlan):
    kind = "variant_test"
    config: VariantConfig

    def __init__(self, config: VariantConfig, base_operation: Operation, *, source: str | None = None):
        super().__init__()
        self.config = config
        self.name = config.name
        self.source = source
        if config.market_period is not None:
            base_operation = base_operation.model_copy(update={"period": config.market_period})
        self.base_operation = base_operation
        self.base_bp = dump_model(select_link(base_operation, config.strategy_link, source))
        self.base_op = dump_model(base_operation)
        self.base_op.pop("strategy_links", None)
        self.total = len(config.variants)
        self.dims = [
            ChoiceDim(
                name="variant",
                kind="variant",
                size=self.total,
                labels=[v.name for v in config.variants],
                choices=list(config.variants),
            )
        ]
        self._resolved: dict[int, dict[str, Any]] = {}
        problems = []
        for i in range(self.total):
            try:
                self._blueprint(i)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems, source)

    def spec_data(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json", exclude_none=True, exclude={"parallel_config"})

    @property
    def market_period(self) -> dict[str, Any]:
        return dict(self.base_op.get("period") or {})

    def _blueprint(self, i: int) -> dict[str, Any]:
        if i not in self._resolved:
            v = self.config.variants[i]
            bp = merge_override_data(self.base_bp, v.overrides.model_dump(mode="json", exclude_none=True))
            try:
                bp = dump_model(Blueprint.model_validate(bp))
            except Exception as exc:
                raise ConfigError(f"variants.{i} ({v.name}): invalid blueprint: {exc}", self.source) from None
            self._resolved[i] = bp
        return self._resolved[i]

    def payload(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.total:
            raise IndexError(f"variant index {index} outside 0..{self.total - 1}")
        bp = self._blueprint(index)
        op = self.operation_of(bp)
        configuration: dict[str, dict[str, Any]] = {}
        for cat in FLAT_CATEGORIES:
            for w in bp.get(cat) or []:
                configuration.setdefault(w["plugin"], dict(w.get("params") or {}))
        for cat in PHASE_CATEGORIES:
            for workers in (bp.get(cat) or {}).values():
                for w in workers:
                    configuration.setdefault(w["plugin"], dict(w.get("params") or {}))
        name = self.config.variants[index].name
        code = code_fingerprint(blueprint_plugins(bp))
        return {
            "run_id": run_id_of(op, code),
            "index": index,
            "kind": "variant_test",
            "name": name,
            "labels": {"variant": name},
            "configuration": configuration,
            "operation": op,
            "code": code,
            "curves": True,
        }

    def validate(self, validator: Callable[[Blueprint], list[str]]) -> list[str]:
        problems: list[str] = []
        seen: dict[str, list[str]] = {}
        for i in range(self.total):
            bp = self._blueprint(i)
            key = canonical_json(bp)
            if key not in seen:
                seen[key] = blueprint_problems(validator, bp)
            problems += [f"variant {self.config.variants[i].name!r}: {p}" for p in seen[key]]
        return problems[:MAX_REPORTED_PROBLEMS]

    def describe(self, samples: int = 3) -> dict[str, Any]:
        return {
            "kind": "variant_test",
            "name": self.name,
            "test_id": self.plan_id,
            "base_operation": self.config.base_operation,
            "total_variants": self.total,
            "market_period": self.market_period,
            "dimensions": [d.info() for d in self.dims],
            "variants": [
                {
                    "variant_name": v.name,
                    "description": v.description,
                    "run_id": self.payload(i)["run_id"],
                    "overrides": v.overrides.model_dump(mode="json", exclude_none=True),
                }
                for i, v in enumerate(self.config.variants)
            ],
        }
