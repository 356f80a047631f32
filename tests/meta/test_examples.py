"""Every example in config/optimizations and config/variants loads; those whose plugins exist plan and
validate; the design's examples that need the full plugin library are skipped naming the missing plugins."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from s1mple.meta.models import load_meta
from s1mple.meta.planner import plan_file
from s1mple.meta.service import engine_validator
from s1mple_engine.registry import all_plugins

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "optimizations").glob("*.yaml")) + sorted(
    (ROOT / "config" / "variants").glob("*.yaml")
)


def _plugins_in(data, out: set[str]) -> set[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            if k in ("plugin", "worker_plugin", "workerPlugin") and isinstance(v, str):
                out.add(v)
            elif k == "plugins" and isinstance(v, list):
                out.update(p for p in v if isinstance(p, str))
            else:
                _plugins_in(v, out)
    elif isinstance(data, list):
        for v in data:
            _plugins_in(v, out)
    return out


def _needs(path: Path) -> tuple[Path, set[str]]:
    """(base operation path, plugins named by the spec and its base operation that are not registered)."""
    cfg = load_meta(path)
    base = ROOT / cfg.base_operation
    names = _plugins_in(yaml.safe_load(path.read_text()), set())
    if base.exists():
        names |= _plugins_in(yaml.safe_load(base.read_text()), set())
    registered = {p if isinstance(p, str) else p.name for p in all_plugins()}
    return base, names - registered


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {
        "ma_crossover_grid.yaml",
        "ma_crossover_variants.yaml",
        "optimize_fvg_params.yaml",
        "comprehensive_robustness_test.yaml",
    } <= names
    assert len(EXAMPLES) >= 14


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_loads_and_plans(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    load_meta(path)  # every example loads with the models, now
    base, missing = _needs(path)
    if not base.exists() or missing:
        pytest.skip(
            "needs the full plugin library (a later issue): "
            + (f"base operation {base.relative_to(ROOT)} not written yet; " if not base.exists() else "")
            + (f"plugins not registered yet: {', '.join(sorted(missing))}" if missing else "")
        )
    plan = plan_file(path)
    assert plan.total >= 1
    assert plan.validate(engine_validator()) == []
    plan.payload(plan.total - 1)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_small_examples_run(path, tmp_path, monkeypatch):
    """Every example of at most 20 runs runs end to end on the real engine, without a failed run."""
    from s1mple.executors.sweep import LocalSweep

    monkeypatch.chdir(ROOT)
    base, missing = _needs(path)
    if not base.exists() or missing:
        pytest.skip(f"needs the full plugin library (a later issue): {sorted(missing) or base.name}")
    plan = plan_file(path)
    if plan.planned_runs > 20:
        pytest.skip(f"{plan.planned_runs} runs: covered by planning/validation above")
    outcome = LocalSweep(plan, out=str(tmp_path / "out"), max_workers=2, progress=False).run()
    failures = [r.get("error") for r in outcome.result["results"] if r.get("status") != "ok"]
    assert failures == []
