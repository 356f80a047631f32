"""Blueprint validation and compilation: every problem at once, each naming the worker path.

``validate_blueprint`` is what the planner calls on every run spec before anything runs; ``compile_blueprint``
is what ``run_backtest`` uses (same checks, plus the plugin instances).  Problems covered: unknown plugin
(with the valid ones of that category/phase), plugin in the wrong category/phase, subtype mismatch,
unknown/mistyped/out-of-bounds params (with the param's type, description, default and bounds), trigger
not allowed by the plugin, operator combinations that do not exist, and event-chain errors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .config import (
    EXECUTION_PHASES,
    PLANNING_PHASES,
    Blueprint,
    ConfigError,
    OperatorConfig,
    WorkerConfig,
    suggest,
)
from .events import validate_event_chains
from .operators import operator_problems, resolve_operators
from .registration import generation
from .registry import all_plugins, find_plugin, param_hint
from .workers import (
    CATEGORY_FIELD,
    ContextWorker,
    ExecutionWorker,
    OpportunityWorker,
    PlanningWorker,
    Plugin,
    ThreatWorker,
)


@dataclass
class Strategy:
    """A compiled blueprint: plugin instances per category/phase, and the resolved operator configs."""

    name: str
    context: list[ContextWorker] = field(default_factory=list)
    opportunity: list[OpportunityWorker] = field(default_factory=list)
    threat: list[ThreatWorker] = field(default_factory=list)
    planning: dict[str, list[PlanningWorker]] = field(default_factory=dict)
    execution: dict[str, list[ExecutionWorker]] = field(default_factory=dict)
    operators: dict[str, OperatorConfig] = field(default_factory=dict)
    paths: list[tuple[str, Plugin]] = field(default_factory=list)


def _worker_path(category: str, phase: str | None, index: int) -> str:
    base = CATEGORY_FIELD[category]
    return f"{base}.{phase}[{index}]" if phase else f"{base}[{index}]"


def _located_workers(blueprint: Blueprint) -> Iterator[tuple[str, str, str | None, WorkerConfig]]:
    """Every worker with its path in the blueprint (``planning_workers.exit_planning[1]``)."""
    counters: dict[tuple[str, str | None], int] = {}
    for category, phase, wc in blueprint.workers():
        k = counters.get((category, phase), 0)
        counters[(category, phase)] = k + 1
        yield _worker_path(category, phase, k), category, phase, wc


def _compile_worker(
    path: str, category: str, phase: str | None, wc: WorkerConfig
) -> tuple[Plugin | None, list[str]]:
    cls = find_plugin(wc.plugin)
    if cls is None:
        plugins = all_plugins()
        choices = [
            n for n, c in plugins.items() if c.category == category and (phase is None or c.phase == phase)
        ]
        return None, [f"{path}.plugin: unknown plugin {wc.plugin!r}{suggest(wc.plugin, choices or plugins)}"]
    label = f"{path} ({cls.name})"
    problems = []
    if cls.category != category or (phase is not None and cls.phase != phase):
        where = CATEGORY_FIELD[cls.category] + (f".{cls.phase}" if cls.phase else "")
        problems.append(
            f"{label}: is a {cls.category}{' ' + cls.phase if cls.phase else ''} plugin; move it to {where}"
        )
    if wc.subtype is not None and wc.subtype != cls.subtype:
        problems.append(
            f"{label}.subtype: {wc.subtype!r} does not match the plugin's subtype {cls.subtype!r}"
        )
    params = None
    try:
        params = cls.Params.model_validate(wc.params)
    except ValidationError as err:
        valid = list(cls.Params.model_fields)
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            name = str(e["loc"][0]) if e["loc"] else ""
            if e["type"] == "extra_forbidden":
                hint = suggest(name, valid) if valid else " (it has no params)"
                problems.append(f"{label}.params.{loc}: unknown param{hint}")
            else:
                where = f".params.{loc}" if loc else ".params"
                got = f" (got {e['input']!r})" if loc and not isinstance(e.get("input"), dict) else ""
                problems.append(f"{label}{where}: {e['msg']}{got}{param_hint(cls, name)}")
    triggers = None
    if wc.triggers is not None:
        bad = [t for t in wc.triggers if t not in cls.triggers]
        for t in bad:
            allowed = suggest(t, cls.triggers) if cls.triggers else " (it has no triggers: a StandardWorker)"
            problems.append(f"{label}.triggers: {t!r} is not an allowed trigger of {cls.name}{allowed}")
        if not wc.triggers:
            problems.append(
                f"{label}.triggers: empty; omit it to use the manifest's {list(cls.default_triggers)}"
            )
        triggers = tuple(wc.triggers)
    if problems:
        return _shadow(cls, wc), problems
    return cls(params, triggers), []


_COMPILED_WORKERS: dict[Any, Plugin] = {}


def _compiled_worker(
    path: str, category: str, phase: str | None, wc: WorkerConfig
) -> tuple[Plugin | None, list[str]]:
    """:func:`_compile_worker`, remembered for a valid worker configuration: the runs of a sweep share
    most of their workers (only the swept params differ), and a plugin instance holds no run state."""
    key = (category, phase, *_config_key(wc), generation())
    inst = _COMPILED_WORKERS.get(key)
    if inst is not None:
        return inst, []
    inst, problems = _compile_worker(path, category, phase, wc)
    if inst is not None and not problems:
        if len(_COMPILED_WORKERS) >= 4096:
            _COMPILED_WORKERS.clear()
        _COMPILED_WORKERS[key] = inst
    return inst, problems


def _shadow(cls: type[Plugin], wc: WorkerConfig) -> Plugin:
    """A stand-in with the manifest's wirings, so event chains are still checked when params are bad."""
    inst = cls.__new__(cls)
    ok = tuple(t for t in (wc.triggers or ()) if t in cls.triggers)
    inst.active_triggers = ok or tuple(cls.default_triggers)
    return inst


