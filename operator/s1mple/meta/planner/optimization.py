"""An optimization's plan: run ``i`` resolved from its mixed-radix digits, lazily and deterministically.

The dimensions come from :mod:`.dimensions`; a run's blueprint is its STRUCTURE (the structural choices,
resolved, validated and cached once) with the run's parameter values set on the matching workers.  Which
indices run depends on the search strategy: every one (grid), a seeded draw (:mod:`.sampling`, random),
or whatever the sampler proposes (bayesian, :mod:`s1mple.meta.search`).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from s1mple_engine.config import Blueprint, ConfigError, Operation, dump_model
from s1mple_engine.fingerprint import blueprint_plugins, code_fingerprint
from s1mple_engine.result import DEFAULT_BLOCKS
from s1mple_engine.runspec import run_id_of

from ..merge import merge_override_data
from ..models import PHASED_CATEGORIES, OptimizationConfig, SearchStrategy
from ..space import ComponentDim, Dimension, ParamDim, digits_of, fmt_value, index_of, product
from ..windows import FULL, RunWindow, plan_windows
from .base import MAX_REPORTED_PROBLEMS, BasePlan, ProblemLog, get_workers, select_link, set_workers
from .dimensions import build_dimensions
from .sampling import LAZY_SUBGRID, draw_random

STRUCTURE_CACHE = 4096
#: Above this many distinct configurations of one plugin, each param value is validated on its own.
MAX_VALIDATED_PER_PLUGIN = 20_000

Resolved = tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]


class OptimizationPlan(BasePlan):
    kind = "optimization"
    config: OptimizationConfig

    def __init__(
        self,
        config: OptimizationConfig,
        base_operation: Operation,
        *,
        source: str | None = None,
        max_combinations: int | None = None,
    ):
        super().__init__()
        self.config = config
        self.name = config.name
        self.source = source
        self.base_operation = base_operation
        self.max_combinations = max_combinations or config.max_combinations
        # runs record block statistics for CSCV; only a non-default block count goes into the run spec
        blocks = config.validation.cscv_blocks() or DEFAULT_BLOCKS
        self._blocks = {} if blocks == DEFAULT_BLOCKS else {"blocks": blocks}
        self.base_bp = dump_model(select_link(base_operation, config.strategy_link, source))
        self.base_op = dump_model(base_operation)
        self.base_op.pop("strategy_links", None)
        sampled = config.search.strategy != SearchStrategy.GRID
        self.dims = build_dimensions(
            config, self.base_bp, source, lazy_subgrid=LAZY_SUBGRID if sampled else None
        )
        self._sizes = [d.size for d in self.dims]
        self.total = product(self._sizes)
        if self.total == 0:
            empty = [d.name for d in self.dims if d.size == 0]
            raise ConfigError(
                f"no run left: parameter_constraints exclude every combination of {', '.join(empty)}", source
            )
        self.structural = [k for k, d in enumerate(self.dims) if d.structural]
        self.param_dims = [k for k, d in enumerate(self.dims) if not d.structural]
        self._cache: OrderedDict[tuple[int, ...], tuple[dict, dict]] = OrderedDict()
        self._sampled: list[int] | None = None
        self._resolved: tuple[int, Resolved, Any] | None = None
        self._check_cap()
        self.windows = self._plan_windows()

    # -- checks ---------------------------------------------------------------------------------------
    def _check_cap(self) -> None:
        cfg = self.config
        if cfg.search.strategy == SearchStrategy.GRID:
            if self.total > self.max_combinations:
                raise ConfigError(self._cap_message(), self.source)
        elif (cfg.search.max_trials or 0) > self.max_combinations:
            raise ConfigError(
                f"search.max_trials {cfg.search.max_trials:,} is above the cap of {self.max_combinations:,} "
                "runs; lower max_trials or raise the cap (max_combinations in the spec, "
                "or --max-combinations)",
                self.source,
            )

    def _cap_message(self) -> str:
        parts = []
        for d in self.dims:
            of = f" feasible of {d.grid_size:,}" if isinstance(d, ComponentDim) else ""
            parts.append(f"{d.name} ({d.size:,}{of})")
        dims = " x ".join(parts)
        return (
            f"optimization {self.name!r} expands to {self.total:,} runs, above the cap of "
            f"{self.max_combinations:,}: {dims}. Narrow a range (larger step, fewer values), raise the cap "
            "(max_combinations in the spec, or --max-combinations N), or sample the space with "
            "search: {strategy: random, max_trials: N} or {strategy: bayesian, max_trials: N}"
        )

    # -- identity ------------------------------------------------------------------------------------
    def spec_data(self) -> dict[str, Any]:
        return self.config.model_dump(
            mode="json", exclude_none=True, exclude={"parallel_config", "max_combinations"}
        )

    def search_info(self) -> dict[str, Any]:
        return self.config.search.model_dump(mode="json", exclude_none=True)

    # -- indices -------------------------------------------------------------------------------------
    def digits(self, index: int) -> list[int]:
        if not 0 <= index < self.total:
            raise IndexError(f"run index {index} outside 0..{self.total - 1}")
        return digits_of(index, self._sizes)

    def index_of(self, digits: list[int]) -> int:
        return index_of(digits, self._sizes)

    def _plan_windows(self) -> list[RunWindow]:
        """The trading windows every configuration runs in (one whole-data window without validation)."""
        v = self.config.validation
        if v.holdout is None and v.walk_forward is None:
            return [FULL]
        if self.config.search.strategy == SearchStrategy.BAYESIAN:
            raise ConfigError(
                "validation: holdout and walk_forward need search strategy grid or random (a bayesian "
                "search chooses trials from whole-data results)",
                self.source,
            )
        self.bar_times = self.base_times()
        return plan_windows(v, self.bar_times)

    def base_times(self) -> Any:
        """The timestamps of the base operation's bars: windows are planned as bar ranges of them."""
        from s1mple_engine.data import load_market_data

        op = self.base_operation
        try:
            return load_market_data(op.market_data, op.period).time
        except ConfigError as exc:
            raise ConfigError(f"validation plans windows on the bars' times: {exc}", self.source) from None

    def window_labels(self) -> list[str]:
        return [w.label for w in self.windows]

    def planned_indices(self) -> Sequence[int]:
        """Run indices: configuration ``c`` in window ``w`` is run ``c * len(windows) + w``."""
        base = self.configuration_indices()
        k = len(self.windows)
        if k == 1:
            return base
        if isinstance(base, range):
            return range(base.start * k, base.stop * k)
        return [c * k + w for c in base for w in range(k)]

    def configuration_indices(self) -> Sequence[int]:
        search = self.config.search
        if search.strategy == SearchStrategy.RANDOM:
            if self._sampled is None:
                self._sampled = draw_random(self, min(search.max_trials or 0, self.total), search.seed)
            return self._sampled
        if search.strategy == SearchStrategy.BAYESIAN:
            return range(min(search.max_trials or 0, self.total))  # trials; indices come from the sampler
        return range(self.total)

    # -- resolving a run -----------------------------------------------------------------------------
    def _structure(self, sdigits: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(blueprint dict with base params, {ref: [(category, phase, position)]}) of a structural choice."""
        hit = self._cache.get(sdigits)
        if hit is not None:
            self._cache.move_to_end(sdigits)
            return hit
        bp, planning_conf = self._apply_structure(sdigits)
        try:
            bp = dump_model(Blueprint.model_validate(bp))
        except Exception as exc:
            raise ConfigError(
                f"{self._labels_text(sdigits)}: invalid blueprint: {exc}", self.source
            ) from None
        positions = self._param_positions(bp, sdigits)
        code = code_fingerprint(blueprint_plugins(bp))  # parameters never change which plugins run
        entry = (bp, {"positions": positions, "planning": planning_conf, "code": code})
        self._cache[sdigits] = entry
        if len(self._cache) > STRUCTURE_CACHE:
            self._cache.popitem(last=False)
        return entry

    def _apply_structure(self, sdigits: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The base blueprint with the structural choices applied in order; the params they set per plugin."""
        bp = self.base_bp
        planning_conf: dict[str, Any] = {}
        for k, d in zip(self.structural, sdigits, strict=True):
            dim = self.dims[k]
            choice = dim.choices[d]  # type: ignore[attr-defined]
            if dim.kind == "worker_variant":
                bp = merge_override_data(bp, choice)
                for w in _override_workers(choice):
                    planning_conf[w["plugin"]] = dict(w.get("params") or {})
            elif dim.kind == "selection":
                cat, phase, workers = choice
                bp = set_workers(bp, cat, phase, [dict(w, params=dict(w["params"])) for w in workers])
                for w in workers:
                    planning_conf[w["plugin"]] = dict(w["params"])
            elif dim.kind == "planning":
                cat, phase, worker = choice
                bp = set_workers(bp, cat, phase, [dict(worker, params=dict(worker["params"]))])
                planning_conf[worker["plugin"]] = dict(worker["params"])
            elif dim.kind == "operator":
                op_id, ex, agg = choice
                ops = dict(bp.get("operator_overrides") or {})
                ops[op_id] = {"execution_strategy": ex, "aggregation_strategy": agg}
                bp = dict(bp, operator_overrides=ops)
        return bp, planning_conf

    def _param_positions(
        self, bp: dict[str, Any], sdigits: tuple[int, ...]
    ) -> dict[str, list[tuple[str, str | None, int]]]:
        """Where each swept param is set in a structure's blueprint: (category, phase, worker position)."""
        positions: dict[str, list[tuple[str, str | None, int]]] = {}
        for member in self._param_members():
            t = member.target
            assert t is not None
            found = [
                (t.category, t.phase, pos)
                for pos, w in enumerate(get_workers(bp, t.category, t.phase))
                if t.matches(w)
            ]
            if not found:
                have = [w.get("plugin") for w in get_workers(bp, t.category, t.phase)]
                raise ConfigError(
                    f"parameter_space.{t.entry}: no {t.plugin!r} worker"
                    f"{' of subtype ' + repr(t.subtype) if t.subtype else ''} in {t.where()} of "
                    f"blueprint {bp.get('name')!r}{self._labels_suffix(sdigits)} (has: {have or 'none'})",
                    self.source,
                )
            positions[member.ref] = found
        return positions

    def _param_members(self) -> Iterable[ParamDim]:
        for k in self.param_dims:
            yield from _members(self.dims[k])

    def _labels_text(self, sdigits: tuple[int, ...]) -> str:
        if not sdigits:
            return "base blueprint"
        return ", ".join(
            f"{self.dims[k].name}={self.dims[k].label(d)}"
            for k, d in zip(self.structural, sdigits, strict=True)
        )

    def _labels_suffix(self, sdigits: tuple[int, ...]) -> str:
        return f" (with {self._labels_text(sdigits)})" if sdigits else ""

    def resolve(self, digits: list[int]) -> Resolved:
        """(blueprint dict, labels, configuration) of the run with these digits."""
        sdigits = tuple(digits[k] for k in self.structural)
        bp, meta = self._structure(sdigits)
        positions = meta["positions"]
        labels = {self.dims[k].name: self.dims[k].label(digits[k]) for k in self.structural}
        configuration: dict[str, dict[str, Any]] = {p: dict(v) for p, v in meta["planning"].items()}
        assign: dict[tuple[str, str | None, int], dict[str, Any]] = {}
        for k in self.param_dims:
            dim = self.dims[k]
            pairs: Iterable[tuple[ParamDim, Any]]
            if isinstance(dim, ComponentDim):
                pairs = zip(dim.members, dim.value(digits[k]), strict=True)
            else:
                assert isinstance(dim, ParamDim)
                pairs = [(dim, dim.values[digits[k]])]
            for member, value in pairs:
                assert member.target is not None
                configuration.setdefault(member.target.plugin, {})[member.param] = value
                for pos in positions[member.ref]:
                    assign.setdefault(pos, {})[member.param] = value
        return _assign_params(bp, assign), labels, configuration

    def payload(self, index: int) -> dict[str, Any]:
        index, w = divmod(index, len(self.windows))
        if self._resolved is None or self._resolved[0] != index:  # a configuration's windows are adjacent
            digits = self.digits(index)
            code = self._structure(tuple(digits[k] for k in self.structural))[1]["code"]
            self._resolved = (index, self.resolve(digits), code)
        bp, labels, configuration = self._resolved[1]
        code = self._resolved[2]
        op = self.operation_of(bp)
        window = self.windows[w]
        op.update(window.operation_fields())
        out = {
            "run_id": run_id_of(op, code),
            "index": index,
            "kind": "optimization",
            "labels": dict(labels),
            "configuration": {k: dict(v) for k, v in configuration.items()},
            "operation": op,
            "code": code,
            **self._blocks,
        }
        if window.label:
            out["window"] = window.label
        return out

    def payload_for_digits(self, digits: list[int]) -> dict[str, Any]:
        return self.payload(self.index_of(digits))

    # -- validation ----------------------------------------------------------------------------------
    def validate(self, validator: Callable[[Blueprint], list[str]], limit: int = 10_000) -> list[str]:
        """Problems of every distinct worker configuration, each validated once (see docs/meta.md).

        A random search validates the configurations it drew, not its whole space; a bayesian search, whose
        trials are not known yet, each parameter value on its own.
        """
        log = ProblemLog(validator)
        drawn = None
        strategy = self.config.search.strategy
        if strategy == SearchStrategy.RANDOM:
            drawn = [self.digits(i) for i in self.configuration_indices()]
        self._validate_structures(log, drawn, limit)
        if log.problems:
            return log.problems[:MAX_REPORTED_PROBLEMS]
        first = [0] * len(self.dims)
        for plugin, ks in self._swept_plugins():
            for combo in self._plugin_combos(ks, drawn, each_value=strategy == SearchStrategy.BAYESIAN):
                digits = list(first)
                for k, d in zip(ks, combo, strict=True):
                    digits[k] = d
                bp, _, conf = self.resolve(digits)
                # the plugin's dimensions and its digits identify the blueprint (two equal values would
                # be validated twice, reported once): no canonical JSON of it, but for the first values,
                # which every plugin and the first structure share
                key = (tuple(ks), tuple(combo)) if any(combo) else None
                log.check(bp, functools.partial(_shown, plugin, conf), key=key)
                if log.full:
                    break
        return log.problems[:MAX_REPORTED_PROBLEMS]

    def _validate_structures(self, log: ProblemLog, drawn: list[list[int]] | None, limit: int) -> None:
        """1. every structure (structural choices; the drawn ones), with the first value of every param."""
        sizes_s = [self._sizes[k] for k in self.structural]
        if drawn is None:
            structures: Iterable[list[int]] = (
                digits_of(s, sizes_s) for s in range(min(product(sizes_s), limit))
            )
        else:
            structures = [list(t) for t in dict.fromkeys(tuple(d[k] for k in self.structural) for d in drawn)]
        for sd in structures:
            digits = [0] * len(self.dims)
            for k, d in zip(self.structural, sd, strict=True):
                digits[k] = d
            try:
                bp, labels, _ = self.resolve(digits)
            except ConfigError as exc:
                log.problems.extend(exc.problems)
                continue
            log.check(bp, ", ".join(f"{k}={v}" for k, v in labels.items()))

    def _swept_plugins(self) -> list[tuple[str, list[int]]]:
        """The parameter dimensions of each swept plugin (per parameter_space entry), in order."""
        by_plugin: dict[tuple[int, str], list[int]] = {}
        for k in self.param_dims:
            for m in _members(self.dims[k]):
                assert m.target is not None
                ks = by_plugin.setdefault((m.target.entry, m.target.plugin), [])
                if k not in ks:
                    ks.append(k)
        return [(plugin, ks) for (_entry, plugin), ks in by_plugin.items()]

    def _plugin_combos(
        self, ks: list[int], drawn: list[list[int]] | None, each_value: bool
    ) -> Iterable[list[int]]:
        """2. the plugin's own choices to validate: the drawn ones, all of them, or each value once."""
        if drawn is not None:
            return [list(t) for t in dict.fromkeys(tuple(d[k] for k in ks) for d in drawn)]
        sizes = [self._sizes[k] for k in ks]
        n = product(sizes)
        if n <= MAX_VALIDATED_PER_PLUGIN and not each_value:
            return (digits_of(c, sizes) for c in range(n))
        probes = [_probes(self.dims[k]) for k in ks]  # too many: each value on its own
        return ([d if j == i else 0 for j in range(len(ks))] for i in range(len(ks)) for d in probes[i])

    # -- reporting -----------------------------------------------------------------------------------
    def describe(self, samples: int = 3) -> dict[str, Any]:
        space = product([(d.grid_size if isinstance(d, ComponentDim) else d.size) for d in self.dims])
        out: dict[str, Any] = {
            "kind": "optimization",
            "name": self.name,
            "optimization_id": self.plan_id,
            "base_operation": self.config.base_operation,
            "total_combinations": self.total,
            "space_without_constraints": space,
            "planned_runs": self.planned_runs,
            "max_combinations": self.max_combinations,
            "search": self.search_info(),
            "dimensions": [d.info() for d in self.dims],
            "parameter_constraints": list(self.config.parameter_constraints),
        }
        if len(self.windows) > 1 or self.windows[0].segments:
            out["windows"] = [f"{w.label} (bars {w.start}..{w.end})" for w in self.windows if w.label] + [
                f"{s.label} (bars {s.start}..{s.end}, a segment of the whole-data run)"
                for w in self.windows
                for s in w.segments
            ]
        if self.config.search.strategy == SearchStrategy.BAYESIAN:
            picks = [0, self.total - 1] if self.total > 1 else [0]
        else:
            picks = self.sample_indices(samples)
        out["samples"] = [_sample(self.payload(i)) for i in picks] if self.total else []
        return out


def _shown(plugin: str, configuration: dict[str, dict[str, Any]]) -> str:
    """``plugin(param=value, ...)``: where a problem of a plugin's configuration is reported."""
    shown = ", ".join(f"{p}={fmt_value(v)}" for p, v in configuration.get(plugin, {}).items())
    return f"{plugin}({shown})"


def _members(dim: Dimension) -> list[ParamDim]:
    if isinstance(dim, ComponentDim):
        return dim.members
    assert isinstance(dim, ParamDim)
    return [dim]


def _probes(dim: Dimension) -> list[int]:
    assert isinstance(dim, ParamDim | ComponentDim)
    return dim.probes()


def _assign_params(
    bp: dict[str, Any], assign: dict[tuple[str, str | None, int], dict[str, Any]]
) -> dict[str, Any]:
    """``bp`` with params set on workers by (category, phase, position); only touched lists are copied."""
    if not assign:
        return bp
    bp = dict(bp)
    copied: dict[tuple[str, str | None], list] = {}
    for (cat, phase, pos), params in assign.items():
        key = (cat, phase)
        if key not in copied:
            copied[key] = list(get_workers(bp, cat, phase))
            bp = set_workers(bp, cat, phase, copied[key])
        w = copied[key][pos]
        copied[key][pos] = dict(w, params={**w.get("params", {}), **params})
    return bp


def _override_workers(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every worker entry named in override data (any category or phase)."""
    out: list[dict[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, list):
            out += [w for w in value if isinstance(w, dict) and "plugin" in w]
        elif isinstance(value, dict) and key in PHASED_CATEGORIES:
            for workers in value.values():
                out += [w for w in workers or [] if isinstance(w, dict) and "plugin" in w]
    return out


def _sample(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        k: payload[k] for k in ("index", "run_id", "labels", "configuration") if payload.get(k) is not None
    }
