"""Fixtures of the report tests: stored results made by the real `s1mple` commands, and one headless
chromium per module."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from s1mple.cli import main
from tests.report.browser import Browser, artifacts_dir

ROOT = Path(__file__).resolve().parents[2]

#: fast x slow x kind x fraction: two numeric dimensions besides the heatmap's pair, and a label one
FOUR_DIMENSIONS = """\
optimization_config:
  name: four-dimensions
  base_operation: {base}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{values: [5, 10, 15]}}
        slow: {{values: [20, 30]}}
        kind: {{values: [sma, ema]}}
    - worker_category: planning_workers
      worker_phase: size_planning
      worker_plugin: fixed_fraction_sizer
      parameters:
        fraction: {{values: [0.5, 1.0]}}
  optimization_targets:
    primary_metric: sharpe_ratio
  constraints:
    min_trades: 60
"""


def s1mple(*args: str) -> None:
    assert main(list(args)) == 0, args


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> dict[str, Path]:
    """The example grid (640 runs), the example variant test, a 4-dimension sweep, one backtest report."""
    out = tmp_path_factory.mktemp("results")
    s1mple("optimize", str(ROOT / "config/optimizations/ma_crossover_grid.yaml"), "--out", str(out / "grid"))
    s1mple("variant-test", str(ROOT / "config/variants/ma_crossover_variants.yaml"), "--out", str(out / "vt"))
    spec = out / "four.yaml"
    base = ROOT / "config/operations/ma_crossover.yaml"
    spec.write_text(textwrap.dedent(FOUR_DIMENSIONS.format(base=base)))
    s1mple("optimize", str(spec), "--out", str(out / "four"))
    s1mple("run", str(ROOT / "config/operations/ma_crossover.yaml"), "--report", str(out / "backtest.html"))
    return {"grid": out / "grid", "vt": out / "vt", "four": out / "four", "backtest": out / "backtest.html"}


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture
def shots() -> Path:
    return artifacts_dir()