def compile_blueprint(blueprint: Blueprint) -> tuple[Strategy, list[str]]:
    """The plugin instances of ``blueprint`` and every problem found (compiled only if there are none)."""
    problems: list[str] = list(operator_problems(blueprint))
    strat = Strategy(name=blueprint.name)
    strat.planning = {p: [] for p in PLANNING_PHASES}
    strat.execution = {p: [] for p in EXECUTION_PHASES}
    event_nodes: list[tuple[str, Plugin]] = []
    for path, category, phase, wc in _located_workers(blueprint):
        inst, probs = _compiled_worker(path, category, phase, wc)
        problems += probs
        if inst is None:
            continue
        event_nodes.append((path, inst))
        if probs:
            continue
        strat.paths.append((path, inst))
        if isinstance(inst, PlanningWorker) and phase:
            strat.planning[phase].append(inst)
        elif isinstance(inst, ExecutionWorker) and phase:
            strat.execution[phase].append(inst)
        else:
            getattr(strat, category).append(inst)
    wirings = tuple((path, Wiring.of(inst)) for path, inst in event_nodes)
    problems += event_chain_problems(wirings, bool(blueprint.opportunity_workers), generation())
    strat.operators = resolve_operators(blueprint)
    return strat, problems


def validate_blueprint(blueprint: Blueprint) -> list[str]:
    """ALL problems of ``blueprint`` (empty list: valid), each naming the worker path and the fix."""
    return BlueprintValidator()(blueprint)


@dataclass(frozen=True)
class Wiring:
    """What event-chain validation needs of a worker: not the instance (a sweep validates thousands)."""

    name: str
    publishes: tuple[str, ...]
    listened: tuple[str, ...]

    def listened_events(self) -> tuple[str, ...]:
        return self.listened

    @classmethod
    def of(cls, worker: Plugin) -> Wiring:
        return cls(worker.name, tuple(worker.publishes), worker.listened_events())


@functools.lru_cache(maxsize=256)
def event_chain_problems(
    wirings: tuple[tuple[str, Wiring], ...], has_opportunity_workers: bool, registry_generation: int
) -> tuple[str, ...]:
    """:func:`validate_event_chains` of these wirings, once per sweep: its configurations share them
    (``registry_generation`` keys the answer to the registered plugins it depends on)."""
    return tuple(validate_event_chains(wirings, has_opportunity_workers))


def _config_key(wc: WorkerConfig) -> tuple[Any, ...]:
    """A hashable key of what a worker is configured with: plugin, subtype, params, triggers."""
    triggers = None if wc.triggers is None else tuple(wc.triggers)
    return (wc.plugin, wc.subtype, _params_key(wc.params), triggers)


def _params_key(params: dict[str, Any]) -> Any:
    """A hashable key of params; scalars keep their type (1, 1.0 and True validate differently)."""
    key = tuple(sorted((k, type(v), v) for k, v in params.items()))
    try:
        hash(key)
        return key
    except TypeError:  # lists, nested mappings
        return json.dumps(params, sort_keys=True, default=repr)


class BlueprintValidator:
    """``validate_blueprint`` with memory, for a sweep: its blueprints differ in a few params, so each
    distinct worker configuration is compiled once and each distinct event wiring checked once (a
    10,000-run sweep of one plugin: 10,000 param checks instead of 40,000 worker compilations)."""

    def __init__(self) -> None:
        self._workers: dict[tuple[Any, ...], tuple[Wiring | None, list[str]]] = {}
        self._chains: dict[tuple[Any, ...], list[str]] = {}

    def __call__(self, blueprint: Blueprint) -> list[str]:
        problems: list[str] = list(operator_problems(blueprint))
        nodes: list[tuple[str, Wiring]] = []
        for path, category, phase, wc in _located_workers(blueprint):
            key = (path, *_config_key(wc))
            known = self._workers.get(key)
            if known is None:
                inst, probs = _compile_worker(path, category, phase, wc)
                wiring = None if inst is None else Wiring.of(inst)
                known = self._workers[key] = (wiring, probs)
            wiring, probs = known
            problems += probs
            if wiring is not None:
                nodes.append((path, wiring))
        has_opportunities = bool(blueprint.opportunity_workers)
        chain_key = (has_opportunities, tuple(nodes))
        if chain_key not in self._chains:
            self._chains[chain_key] = validate_event_chains(nodes, has_opportunities)
        return problems + self._chains[chain_key]


def require_valid(blueprint: Blueprint, source: str | None = None) -> Strategy:
    strat, problems = compile_blueprint(blueprint)
    if problems:
        raise ConfigError(problems, source or f"strategy_blueprint {blueprint.name!r}")
    return strat
