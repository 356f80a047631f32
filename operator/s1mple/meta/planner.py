"""Expand an optimization or a variant test into run specs, lazily and deterministically.

``plan_optimization`` / ``plan_variant_test`` (or :func:`plan_file`) load the base operation, build the
dimensions, count the runs (constraints included, without materialising them) and refuse a space above
the cap.  ``plan.payload(i)`` is run ``i``: a fully resolved operation with ONE inline blueprint, its run id
(content hash), choice labels and configuration.  ``plan.validate(validate_blueprint)`` checks every
distinct worker configuration once and reports all problems together.

How a run's blueprint is built from the base blueprint, in this order (later steps see earlier ones):

1. ``worker_variants``: the chosen variant's overrides are deep-merged (rules in :mod:`.merge`);
2. ``worker_selection``: the category's (or phase's) workers become the chosen subtype's plugins;
3. ``planning_variants``: the phase's workers become the chosen variant worker;
4. ``operator_variants``: ``operator_overrides[op]`` becomes the chosen execution/aggregation;
5. ``parameter_space``: params are set on every matching worker (plugin, and subtype when given).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s1mple_engine.config import (
    DEFAULT_AGGREGATION,
    Blueprint,
    ConfigError,
    Operation,
    dump_model,
    load_operation,
    resolve_path,
    suggest,
)
from s1mple_engine.fingerprint import blueprint_plugins, code_fingerprint
from s1mple_engine.registry import all_plugins
from s1mple_engine.result import DEFAULT_BLOCKS
from s1mple_engine.runspec import DimensionInfo, RunManifest, canonical_json, content_hash, run_id_of

from .expr import Constraint, ConstraintSyntaxError, parse_constraint
from .merge import merge_override_data
from .models import (
    PHASED_CATEGORIES,
    OptimizationConfig,
    ParamRange,
    SearchStrategy,
    VariantConfig,
    is_range_mapping,
    load_meta,
)
from .space import (
    ChoiceDim,
    ComponentDim,
    Dimension,
    ParamDim,
    ParamTarget,
    digits_of,
    fmt_value,
    index_of,
    product,
)
from .windows import FULL, RunWindow, plan_windows

MAX_PHASE_OPTIONS = 100_000
STRUCTURE_CACHE = 4096
#: Above this many distinct configurations of one plugin, each param value is validated on its own.
MAX_VALIDATED_PER_PLUGIN = 20_000
MAX_REPORTED_PROBLEMS = 60


def _phase_key(category: str) -> str:
    return "planning_workers" if category == "planning_workers" else "execution_workers"


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


def _category_of_phase(phase: str) -> str:
    for cat, phases in PHASED_CATEGORIES.items():
        if phase in phases:
            return cat
    raise ValueError(phase)  # pragma: no cover - phases are validated by the model


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
    blueprints = [link.blueprint for link in op.strategy_links]
    names = [bp.name for bp in blueprints]  # type: ignore[union-attr]
    if name is None:
        if len(blueprints) == 1:
            return blueprints[0]  # type: ignore[return-value]
        raise ConfigError(
            f"base operation {op.name!r} links {len(blueprints)} blueprints ({', '.join(names)}); "
            "set strategy_link: NAME to choose the one to vary",
            source,
        )
    if name not in names:
        raise ConfigError(
            f"strategy_link: no blueprint {name!r} in the base operation{suggest(name, names)}", source
        )
    return blueprints[names.index(name)]  # type: ignore[return-value]


class BasePlan:
    kind: str = ""
    name: str = ""
    source: str | None = None
    dims: list[Dimension]
    total: int = 0

    def __init__(self) -> None:
        self._sizes: list[int] = []
        self.base_operation: Operation
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

    def planned_indices(self) -> list[int] | range:
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

    def sample_indices(self, n: int) -> list[int]:
        idx = list(self.planned_indices()) if self.planned_runs <= 10_000 else None
        count = self.planned_runs
        if count == 0:
            return []
        picks = sorted({round(k * (count - 1) / max(n - 1, 1)) for k in range(min(n, count))})
        if idx is not None:
            return [idx[p] for p in picks]
        planned = self.planned_indices()
        return [planned[p] for p in picks]


# ==========================================================================================================
# Optimization
# ==========================================================================================================


class OptimizationPlan(BasePlan):
    kind = "optimization"

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
        blueprint = select_link(base_operation, config.strategy_link, source)
        self.base_bp = dump_model(blueprint)
        self.base_op = dump_model(base_operation)
        self.base_op.pop("strategy_links", None)
        self.dims = []
        self._build_dimensions()
        self._sizes = [d.size for d in self.dims]
        self.total = product(self._sizes)
        if self.total == 0:
            empty = [d.name for d in self.dims if d.size == 0]
            raise ConfigError(
                f"no run left: parameter_constraints exclude every combination of {', '.join(empty)}",
                source,
            )
        self.structural = [k for k, d in enumerate(self.dims) if d.structural]
        self.param_dims = [k for k, d in enumerate(self.dims) if not d.structural]
        self._cache: OrderedDict[tuple[int, ...], tuple[dict, dict]] = OrderedDict()
        self._sampled: list[int] | None = None
        self._resolved: tuple[int, tuple[dict, dict, dict], Any] | None = None
        self._check_cap()
        self.windows = self._plan_windows()

    # -- building ------------------------------------------------------------------------------------
    def _build_dimensions(self) -> None:
        cfg, src = self.config, self.source
        problems: list[str] = []
        if cfg.worker_variants:
            self.dims.append(
                ChoiceDim(
                    name="worker_variant",
                    kind="worker_variant",
                    size=len(cfg.worker_variants),
                    labels=[v.name for v in cfg.worker_variants],
                    choices=[
                        v.overrides.model_dump(mode="json", exclude_none=True) for v in cfg.worker_variants
                    ],
                )
            )
        for i, sel in enumerate(cfg.worker_selection):
            where = sel.worker_category + (f".{sel.worker_phase}" if sel.worker_phase else "")
            base = {w["plugin"]: w for w in get_workers(self.base_bp, sel.worker_category, sel.worker_phase)}
            choices = []
            for sv in sel.subtype_variants:
                workers = []
                for plugin in sv.plugins:
                    params = sv.params.get(plugin, base.get(plugin, {}).get("params", {}))
                    w = {"plugin": plugin, "subtype": sv.subtype, "params": dict(params)}
                    if base.get(plugin, {}).get("triggers") is not None:
                        w["triggers"] = list(base[plugin]["triggers"])
                    workers.append(w)
                extra = sorted(set(sv.params) - set(sv.plugins))
                if extra:
                    problems.append(
                        f"worker_selection.{i}: params for {extra}, "
                        f"which subtype {sv.subtype!r} does not select"
                    )
                choices.append((sel.worker_category, sel.worker_phase, workers))
            labels = [sv.subtype for sv in sel.subtype_variants]
            self.dims.append(
                ChoiceDim(
                    name=f"selection:{where}",
                    kind="selection",
                    size=len(choices),
                    labels=labels,
                    choices=choices,
                )
            )
        for i, pv in enumerate(cfg.planning_variants):
            category = _category_of_phase(pv.phase)
            labels, choices = [], []
            for j, opt in enumerate(pv.variants):
                ranged, fixed = [], {}
                for pname, pval in opt.params.items():
                    if is_range_mapping(pval):
                        try:
                            rng = ParamRange.model_validate(pval)
                        except Exception as exc:  # pydantic ValidationError
                            problems.append(f"planning_variants.{i}.variants.{j}.params.{pname}: {exc}")
                            continue
                        ranged.append((pname, rng.expand()))
                    else:
                        fixed[pname] = pval
                sub_sizes = [len(v) for _, v in ranged]
                if len(choices) + product(sub_sizes) > MAX_PHASE_OPTIONS:
                    problems.append(
                        f"planning_variants.{i}: more than {MAX_PHASE_OPTIONS:,} options; sweep the params "
                        "of this plugin in parameter_space instead"
                    )
                    break
                for k in range(product(sub_sizes)):
                    params = dict(fixed)
                    digits = digits_of(k, sub_sizes)
                    for (pname, values), d in zip(ranged, digits, strict=True):
                        params[pname] = values[d]
                    w: dict[str, Any] = {"plugin": opt.plugin, "params": params}
                    if opt.subtype is not None:
                        w["subtype"] = opt.subtype
                    if opt.triggers is not None:
                        w["triggers"] = list(opt.triggers)
                    swept = {pname: params[pname] for pname, _ in ranged}
                    label = opt.plugin + (
                        "(" + ", ".join(f"{p}={fmt_value(v)}" for p, v in swept.items()) + ")"
                        if swept
                        else ""
                    )
                    labels.append(label)
                    choices.append((category, pv.phase, w))
            self.dims.append(
                ChoiceDim(
                    name=f"phase:{pv.phase}",
                    kind="planning",
                    size=len(choices),
                    labels=labels,
                    choices=choices,
                )
            )
        for ov in cfg.operator_variants:
            labels, choices = [], []
            for ex in ov.execution_strategy.values:
                aggs = (
                    ov.aggregation_strategy.values if ov.aggregation_strategy else [DEFAULT_AGGREGATION[ex]]
                )
                for agg in aggs:
                    labels.append(f"{ex.value}/{agg.value}")
                    choices.append((ov.operator_id, ex.value, agg.value))
            self.dims.append(
                ChoiceDim(
                    name=f"operator:{ov.operator_id}",
                    kind="operator",
                    size=len(choices),
                    labels=labels,
                    choices=choices,
                )
            )
        # parameters, with constraint components merged into one dimension each
        params: list[ParamDim] = []
        known = list(all_plugins())
        for i, entry in enumerate(cfg.parameter_space):
            if entry.worker_plugin not in known:  # a typo: say so before what follows from it
                problems.append(
                    f"parameter_space.{i}.worker_plugin: unknown plugin {entry.worker_plugin!r}"
                    f"{suggest(entry.worker_plugin, known)}"
                )
            target = ParamTarget(
                i, entry.worker_category, entry.worker_phase, entry.worker_plugin, entry.subtype
            )
            for pname, rng in entry.parameters.items():
                values = rng.expand()
                params.append(
                    ParamDim(
                        name=f"{entry.worker_plugin}.{pname}",
                        kind="param",
                        size=len(values),
                        ref=f"{entry.worker_plugin}.{pname}",
                        param=pname,
                        target=target,
                        values=values,
                        ordinal=rng.is_ordinal(),
                    )
                )
        constraints = self._parse_constraints(params, problems)
        if problems:
            raise ConfigError(problems, src)
        groups = _components([c.refs for c in constraints])
        emitted: set[str] = set()
        for p in params:
            if p.ref in emitted:
                continue
            group = next((g for g in groups if p.ref in g), None)
            if group is None:
                self.dims.append(p)
                emitted.add(p.ref)
                continue
            members = [q for q in params if q.ref in group]
            cons = [c for c in constraints if set(c.refs) <= set(group)]
            try:
                self.dims.append(ComponentDim.build(members, cons))
            except ValueError as exc:
                raise ConfigError(f"parameter_constraints: {exc}", src) from None
            emitted.update(group)

    def _parse_constraints(self, params: list[ParamDim], problems: list[str]) -> list[Constraint]:
        valid = [p.ref for p in params]
        by_param: dict[str, list[str]] = {}
        for p in params:
            by_param.setdefault(p.param, []).append(p.ref)
        out = []
        for i, text in enumerate(self.config.parameter_constraints):
            where = f"parameter_constraints.{i} {text!r}"
            try:
                c = parse_constraint(text)
            except ConstraintSyntaxError as exc:
                problems.append(f"{where}: {exc}")
                continue
            mapping, bad = {}, []
            for ref in c.refs:
                if ref in valid:
                    mapping[ref] = ref
                elif "." not in ref and len(by_param.get(ref, [])) == 1:
                    mapping[ref] = by_param[ref][0]
                elif "." not in ref and len(by_param.get(ref, [])) > 1:
                    bad.append(f"{ref!r} is ambiguous ({', '.join(by_param[ref])}); write PLUGIN.PARAM")
                else:
                    bad.append(f"unknown reference {ref!r}{suggest(ref, valid) if valid else ''}")
            if bad:
                if not valid:
                    bad.append("no parameter is swept: constraints refer to parameter_space params")
                problems.append(f"{where}: " + "; ".join(bad))
                continue
            if any(k != v for k, v in mapping.items()):
                c = Constraint(
                    text=c.text, tree=_rename(c.tree, mapping), refs=tuple(mapping[r] for r in c.refs)
                )
            for ref in c.refs:
                p = next(q for q in params if q.ref == ref)
                if not all(isinstance(v, int | float) for v in p.values):
                    problems.append(
                        f"{where}: {ref} has non-numeric values {p.values}; constraints compare numbers"
                    )
            out.append(c)
        return out

    def _check_cap(self) -> None:
        cfg = self.config
        if cfg.search.strategy == SearchStrategy.GRID:
            if self.total > self.max_combinations:
                raise ConfigError(self._cap_message(), self.source)
        elif cfg.search.max_trials > self.max_combinations:
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

    def planned_indices(self) -> list[int] | range:
        """Run indices: configuration ``c`` in window ``w`` is run ``c * len(windows) + w``."""
        base = self.configuration_indices()
        k = len(self.windows)
        if k == 1:
            return base
        if isinstance(base, range):
            return range(base.start * k, base.stop * k)
        return [c * k + w for c in base for w in range(k)]

    def configuration_indices(self) -> list[int] | range:
        search = self.config.search
        if search.strategy == SearchStrategy.RANDOM:
            if self._sampled is None:
                k = min(search.max_trials, self.total)
                self._sampled = sorted(random.Random(search.seed).sample(range(self.total), k))
            return self._sampled
        if search.strategy == SearchStrategy.BAYESIAN:
            return range(min(search.max_trials, self.total))  # trials; indices come from the sampler
        return range(self.total)

    # -- resolving a run -----------------------------------------------------------------------------
    def _structure(self, sdigits: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(blueprint dict with base params, {ref: [(category, phase, position)]}) of a structural choice."""
        hit = self._cache.get(sdigits)
        if hit is not None:
            self._cache.move_to_end(sdigits)
            return hit
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
        try:
            bp = dump_model(Blueprint.model_validate(bp))
        except Exception as exc:
            raise ConfigError(
                f"{self._labels_text(sdigits)}: invalid blueprint: {exc}", self.source
            ) from None
        positions: dict[str, list[tuple[str, str | None, int]]] = {}
        for k in self.param_dims:
            dim = self.dims[k]
            for member in dim.members if isinstance(dim, ComponentDim) else [dim]:
                t = member.target
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
        code = code_fingerprint(blueprint_plugins(bp))  # parameters never change which plugins run
        entry = (bp, {"positions": positions, "planning": planning_conf, "code": code})
        self._cache[sdigits] = entry
        if len(self._cache) > STRUCTURE_CACHE:
            self._cache.popitem(last=False)
        return entry

    def _labels_text(self, sdigits: tuple[int, ...]) -> str:
        if not sdigits:
            return "base blueprint"
        return ", ".join(
            f"{self.dims[k].name}={self.dims[k].label(d)}"
            for k, d in zip(self.structural, sdigits, strict=True)
        )

    def _labels_suffix(self, sdigits: tuple[int, ...]) -> str:
        return f" (with {self._labels_text(sdigits)})" if sdigits else ""

    def resolve(self, digits: list[int]) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]:
        """(blueprint dict, labels, configuration) of the run with these digits."""
        sdigits = tuple(digits[k] for k in self.structural)
        bp, meta = self._structure(sdigits)
        positions = meta["positions"]
        labels = {self.dims[k].name: self.dims[k].label(digits[k]) for k in self.structural}
        configuration: dict[str, dict[str, Any]] = {p: dict(v) for p, v in meta["planning"].items()}
        assign: dict[tuple[str, str | None, int], dict[str, Any]] = {}
        for k in self.param_dims:
            dim = self.dims[k]
            if isinstance(dim, ComponentDim):
                pairs = zip(dim.members, dim.value(digits[k]), strict=True)
            else:
                pairs = [(dim, dim.values[digits[k]])]
            for member, value in pairs:
                configuration.setdefault(member.target.plugin, {})[member.param] = value
                for pos in positions[member.ref]:
                    assign.setdefault(pos, {})[member.param] = value
        if assign:
            bp = dict(bp)
            copied: dict[tuple[str, str | None], list] = {}
            for (cat, phase, pos), params in assign.items():
                key = (cat, phase)
                if key not in copied:
                    copied[key] = list(get_workers(bp, cat, phase))
                    bp = set_workers(bp, cat, phase, copied[key])
                w = copied[key][pos]
                copied[key][pos] = dict(w, params={**w.get("params", {}), **params})
        return bp, labels, configuration

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
        if window.label:
            op["window"] = window.operation_window()
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
        """Problems of every distinct worker configuration, each validated once (see docs/meta.md)."""
        problems: list[str] = []
        seen_problem: set[str] = set()

        def check(bp: dict[str, Any], where: str) -> None:
            key = canonical_json(bp)
            if key in checked:
                return
            checked.add(key)
            try:
                found = validator(Blueprint.model_validate(bp))
            except ConfigError as exc:
                found = exc.problems
            except Exception as exc:
                found = [f"{type(exc).__name__}: {exc}"]
            for p in found:
                if p not in seen_problem:
                    seen_problem.add(p)
                    problems.append(f"{where}: {p}" if where else p)

        checked: set[str] = set()
        first = [0] * len(self.dims)
        sizes_s = [self._sizes[k] for k in self.structural]
        n_struct = product(sizes_s)
        # 1. every structure (structural choices), with the first value of every parameter
        for s in range(min(n_struct, limit)):
            sd = digits_of(s, sizes_s)
            digits = list(first)
            for k, d in zip(self.structural, sd, strict=True):
                digits[k] = d
            try:
                bp, labels, _ = self.resolve(digits)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            check(bp, ", ".join(f"{k}={v}" for k, v in labels.items()))
        if problems:
            return problems[:MAX_REPORTED_PROBLEMS]
        # 2. every distinct configuration of each swept plugin (its own params vary, the rest stay first)
        by_plugin: dict[tuple[int, str], list[int]] = {}
        for k in self.param_dims:
            dim = self.dims[k]
            members = dim.members if isinstance(dim, ComponentDim) else [dim]
            for m in members:
                by_plugin.setdefault((m.target.entry, m.target.plugin), [])
                if k not in by_plugin[(m.target.entry, m.target.plugin)]:
                    by_plugin[(m.target.entry, m.target.plugin)].append(k)
        for (_entry, plugin), ks in by_plugin.items():
            sizes = [self._sizes[k] for k in ks]
            n = product(sizes)
            if n <= MAX_VALIDATED_PER_PLUGIN:
                combos = (digits_of(c, sizes) for c in range(n))
            else:  # too many: each dimension's values on their own
                combos = (
                    [d if j == i else 0 for j in range(len(ks))]
                    for i in range(len(ks))
                    for d in range(sizes[i])
                )
            for combo in combos:
                digits = list(first)
                for k, d in zip(ks, combo, strict=True):
                    digits[k] = d
                bp, _, conf = self.resolve(digits)
                shown = ", ".join(f"{p}={fmt_value(v)}" for p, v in conf.get(plugin, {}).items())
                check(bp, f"{plugin}({shown})")
                if len(problems) >= MAX_REPORTED_PROBLEMS:
                    break
        return problems[:MAX_REPORTED_PROBLEMS]

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
        if len(self.windows) > 1:
            out["windows"] = [f"{w.label} (bars {w.start}..{w.end})" for w in self.windows]
        if self.config.search.strategy == SearchStrategy.BAYESIAN:
            picks = [0, self.total - 1] if self.total > 1 else [0]
        else:
            picks = self.sample_indices(samples)
        out["samples"] = [_sample(self.payload(i)) for i in picks] if self.total else []
        return out


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


