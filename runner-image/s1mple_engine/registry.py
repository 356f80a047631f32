"""The plugin registry: look a plugin up by name; describe it for the CLI.

Plugins register themselves with :func:`s1mple_engine.registration.register` (re-exported here for plugin
modules outside the engine); the shipped ones live in :mod:`s1mple_engine.plugins` and are imported on
first lookup, as are the modules named in ``S1MPLE_PLUGINS``.
"""

from __future__ import annotations

import importlib
import os
import threading
import typing
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen

from .config import ConfigError, suggest
from .registration import REGISTERED, register, unregister
from .workers import SYSTEM_EVENTS, THREAT_EVENT, Plugin, PluginParams

__all__ = [
    "all_plugins",
    "describe",
    "find_plugin",
    "get_plugin",
    "known_events",
    "param_hint",
    "register",
    "unregister",
]

_LOADED = False
_LOAD_LOCK = threading.RLock()

#: Comma-separated modules with more plugins, imported after the shipped ones: a runner image (and the
#: operator's) can carry a team's own workers without changing this package.
PLUGIN_MODULES_ENV = "S1MPLE_PLUGINS"


def _ensure_loaded() -> None:
    """Import the shipped plugins (and S1MPLE_PLUGINS) once.  Thread-safe: the operator plans several
    resources at once, and a lookup must never see a half-filled registry."""
    global _LOADED
    if _LOADED:
        return
    with _LOAD_LOCK:
        if _LOADED:
            return
        from . import plugins  # noqa: F401 - registers the shipped plugins

        for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_MODULES_ENV, "").split(","))):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(
                    f"{PLUGIN_MODULES_ENV}: cannot import plugin module {module!r}: {exc}; "
                    "install it in the image or fix the module name"
                ) from None
        _LOADED = True


def all_plugins() -> dict[str, type[Plugin]]:
    """Every registered plugin by name (sorted)."""
    _ensure_loaded()
    return dict(sorted(REGISTERED.items()))


def find_plugin(name: str) -> type[Plugin] | None:
    """The plugin class named ``name``, or None: the lookup a sweep makes per worker of every run
    (:func:`all_plugins` sorts a copy of the registry)."""
    _ensure_loaded()
    return REGISTERED.get(name)


def get_plugin(name: str, category: str | None = None, phase: str | None = None) -> type[Plugin]:
    """The plugin class named ``name``; ConfigError listing the valid names (of that category/phase)."""
    _ensure_loaded()
    cls = REGISTERED.get(name)
    if cls is None:
        choices = [
            n
            for n, c in REGISTERED.items()
            if (category is None or c.category == category) and (phase is None or c.phase == phase)
        ]
        where = f" {phase or category}" if (phase or category) else ""
        raise ConfigError(f"unknown{where} plugin {name!r}{suggest(name, choices or REGISTERED)}")
    return cls


def known_events() -> set[str]:
    """System events plus every event any registered plugin publishes."""
    _ensure_loaded()
    events = set(SYSTEM_EVENTS) | {THREAT_EVENT}
    for cls in REGISTERED.values():
        events.update(cls.publishes)
    return events


# --------------------------------------------------------------------------------------------------------
# description (for `s1mple plugins`)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_name(a) for a in args)
    if origin in (list, tuple, set):
        return f"list[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def describe_params(params: type[PluginParams]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fname, field in params.model_fields.items():
        bounds: dict[str, Any] = {}
        for m in field.metadata:
            for cls_, key in ((Ge, "ge"), (Gt, "gt"), (Le, "le"), (Lt, "lt")):
                if isinstance(m, cls_):
                    bounds[key] = getattr(m, key)
            if isinstance(m, MinLen):
                bounds["min_length"] = m.min_length
            if isinstance(m, MaxLen):
                bounds["max_length"] = m.max_length
        default = field.get_default(call_default_factory=True)
        out[fname] = {
            "type": _type_name(field.annotation),
            "default": list(default) if isinstance(default, tuple) else default,
            "bounds": bounds,
            "description": field.description or "",
        }
    return out


def describe(cls: type[Plugin]) -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip()
    return {
        "name": cls.name,
        "category": cls.category,
        "phase": cls.phase,
        "subtype": cls.subtype,
        "worker_type": cls.worker_type,
        "description": " ".join(doc.split("\n\n")[0].split()),
        "params": describe_params(cls.Params),
        "capabilities": cls.capabilities(),
        "triggers": list(cls.triggers),
        "default_triggers": list(cls.default_triggers),
        "publishes": list(cls.publishes),
        "listens": list(cls.listens),
    }


def param_hint(cls: type[Plugin], name: str) -> str:
    """' (param: description; default X; bounds)' for error messages."""
    d = describe_params(cls.Params).get(name)
    if not d:
        return ""
    bounds = ", ".join(f"{k} {v}" for k, v in d["bounds"].items())
    tail = f"; {bounds}" if bounds else ""
    return f" [{name}: {d['type']}, {d['description']}; default {d['default']!r}{tail}]"
