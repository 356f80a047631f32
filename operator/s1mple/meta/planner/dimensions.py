"""The dimensions of an optimization, one builder per kind, in the order a run's blueprint is built:

``worker_variants`` -> ``worker_selection`` -> ``planning_variants`` -> ``operator_variants`` ->
``parameter_space`` (params tied by ``parameter_constraints`` become one constrained dimension each).

Each builder returns its dimensions and appends what is wrong to ``problems``, so a spec's mistakes are
reported together.
"""

from __future__ import annotations

from typing import Any

from s1mple_engine.config import DEFAULT_AGGREGATION, ConfigError, suggest
from s1mple_engine.registry import all_plugins

from ..expr import Constraint, ConstraintSyntaxError, parse_constraint
from ..models import (
    PHASED_CATEGORIES,
    OperatorVariant,
    OptimizationConfig,
    ParamRange,
    PhaseVariantOption,
    PlanningVariantDimension,
    WorkerSelection,
    is_range_mapping,
)
from ..space import ChoiceDim, ComponentDim, Dimension, ParamDim, ParamTarget, digits_of, fmt_value, product
from .base import get_workers

MAX_PHASE_OPTIONS = 100_000


def build_dimensions(
    cfg: OptimizationConfig, base_bp: dict[str, Any], source: str | None, *, lazy_subgrid: int | None = None
) -> list[Dimension]:
    """Every dimension of ``cfg`` over the base blueprint; all problems raised together as one ConfigError.

    ``lazy_subgrid``: constrained groups spanning more combinations than this are not enumerated; their
    constraints are checked per draw (random and bayesian searches; see :meth:`ComponentDim.lazy`).
    """
    problems: list[str] = []
    dims: list[Dimension] = []
    dims += worker_variant_dims(cfg)
    for i, sel in enumerate(cfg.worker_selection):
        dims.append(selection_dim(i, sel, base_bp, problems))
    for i, pv in enumerate(cfg.planning_variants):
        dims.append(planning_dim(i, pv, problems))
    dims += [operator_dim(ov) for ov in cfg.operator_variants]
    params = param_dims(cfg, problems)
    constraints = parse_constraints(cfg.parameter_constraints, params, problems)
    if problems:
        raise ConfigError(problems, source)
    try:
        dims += constrained_dims(params, constraints, lazy_subgrid)
    except ValueError as exc:
        raise ConfigError(f"parameter_constraints: {exc}", source) from None
    return dims


def _choice_dim(name: str, kind: str, labels: list[str], choices: list[Any]) -> ChoiceDim:
    return ChoiceDim(name=name, kind=kind, size=len(choices), labels=labels, choices=choices)


def category_of_phase(phase: str) -> str:
    for cat, phases in PHASED_CATEGORIES.items():
        if phase in phases:
            return cat
    raise ValueError(phase)  # pragma: no cover - phases are validated by the model


# -- structural dimensions ---------------------------------------------------------------------------------
def worker_variant_dims(cfg: OptimizationConfig) -> list[Dimension]:
    """``worker_variants``: one dimension whose choices are override documents (deep-merged in order)."""
    if not cfg.worker_variants:
        return []
    overrides = [v.overrides.model_dump(mode="json", exclude_none=True) for v in cfg.worker_variants]
    return [_choice_dim("worker_variant", "worker_variant", [v.name for v in cfg.worker_variants], overrides)]


def selection_dim(i: int, sel: WorkerSelection, base_bp: dict[str, Any], problems: list[str]) -> ChoiceDim:
    """``worker_selection.i``: the category's (or phase's) workers become one subtype's plugins."""
    where = sel.worker_category + (f".{sel.worker_phase}" if sel.worker_phase else "")
    base = {w["plugin"]: w for w in get_workers(base_bp, sel.worker_category, sel.worker_phase)}
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
                f"worker_selection.{i}: params for {extra}, which subtype {sv.subtype!r} does not select"
            )
        choices.append((sel.worker_category, sel.worker_phase, workers))
    return _choice_dim(
        f"selection:{where}", "selection", [sv.subtype for sv in sel.subtype_variants], choices
    )


def planning_dim(i: int, pv: PlanningVariantDimension, problems: list[str]) -> ChoiceDim:
    """``planning_variants.i``: the phase's workers become one variant worker (ranged params expanded)."""
    category = category_of_phase(pv.phase)
    labels: list[str] = []
    choices: list[Any] = []
    for j, opt in enumerate(pv.variants):
        fixed, ranged = _phase_option_params(f"planning_variants.{i}.variants.{j}", opt, problems)
        if len(choices) + product([len(v) for _, v in ranged]) > MAX_PHASE_OPTIONS:
            problems.append(
                f"planning_variants.{i}: more than {MAX_PHASE_OPTIONS:,} options; sweep the params "
                "of this plugin in parameter_space instead"
            )
            break
        for label, w in _phase_option_workers(opt, fixed, ranged):
            labels.append(label)
            choices.append((category, pv.phase, w))
    return _choice_dim(f"phase:{pv.phase}", "planning", labels, choices)


def _phase_option_params(
    where: str, opt: PhaseVariantOption, problems: list[str]
) -> tuple[dict[str, Any], list[tuple[str, list[Any]]]]:
    """An option's fixed params and its ranged ones expanded to their values."""
    ranged: list[tuple[str, list[Any]]] = []
    fixed: dict[str, Any] = {}
    for pname, pval in opt.params.items():
        if not is_range_mapping(pval):
            fixed[pname] = pval
            continue
        try:
            ranged.append((pname, ParamRange.model_validate(pval).expand()))
        except Exception as exc:  # pydantic ValidationError
            problems.append(f"{where}.params.{pname}: {exc}")
    return fixed, ranged