def _rename(node: tuple, mapping: dict[str, str]) -> tuple:
    kind = node[0]
    if kind == "ref":
        return ("ref", mapping.get(node[1], node[1]))
    if kind == "num":
        return node
    if kind == "neg":
        return ("neg", _rename(node[1], mapping))
    if kind == "bin":
        return ("bin", node[1], _rename(node[2], mapping), _rename(node[3], mapping))
    if kind == "cmp":
        return ("cmp", [x if isinstance(x, str) else _rename(x, mapping) for x in node[1]])
    return ("and", [_rename(x, mapping) for x in node[1]])


def _components(ref_sets: list[tuple[str, ...]]) -> list[list[str]]:
    """Connected groups of refs that appear together in a constraint (union-find), in first-seen order."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order: list[str] = []
    for refs in ref_sets:
        for r in refs:
            if r not in order:
                order.append(r)
            find(r)
        for a, b in zip(refs, refs[1:], strict=False):
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for r in order:
        groups.setdefault(find(r), []).append(r)
    return list(groups.values())


# ==========================================================================================================
# Variant test
# ==========================================================================================================


class VariantPlan(BasePlan):
    kind = "variant_test"

    def __init__(self, config: VariantConfig, base_operation: Operation, *, source: str | None = None):
        super().__init__()
        self.config = config
        self.name = config.name
        self.source = source
        if config.market_period is not None:
            base_operation = base_operation.model_copy(update={"period": config.market_period})
        self.base_operation = base_operation
        blueprint = select_link(base_operation, config.strategy_link, source)
        self.base_bp = dump_model(blueprint)
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
        for cat in ("context_workers", "opportunity_workers", "threat_workers"):
            for w in bp.get(cat) or []:
                configuration.setdefault(w["plugin"], dict(w.get("params") or {}))
        for cat in ("planning_workers", "execution_workers"):
            for workers in (bp.get(cat) or {}).values():
                for w in workers:
                    configuration.setdefault(w["plugin"], dict(w.get("params") or {}))
        name = self.config.variants[index].name
        return {
            "run_id": run_id_of(op, code := code_fingerprint(blueprint_plugins(bp))),
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
                try:
                    seen[key] = list(validator(Blueprint.model_validate(bp)))
                except ConfigError as exc:
                    seen[key] = exc.problems
                except Exception as exc:
                    seen[key] = [f"{type(exc).__name__}: {exc}"]
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


# ==========================================================================================================
# Entry points
# ==========================================================================================================


def plan_optimization(
    config: OptimizationConfig,
    *,
    source: str | Path | None = None,
    data: str | None = None,
    max_combinations: int | None = None,
) -> OptimizationPlan:
    op = load_base_operation(config.base_operation, source, data)
    return OptimizationPlan(
        config, op, source=str(source) if source else None, max_combinations=max_combinations
    )


def plan_variant_test(
    config: VariantConfig, *, source: str | Path | None = None, data: str | None = None
) -> VariantPlan:
    op = load_base_operation(config.base_operation, source, data)
    return VariantPlan(config, op, source=str(source) if source else None)


def plan_file(
    path: str | Path, *, data: str | None = None, max_combinations: int | None = None
) -> OptimizationPlan | VariantPlan:
    config = load_meta(path)
    if isinstance(config, OptimizationConfig):
        return plan_optimization(config, source=path, data=data, max_combinations=max_combinations)
    return plan_variant_test(config, source=path, data=data)
