"""Plugin registration: the ``@register`` class decorator checks a plugin's manifest and records it.

Plugins import this module only; lookups (:mod:`s1mple_engine.registry`) import the plugins, so the two
never import each other.  Adding a plugin is one decorated class (see :mod:`s1mple_engine.workers` for
the bases)::

    class MyDetectorParams(PluginParams):
        lookback: int = Field(20, ge=2, le=500, description="bars of history considered")


    @register
    class MyDetector(OpportunityWorker[MyDetectorParams]):
        \"\"\"What it detects (first line is the short description).\"\"\"
        name = "my_detector"
        subtype = "momentum_signal"

        def detect(self, ctx): ...
"""

from __future__ import annotations

import re
import typing

from .config import EXECUTION_PHASES, PLANNING_PHASES
from .workers import CATEGORIES, Plugin, PluginParams

#: every registered plugin class by name
REGISTERED: dict[str, type[Plugin]] = {}
_CHANGES = [0]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EVENT = re.compile(r"^[a-z][a-z0-9_]*$")

P = typing.TypeVar("P", bound=type[Plugin])


def register(cls: P) -> P:
    """Class decorator: check the manifest and add the plugin to the registry (names are unique)."""
    problems = _check_manifest(cls)
    if problems:
        raise TypeError(f"plugin {cls.__name__}: " + "; ".join(problems))
    existing = REGISTERED.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise TypeError(
            f"plugin name {cls.name!r} already registered by {existing.__module__}.{existing.__qualname__}"
        )
    REGISTERED[cls.name] = cls
    _CHANGES[0] += 1
    return cls


def unregister(name: str) -> None:
    """Remove a plugin (for tests that register throw-away plugins)."""
    REGISTERED.pop(name, None)
    _CHANGES[0] += 1


def generation() -> int:
    """A number that changes whenever a plugin is registered or removed (keys caches of registry facts)."""
    return _CHANGES[0]


def _check_manifest(cls: type[Plugin]) -> list[str]:
    problems = []
    if not isinstance(cls.name, str) or not _NAME.match(cls.name or ""):
        problems.append(f"name {cls.name!r} must be snake_case")
    if cls.category not in CATEGORIES:
        problems.append(f"category {cls.category!r} must be one of {CATEGORIES}")
    phases = {"planning": PLANNING_PHASES, "execution": EXECUTION_PHASES}.get(cls.category)
    if phases and cls.phase not in phases:
        problems.append(f"phase {cls.phase!r} must be one of {phases}")
    if not phases and cls.phase is not None:
        problems.append(f"{cls.category} plugins have no phase")
    if not cls.subtype:
        problems.append("subtype is required")
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, PluginParams)):
        problems.append("Params must subclass PluginParams")
    else:
        for fname, field in cls.Params.model_fields.items():
            if not field.description:
                problems.append(f"param {fname!r} needs a description (with units)")
    if not set(cls.default_triggers) <= set(cls.triggers):
        problems.append(f"default_triggers {cls.default_triggers} must be among triggers {cls.triggers}")
    for ev in cls.triggers + cls.publishes + cls.listens:
        if not _EVENT.match(ev):
            problems.append(f"event name {ev!r} must be snake_case")
    if (cls.triggers or cls.publishes or cls.listens) and cls.worker_type != "EventDrivenWorker":
        problems.append("triggers/publishes/listens need the events capability (subclass EventDrivenWorker)")
    return problems