def _phase_option_workers(
    opt: PhaseVariantOption, fixed: dict[str, Any], ranged: list[tuple[str, list[Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    """(label, worker) of every combination of one option's ranged params (none ranged: one worker)."""
    sub_sizes = [len(v) for _, v in ranged]
    out = []
    for k in range(product(sub_sizes)):
        swept = {pname: values[d] for (pname, values), d in zip(ranged, digits_of(k, sub_sizes), strict=True)}
        w: dict[str, Any] = {"plugin": opt.plugin, "params": {**fixed, **swept}}
        if opt.subtype is not None:
            w["subtype"] = opt.subtype
        if opt.triggers is not None:
            w["triggers"] = list(opt.triggers)
        shown = ", ".join(f"{p}={fmt_value(v)}" for p, v in swept.items())
        out.append((opt.plugin + (f"({shown})" if swept else ""), w))
    return out


def operator_dim(ov: OperatorVariant) -> ChoiceDim:
    """``operator_variants``: an operator's execution/aggregation strategy pair."""
    labels, choices = [], []
    for ex in ov.execution_strategy.values:
        aggs = ov.aggregation_strategy.values if ov.aggregation_strategy else [DEFAULT_AGGREGATION[ex]]
        for agg in aggs:
            labels.append(f"{ex.value}/{agg.value}")
            choices.append((ov.operator_id, ex.value, agg.value))
    return _choice_dim(f"operator:{ov.operator_id}", "operator", labels, choices)


# -- parameters ----------------------------------------------------------------------------------------------
def param_dims(cfg: OptimizationConfig, problems: list[str]) -> list[ParamDim]:
    """``parameter_space``: one dimension per swept parameter (before constraints group them)."""
    params: list[ParamDim] = []
    known = list(all_plugins())
    for i, entry in enumerate(cfg.parameter_space):
        if entry.worker_plugin not in known:  # a typo: say so before what follows from it
            problems.append(
                f"parameter_space.{i}.worker_plugin: unknown plugin {entry.worker_plugin!r}"
                f"{suggest(entry.worker_plugin, known)}"
            )
        target = ParamTarget(i, entry.worker_category, entry.worker_phase, entry.worker_plugin, entry.subtype)
        for pname, rng in entry.parameters.items():
            values = rng.expand()
            ref = f"{entry.worker_plugin}.{pname}"
            params.append(
                ParamDim(
                    name=ref,
                    kind="param",
                    size=len(values),
                    ref=ref,
                    param=pname,
                    target=target,
                    values=values,
                    ordinal=rng.is_ordinal(),
                )
            )
    return params


def constrained_dims(
    params: list[ParamDim], constraints: list[Constraint], lazy_subgrid: int | None
) -> list[Dimension]:
    """The params in order, each group tied by constraints merged into one :class:`ComponentDim`."""
    groups = _components([c.refs for c in constraints])
    dims: list[Dimension] = []
    emitted: set[str] = set()
    for p in params:
        if p.ref in emitted:
            continue
        group = next((g for g in groups if p.ref in g), None)
        if group is None:
            dims.append(p)
            emitted.add(p.ref)
            continue
        members = [q for q in params if q.ref in group]
        cons = [c for c in constraints if set(c.refs) <= set(group)]
        if lazy_subgrid is not None and product([m.size for m in members]) > lazy_subgrid:
            dims.append(ComponentDim.lazy(members, cons))
        else:
            dims.append(ComponentDim.build(members, cons))
        emitted.update(group)
    return dims


def parse_constraints(texts: list[str], params: list[ParamDim], problems: list[str]) -> list[Constraint]:
    """``parameter_constraints`` parsed, short refs (``fast``) resolved to ``plugin.param``."""
    valid = [p.ref for p in params]
    by_param: dict[str, list[str]] = {}
    for p in params:
        by_param.setdefault(p.param, []).append(p.ref)
    out = []
    for i, text in enumerate(texts):
        where = f"parameter_constraints.{i} {text!r}"
        try:
            c = parse_constraint(text)
        except ConstraintSyntaxError as exc:
            problems.append(f"{where}: {exc}")
            continue
        mapping, bad = _resolve_refs(c.refs, valid, by_param)
        if bad:
            if not valid:
                bad.append("no parameter is swept: constraints refer to parameter_space params")
            problems.append(f"{where}: " + "; ".join(bad))
            continue
        if any(k != v for k, v in mapping.items()):
            c = Constraint(text=c.text, tree=_rename(c.tree, mapping), refs=tuple(mapping[r] for r in c.refs))
        for ref in c.refs:
            p = next(q for q in params if q.ref == ref)
            if not all(isinstance(v, int | float) for v in p.values):
                problems.append(
                    f"{where}: {ref} has non-numeric values {p.values}; constraints compare numbers"
                )
        out.append(c)
    return out


def _resolve_refs(
    refs: tuple[str, ...], valid: list[str], by_param: dict[str, list[str]]
) -> tuple[dict[str, str], list[str]]:
    mapping, bad = {}, []
    for ref in refs:
        if ref in valid:
            mapping[ref] = ref
        elif "." not in ref and len(by_param.get(ref, [])) == 1:
            mapping[ref] = by_param[ref][0]
        elif "." not in ref and len(by_param.get(ref, [])) > 1:
            bad.append(f"{ref!r} is ambiguous ({', '.join(by_param[ref])}); write PLUGIN.PARAM")
        else:
            bad.append(f"unknown reference {ref!r}{suggest(ref, valid) if valid else ''}")
    return mapping, bad


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
