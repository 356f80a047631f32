"""Fixtures of the meta tests: a base operation on disk, a fake (engine-free) run function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

BASE_OPERATION = """\
operation:
  name: ma_base
  strategy_links:
    - blueprint:
        name: ma_bp
        context_workers:
          - plugin: ema
            params: {period: 20}
        opportunity_workers:
          - plugin: ma_crossover
            params: {fast: 10, slow: 30}
        threat_workers:
          - plugin: max_drawdown_monitor
            params: {max_daily_drawdown: 3.0}
        planning_workers:
          entry_planning:
            - plugin: market_entry_immediate
          exit_planning:
            - plugin: opposite_signal_exit
          size_planning:
            - plugin: fixed_fraction_sizer
              params: {fraction: 0.5}
        execution_workers:
          position_management:
            - plugin: trailing_stop_manager
        operator_overrides:
          OpportunityOperator:
            execution_strategy: PARALLEL
  market_data:
    path: sample:GOOG
"""


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    (tmp_path / "op.yaml").write_text(BASE_OPERATION)
    return tmp_path


def write_spec(base_dir: Path, body: str, name: str = "spec.yaml") -> Path:
    path = base_dir / name
    path.write_text(textwrap.dedent(body))
    return path


def fake_metrics(payload: dict) -> dict:
    """Deterministic metrics from a payload's configuration (no engine needed)."""
    conf = payload.get("configuration", {})
    ma = conf.get("ma_crossover", {"fast": 10, "slow": 30})
    gap = ma["slow"] - ma["fast"]
    return {
        "sharpe_ratio": round(gap / 10.0, 6),
        "sortino_ratio": 1.0,
        "total_return": float(ma["fast"]),
        "max_drawdown": float(ma["slow"]) / 4.0,
        "win_rate": 50.0,
        "total_trades": int(100 - gap),
        "avg_trade_duration": 3.0,
        "profit_factor": 1.2,
        "exposure": 0.5,
        "calmar_ratio": 0.7,
    }


def fake_run(payload: dict) -> dict:
    return {
        "run_id": payload["run_id"],
        "index": payload["index"],
        "kind": payload.get("kind", "optimization"),
        "name": payload.get("name"),
        "labels": payload.get("labels", {}),
        "configuration": payload.get("configuration", {}),
        "status": "ok",
        "duration_s": 0.0,
        "metrics": fake_metrics(payload),
        "causality": {"opportunities_detected": 10, "opportunities_rejected": 3, "threats_detected": 1},
    }
