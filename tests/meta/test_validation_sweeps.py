"""Sweeps through the real engine on generated prices: a genuine, persistent edge is trusted (high DSR,
low PBO); the best of a sweep on a random walk is not (low DSR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from s1mple.executors.sweep import LocalSweep
from s1mple.meta.planner import plan_file

ROOT = Path(__file__).resolve().parents[2]


def write_prices(path: Path, momentum: float, seed: int, bars: int = 2500) -> None:
    """Daily OHLC whose log returns follow r_t = momentum * r_(t-1) + noise: momentum > 0 is an edge a
    short moving-average crossover can trade in every part of the series; 0 is a random walk."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.01, bars)
    r = np.zeros(bars)
    for t in range(1, bars):
        r[t] = momentum * r[t - 1] + noise[t]
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) * 1.002,
            "Low": np.minimum(open_, close) * 0.998,
            "Close": close,
            "Volume": 1000,
        },
        index=pd.bdate_range("2010-01-01", periods=bars),
    )
    frame.to_csv(path, index_label="Date")


def sweep_validation(tmp_path: Path, momentum: float, seed: int) -> dict:
    """The ``validation`` of a 21-run MA-crossover sweep (fast 2-4 x slow 5-80) on generated prices."""
    csv = tmp_path / f"prices-{momentum}-{seed}.csv"
    write_prices(csv, momentum, seed)
    (tmp_path / "op.yaml").write_text(
        "operation:\n  name: generated\n  strategy_links:\n"
        f"    - blueprint: {ROOT}/config/blueprints/ma_crossover.yaml\n"
        f"  market_data: {{path: {csv}}}\n  cash: 1000000\n  commission: 0.0\n"
    )
    spec = tmp_path / "opt.yaml"
    spec.write_text(
        "optimization_config:\n  name: generated\n  base_operation: op.yaml\n  parameter_space:\n"
        "    - worker_category: opportunity_workers\n      worker_plugin: ma_crossover\n"
        "      parameters:\n        fast: {values: [2, 3, 4]}\n"
        "        slow: {values: [5, 8, 12, 20, 30, 50, 80]}\n"
    )
    out = tmp_path / f"out-{momentum}-{seed}"
    outcome = LocalSweep(plan_file(spec), out=str(out), progress=False, max_workers=2).run()
    assert outcome.result["feasible_runs"] == 21
    return outcome.result["validation"]


def test_a_persistent_edge_is_trusted(tmp_path):
    v = sweep_validation(tmp_path, momentum=0.3, seed=1)
    assert v["deflated_sharpe"]["dsr"] > 0.95 and v["deflated_sharpe"]["trials"] == 21
    assert v["pbo"]["pbo"] < 0.1 and v["pbo"]["splits"] == 12870
    assert v["overfit_risk"] is False and v["verdict"].startswith("No sign of overfitting")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_best_of_a_random_walk_sweep_is_not_trusted(tmp_path, seed):
    """On a random walk the DSR of the best run is a p-value-like number under the null: never near 1
    here, and low (0.21-0.62 for these seeds) although the best run's Sharpe looks positive."""
    v = sweep_validation(tmp_path, momentum=0.0, seed=seed)
    assert v["deflated_sharpe"]["sharpe"] > 0
    assert v["deflated_sharpe"]["dsr"] < 0.7 and v["overfit_risk"] is True
