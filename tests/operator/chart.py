"""The real `helm` (built by tests/cluster/build) for the chart tests: render, lint, install."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.cluster import cache_dir

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "s1mple"
HELM_VERSION = os.environ.get("S1MPLE_HELM_VERSION", "v3.22.0")  # keep in sync with tests/cluster/build


def helm_path() -> Path:
    """The built helm, or skip (fail under CI) with the command that builds it."""
    path = cache_dir() / "bin" / f"helm-{HELM_VERSION}" / "helm"
    if not path.exists():
        msg = f"helm {HELM_VERSION} not built, run tests/cluster/build helm (missing: {path})"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def helm(*args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 300):
    proc = subprocess.run(
        [str(helm_path()), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def render(release: str = "s1mple", namespace: str = "s1mple-system", *sets: str) -> list[dict[str, Any]]:
    """`helm template` of the chart (CRDs excluded), as objects."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]
