"""What every plan shares: the base operation it varies, its identity, its runs as payloads, its manifest.

Also the blueprint plumbing the builders and plans use: reading and replacing the workers of a category or
phase, and checking one resolved blueprint with the engine's validator.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s1mple_engine.config import Blueprint, ConfigError, Operation, load_operation, resolve_path, suggest
from s1mple_engine.runspec import DimensionInfo, RunManifest, canonical_json, content_hash

from ..models import OptimizationConfig, VariantConfig
from ..space import Dimension

MAX_REPORTED_PROBLEMS = 60


def get_workers(bp: dict[str, Any], category: str, phase: str | None) -> list[dict[str, Any]]:
    if phase is None:
        return bp.get(category) or []
    return (bp.get(category) or {}).get(phase) or []


def set_workers(bp: dict[str, Any], category: str, phase: str | None, workers: list[dict]) -> dict[str, Any]:
    out = dict(bp)
    if phase is None:
        out[category] = workers
    else:
        phases = dict(out.get(category) or {})
        phases[phase] = workers
        out[category] = phases
    return out


def load_base_operation(path: str, source: str | Path | None, data: str | None) -> Operation:
    base_dir = Path(source).parent if source else Path.cwd()
    op_path = resolve_path(path, base_dir)
    if not op_path.exists():
        raise ConfigError(
            f"base_operation: file not found: {path} (looked next to {source or 'the cwd'} and in the cwd)",
            str(source) if source else None,
        )
    return with_market_data(load_operation(op_path), data, "--data")


def with_market_data(op: Operation, data: str | None, field: str, base_dir: Path | None = None) -> Operation:
    """``op`` with its market data replaced (``--data`` locally, ``spec.marketData`` on a cluster).

    A file path is made absolute against ``base_dir`` (default: the working directory) and must exist;
    ``sample:``, ``s3://`` and ``file://`` URIs are taken as they are.
    """
    if not data:
        return op
    target = data
    if not data.startswith(("sample:", "s3://", "file://")):
        path = Path(data) if Path(data).is_absolute() else (base_dir or Path.cwd()) / data
        if not path.exists():
            raise ConfigError(f"{field}: file not found: {data}")
        target = str(path.resolve())
    return op.model_copy(update={"market_data": op.market_data.model_copy(update={"path": target})})


def select_link(op: Operation, name: str | None, source: str | None) -> Blueprint:
    blueprints = [link.blueprint for link in op.strategy_links if isinstance(link.blueprint, Blueprint)]
    names = [bp.name for bp in blueprints]
    if name is None:
        if len(blueprints) == 1:
            return blueprints[0]
        raise ConfigError(
            f"base operation {op.name!r} links {len(blueprints)} blueprints ({', '.join(names)}); "
            "set strategy_link: NAME to choose the one to vary",
            source,
        )
    if name not in names:
        raise ConfigError(
            f"strategy_link: no blueprint {name!r} in the base operation{suggest(name, names)}", source
        )
    return blueprints[names.index(name)]


def blueprint_problems(validator: Callable[[Blueprint], list[str]], bp: dict[str, Any]) -> list[str]:
    """The validator's problems with one resolved blueprint (a crash in it is reported, not raised)."""
    try:
        return list(validator(Blueprint.model_validate(bp)))
    except ConfigError as exc:
        return exc.problems
    except Exception as exc:  # a plugin's own check failing is a problem of this configuration
        return [f"{type(exc).__name__}: {exc}"]


class ProblemLog:
    """Problems of distinct blueprints, each blueprint checked once and each problem reported once."""

    def __init__(self, validator: Callable[[Blueprint], list[str]]):
        self.validator = validator
        self.problems: list[str] = []
        self._checked: set[Hashable] = set()
        self._seen: set[str] = set()

    def check(self, bp: dict[str, Any], where: str | Callable[[], str], key: Hashable = None) -> None:
        """Validate ``bp`` unless checked before.  ``key``: what identifies it, when the caller knows
        (default: its canonical JSON); ``where``: the text, or a function giving it, that prefixes its
        problems (built only when there is one)."""
        key = canonical_json(bp) if key is None else key
        if key in self._checked:
            return
        self._checked.add(key)
        new = [p for p in blueprint_problems(self.validator, bp) if p not in self._seen]
        if new:
            at = where() if callable(where) else where
            for p in dict.fromkeys(new):
                self._seen.add(p)
                self.problems.append(f"{at}: {p}" if at else p)

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_REPORTED_PROBLEMS


class BasePlan:
    kind: str = ""
    name: str = ""
    source: str | None = None
    dims: list[Dimension]
    total: int = 0
    base_operation: Operation
    config: OptimizationConfig | VariantConfig

    def __init__(self) -> None:
        self._sizes: list[int] = []
        self.base_op: dict[str, Any] = {}
        self.base_bp: dict[str, Any] = {}

    # -- identity ------------------------------------------------------------------------------------
    def spec_data(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def plan_id(self) -> str:
        return content_hash({"kind": self.kind, "spec": self.spec_data(), "base_operation": self.base_op})

    # -- runs ----------------------------------------------------------------------------------------
    def payload(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def planned_indices(self) -> Sequence[int]:
        return range(self.total)

    @property
    def planned_runs(self) -> int:
        return len(self.planned_indices())

    def payloads(self, indices: Any = None) -> Iterator[dict[str, Any]]:
        for i in self.planned_indices() if indices is None else indices:
            yield self.payload(i)

    def operation_of(self, bp: dict[str, Any]) -> dict[str, Any]:
        op = dict(self.base_op)
        op["strategy_links"] = [{"blueprint": bp}]
        return op

    # -- reporting -----------------------------------------------------------------------------------
    def manifest(self, created: str | None = None) -> RunManifest:
        return RunManifest(
            kind=self.kind,
            name=self.name,
            plan_id=self.plan_id,
            source=self.source,
            created=created or datetime.now(UTC).isoformat(timespec="seconds"),
            total=self.total,
            planned_runs=self.planned_runs,
            search=self.search_info(),
            dimensions=[DimensionInfo(**d.info()) for d in self.dims],
            spec=self.spec_data(),
            base_operation=self.base_op,
        )

    def search_info(self) -> dict[str, Any]:
        return {"strategy": "grid"}

    def describe(self, samples: int = 3) -> dict[str, Any]:
        raise NotImplementedError

    def validate(self, validator: Callable[[Blueprint], list[str]]) -> list[str]:
        """Problems of every distinct worker configuration the plan runs, each checked once."""
        raise NotImplementedError

    def sample_indices(self, n: int) -> list[int]:
        """``n`` planned run indices spread evenly over the plan (first and last included)."""
        planned = self.planned_indices()
        count = len(planned)
        if count == 0:
            return []
        picks = sorted({round(k * (count - 1) / max(n - 1, 1)) for k in range(min(n, count))})
        return [planned[p] for p in picks]
