"""Code fingerprints: the part of a run's identity that names the code computing it.

A run id that only hashed the configuration would let a sweep reuse a result computed by older code (edit a
custom plugin, re-run, "0 runs; 20 reused").  So the identity also carries a fingerprint of

* the **engine**: the ``s1mple-engine`` distribution version plus a hash of every source file of
  ``s1mple_engine``
  (the simulation, the metrics, the features and the shipped plugins: editing any of them changes every
  run's identity, because every run goes through them);
* every **plugin the run's blueprint names** that lives outside the engine (a team's module loaded through
  ``S1MPLE_PLUGINS``): the version of the distribution that installed it (if any) plus a hash of the source
  file of each class in its inheritance chain outside the engine.  Editing such a file changes the identity
  of the runs that use that plugin, and of no other run.

Not covered: a helper module that a custom plugin imports (only its distribution's version is), the
installed libraries (numpy, pandas), and the market data's content (the operation names its path).

Fingerprints are computed once per plugin class per process (cached): planning 10,000 runs costs a
dictionary lookup per run, not a file read.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic

from .config import Blueprint, Operation
from .registry import find_plugin

ENGINE_PACKAGE = "s1mple_engine"
ENGINE_DISTRIBUTION = "s1mple-engine"  # the engine's own distribution (runner-image/pyproject.toml)
ENGINE_DIR = Path(__file__).resolve().parent
HASH_LENGTH = 12


def _digest(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(hashlib.sha256(chunk).digest())
    return h.hexdigest()[:HASH_LENGTH]


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions; scans every installed distribution, so only for custom plugins."""
    return dict(importlib.metadata.packages_distributions())


def distribution_version(module: str) -> str | None:
    """Version of the installed distribution that provides ``module``'s top-level package, if any."""
    for dist in _distributions().get(module.split(".")[0], []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def engine_fingerprint() -> str:
    """``<version>+<hash>`` of the engine package (its Python sources and YAML data files)."""
    files = sorted(p for p in ENGINE_DIR.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file())
    digest = _digest(p.relative_to(ENGINE_DIR).as_posix().encode() + b"\0" + p.read_bytes() for p in files)
    try:
        version = importlib.metadata.version(ENGINE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"{version}+{digest}"


def _in_engine(cls: type) -> bool:
    return cls.__module__ == ENGINE_PACKAGE or cls.__module__.startswith(ENGINE_PACKAGE + ".")


def _source_bytes(cls: type) -> bytes:
    """The source file defining ``cls``; its source text or qualified name when there is no file."""
    try:
        path = inspect.getsourcefile(cls)
        if path:
            return Path(path).read_bytes()
    except (OSError, TypeError):
        pass
    try:
        return inspect.getsource(cls).encode()
    except (OSError, TypeError):
        return f"{cls.__module__}.{cls.__qualname__}".encode()


@functools.cache
def plugin_fingerprint(cls: type) -> str:
    """``engine`` for a shipped plugin (the engine fingerprint covers it), else ``<version>+<hash>`` of the
    source files of its classes outside the engine (base classes included)."""
    own = [k for k in cls.__mro__ if k not in (object, Generic) and not _in_engine(k)]
    if not own:
        return "engine"
    digest = _digest(sorted({_source_bytes(k) for k in own}))
    return f"{distribution_version(cls.__module__) or '-'}+{digest}"


def blueprint_plugins(blueprint: dict[str, Any]) -> set[str]:
    """Names of the plugins a blueprint dict uses (every category and phase)."""
    names: set[str] = set()
    for category in ("context_workers", "opportunity_workers", "threat_workers"):
        names.update(w["plugin"] for w in blueprint.get(category) or [])
    for category in ("planning_workers", "execution_workers"):
        for workers in (blueprint.get(category) or {}).values():
            names.update(w["plugin"] for w in workers or [])
    return names


def _plugin_print(name: str) -> str:
    cls: type | None = find_plugin(name)
    return plugin_fingerprint(cls) if cls is not None else "unknown"  # validation reports the name


@functools.lru_cache(maxsize=1024)
def _code_of(names: frozenset[str]) -> tuple[tuple[str, str], ...]:
    return (("engine", engine_fingerprint()),) + tuple(
        (name, fp) for name in sorted(names) if (fp := _plugin_print(name)) != "engine"
    )


def code_fingerprint(plugin_names: Iterable[str]) -> dict[str, str]:
    """``{"engine": ..., <custom plugin>: ...}``: the code identity of a run using these plugins."""
    return dict(_code_of(frozenset(plugin_names)))


class CodeMismatch(ValueError):
    """A run planned under other code than the code about to execute it (operator vs runner image)."""


def check_code(planned: dict[str, str], operation: Operation) -> None:
    """Raise :class:`CodeMismatch` when this process's code differs from the code the run id was planned
    with: the result would be stored under an id that names other code."""
    names = {
        w.plugin
        for link in operation.strategy_links
        if isinstance(link.blueprint, Blueprint)
        for _, _, w in link.blueprint.workers()
    }
    here = code_fingerprint(names)
    if here == planned:
        return
    diff = ", ".join(
        f"{k}: planned {planned.get(k, 'absent')}, here {here.get(k, 'absent')}"
        for k in sorted(set(planned) | set(here))
        if planned.get(k) != here.get(k)
    )
    raise CodeMismatch(
        f"this runner's code differs from the code the run was planned with ({diff}): build the operator "
        "and runner images from the same engine and plugins (same S1MPLE_PLUGINS)"
    )


def operation_code(operation: dict[str, Any]) -> dict[str, str]:
    """The code fingerprint of a resolved operation (dict form): the plugins of its inline blueprints."""
    names: set[str] = set()
    for link in operation.get("strategy_links") or []:
        bp = link.get("blueprint") if isinstance(link, dict) else None
        if isinstance(bp, dict):
            names |= blueprint_plugins(bp)
    return code_fingerprint(names)
