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
