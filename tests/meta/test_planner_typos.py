"""A typo in a swept plugin's name is reported as such, with the fix, even when constraints name it too."""

import pytest

from s1mple.meta.models import OptimizationConfig
from s1mple.meta.planner import plan_optimization
from s1mple_engine.config import ConfigError


def test_unknown_swept_plugin_is_named_with_a_suggestion(tmp_path):
    config = OptimizationConfig.model_validate(
        {
            "name": "typo",
            "base_operation": "config/operations/ma_crossover.yaml",
            "parameter_space": [
                {
                    "worker_category": "opportunity_workers",
                    "worker_plugin": "ma_crosover",
                    "parameters": {"fast": {"values": [5, 10]}},
                }
            ],
            "parameter_constraints": ["ma_crossover.fast < 20"],
        }
    )
    with pytest.raises(ConfigError) as info:
        plan_optimization(config)
    problems = info.value.problems
    assert problems[0].startswith("parameter_space.0.worker_plugin: unknown plugin 'ma_crosover'")
    assert "did you mean 'ma_crossover'?" in problems[0]
    assert any(p.startswith("parameter_constraints.0") for p in problems[1:])  # reported together


def test_market_data_swap_resolves_against_the_given_folder_and_checks_files(tmp_path):
    """One swap for `--data` (against the cwd) and a resource's spec.marketData (against the image root)."""
    from s1mple.meta.planner import with_market_data
    from s1mple_engine.config import load_operation

    op = load_operation("config/operations/ma_crossover.yaml")
    (tmp_path / "bars.csv").write_text("x")
    swapped = with_market_data(op, "bars.csv", "spec.marketData", base_dir=tmp_path)
    assert swapped.market_data.path == str((tmp_path / "bars.csv").resolve())
    assert (
        with_market_data(op, "s3://bucket/bars.csv", "spec.marketData").market_data.path
        == "s3://bucket/bars.csv"
    )
    assert with_market_data(op, None, "--data") is op
    with pytest.raises(ConfigError, match="spec.marketData: file not found: missing.csv"):
        with_market_data(op, "missing.csv", "spec.marketData", base_dir=tmp_path)
