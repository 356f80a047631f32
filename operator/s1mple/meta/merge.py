"""Deep-merge of blueprint overrides (variant tests and ``worker_variants``).

Rules (docs/meta.md has the same list):

1. ``context_workers``, ``opportunity_workers``, ``threat_workers``: a given list REPLACES the base's list
   (``[]`` removes every worker of the category); not given keeps the base's.
2. ``planning_workers`` merges BY PHASE: each given phase (``entry_planning``, ``exit_planning``,
   ``size_planning``, ``order_routing``) replaces that phase's list; phases not given keep the base's.
3. ``execution_workers`` merges by phase the same way (``position_management``, ``risk_safety``,
   ``operational``).
4. ``operator_overrides`` merges BY OPERATOR: a given operator's config replaces the base's config of that
   operator (its aggregation defaults from its execution strategy when not given); others keep the base's.
5. Worker entries are taken as written: params are not merged with the base worker's params (a worker in
   an override is complete).

Everything works on the JSON data of a blueprint (``dump_model(Blueprint)``), copying only what changes.
"""

from __future__ import annotations

from typing import Any

from .models import BlueprintOverrides

LIST_CATEGORIES = ("context_workers", "opportunity_workers", "threat_workers")
PHASED = ("planning_workers", "execution_workers")


def merge_overrides(base: dict[str, Any], overrides: BlueprintOverrides) -> dict[str, Any]:
    """A new blueprint dict: ``overrides`` applied to ``base`` (which is not modified)."""
    data = overrides.model_dump(mode="json", exclude_none=True)
    return merge_override_data(base, data)


def merge_override_data(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for cat in LIST_CATEGORIES:
        if cat in data:
            out[cat] = [_worker(w) for w in data[cat]]
    for cat in PHASED:
        if cat in data:
            phases = dict(out.get(cat) or {})
            for phase, workers in data[cat].items():
                if workers is not None:
                    phases[phase] = [_worker(w) for w in workers]
            out[cat] = phases
    if "operator_overrides" in data:
        ops = dict(out.get("operator_overrides") or {})
        for op, cfg in data["operator_overrides"].items():
            ops[op] = dict(cfg)
        out["operator_overrides"] = ops
    return out


def _worker(w: dict[str, Any]) -> dict[str, Any]:
    """A worker entry (already in the canonical form of dump_model(WorkerConfig))."""
    return dict(w)
