"""The spec models: the design's 12 examples load, both spellings, ranges, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from s1mple.meta.expr import ConstraintSyntaxError, parse_constraint
from s1mple.meta.models import (
    OptimizationConfig,
    ParamRange,
    VariantConfig,
    load_meta,
)
from s1mple_engine.config import ConfigError, parse_model

ROOT = Path(__file__).resolve().parents[2]
DESIGN_OPTIMIZATIONS = [
    "optimize_fvg_params",
    "optimize_opportunity_types",
    "optimize_planning_phases",
    "optimize_operator_strategies",
    "optimize_event_workflows",
    "comprehensive_ict_optimization",
]
DESIGN_VARIANTS = [
    "fvg_strategy_variants",
    "opportunity_type_variants",
    "exit_strategy_variants",
    "operator_strategy_variants",
    "event_chain_variants",
    "comprehensive_robustness_test",
]


@pytest.mark.parametrize("name", DESIGN_OPTIMIZATIONS)
def test_design_optimization_examples_load(name):
    cfg = load_meta(ROOT / "config" / "optimizations" / f"{name}.yaml")
    assert isinstance(cfg, OptimizationConfig)
    assert cfg.base_operation.startswith("config/operations/")


@pytest.mark.parametrize("name", DESIGN_VARIANTS)
def test_design_variant_examples_load(name):
    cfg = load_meta(ROOT / "config" / "variants" / f"{name}.yaml")
    assert isinstance(cfg, VariantConfig)
    assert cfg.variants


def test_design_examples_are_verbatim_blocks_of_the_design():
    """Each file's first line names its path, as in the design doc's code blocks."""
    for sub, names in (("optimizations", DESIGN_OPTIMIZATIONS), ("variants", DESIGN_VARIANTS)):
        for n in names:
            first = (ROOT / "config" / sub / f"{n}.yaml").read_text().splitlines()[0]
            assert first == f"# config/{sub}/{n}.yaml"


def test_comprehensive_example_content():
    cfg = load_meta(ROOT / "config/optimizations/comprehensive_ict_optimization.yaml")
    assert [e.worker_plugin for e in cfg.parameter_space] == [
        "fvg_entry_detector",
        "liquidity_target_exit",
        "fixed_risk_sizer",
    ]
    assert cfg.parameter_space[0].subtype == "technical_pattern"
    assert cfg.parameter_space[2].parameters["risk_per_trade_percent"].expand() == [
        0.5,
        0.75,
        1.0,
        1.25,
        1.5,
        1.75,
        2.0,
    ]
    assert cfg.optimization_targets.primary_metric == "sharpe_ratio"
    assert cfg.constraints.min_trades == 10 and cfg.constraints.max_drawdown == 15.0
    assert cfg.parallel_config.max_workers == 8 and cfg.parallel_config.timeout_per_run == 300
    op = cfg.operator_variants[0]
    assert [v.value for v in op.aggregation_strategy.values] == ["COLLECT_ALL"]


def test_camel_case_and_snake_case_are_both_accepted():
    snake = {
        "name": "x",
        "base_operation": "op.yaml",
        "parameter_space": [
            {
                "worker_category": "opportunity_workers",
                "worker_plugin": "ma_crossover",
                "parameters": {"fast": {"start": 1, "end": 3}},
            }
        ],
        "optimization_targets": {"primary_metric": "total_return"},
        "parallel_config": {"max_workers": 2, "timeout_per_run": 5},
    }
    camel = {
        "name": "x",
        "baseOperation": "op.yaml",
        "parameterSpace": [
            {
                "workerCategory": "opportunity_workers",
                "workerPlugin": "ma_crossover",
                "parameters": {"fast": {"start": 1, "end": 3}},
            }
        ],
        "optimizationTargets": {"primaryMetric": "total_return"},
        "parallelConfig": {"maxWorkers": 2, "timeoutPerRun": 5},
    }
    a = parse_model(snake, OptimizationConfig)
    b = parse_model(camel, OptimizationConfig)
    assert a == b


def test_unknown_key_names_the_path_and_suggests():
    with pytest.raises(ConfigError) as e:
        parse_model(
            {"optimization_config": {"name": "x", "base_operation": "o", "paramter_space": []}},
            OptimizationConfig,
            root="optimization_config",
        )
    text = str(e.value)
    assert "optimization_config.paramter_space" in text and "parameter_space" in text


def test_unknown_metric_and_operator_are_rejected_with_hint():
    with pytest.raises(ConfigError, match="sharpe_ratio"):
        parse_model(
            {"name": "x", "base_operation": "o", "optimization_targets": {"primary_metric": "sharpe"}},
            OptimizationConfig,
        )
    with pytest.raises(ConfigError, match="PlanningOperator"):
        parse_model(
            {
                "name": "x",
                "base_operation": "o",
                "operator_variants": [
                    {"operator_id": "PlaningOperator", "execution_strategy": {"values": ["PARALLEL"]}}
                ],
            },
            OptimizationConfig,
        )


@pytest.mark.parametrize(
    "rng,expected",
    [
        ({"start": 0.5, "end": 2.0, "step": 0.25}, [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]),
        ({"start": 1.0, "end": 3.0, "step": 0.5}, [1.0, 1.5, 2.0, 2.5, 3.0]),
        ({"start": 0.1, "end": 0.3, "step": 0.1}, [0.1, 0.2, 0.3]),
        ({"start": 3, "end": 10, "step": 1}, [3, 4, 5, 6, 7, 8, 9, 10]),
        ({"start": 3, "end": 10}, [3, 4, 5, 6, 7, 8, 9, 10]),
        ({"start": 10, "end": 68, "step": 2}, list(range(10, 69, 2))),
        ({"start": 1, "end": 2, "step": 0.3}, [1.0, 1.3, 1.6, 1.9]),
        ({"values": [True, False]}, [True, False]),
        ({"values": ["a", 1, 2.5]}, ["a", 1, 2.5]),
    ],
)
def test_ranges_are_inclusive_and_float_safe(rng, expected):
    r = ParamRange.model_validate(rng)
    assert r.expand() == expected
    assert r.size() == len(expected)
    assert all(type(a) is type(b) for a, b in zip(r.expand(), expected, strict=True))


@pytest.mark.parametrize(
    "rng,msg",
    [
        ({"start": 1, "end": 0}, "below start"),
        ({"start": 1, "end": 3, "step": 0}, "step"),
        ({"start": 1, "end": 3, "values": [1]}, "not both"),
        ({"values": []}, "at least one"),
        ({"start": 1}, "needs start and end"),
        ({"start": 0, "end": 1, "step": 1e-9}, "values"),
    ],
)
def test_bad_ranges(rng, msg):
    with pytest.raises(ValueError, match=msg):
        ParamRange.model_validate(rng)


def test_phase_required_for_planning_parameters():
    with pytest.raises(ConfigError, match="worker_phase"):
        parse_model(
            {
                "name": "x",
                "base_operation": "o",
                "parameter_space": [
                    {
                        "worker_category": "planning_workers",
                        "worker_plugin": "fixed_risk_sizer",
                        "parameters": {"risk_per_trade_percent": {"values": [1]}},
                    }
                ],
            },
            OptimizationConfig,
        )


def test_search_needs_max_trials():
    with pytest.raises(ConfigError, match="max_trials"):
        parse_model(
            {"name": "x", "base_operation": "o", "search": {"strategy": "random"}}, OptimizationConfig
        )


def test_validation_spec_defaults_switches_and_bounds():
    base = {"name": "x", "base_operation": "o"}
    default = parse_model(base, OptimizationConfig).validation
    assert (default.cscv_blocks(), default.max_pbo, default.min_dsr) == (16, 0.5, 0.5)
    camel = parse_model(
        {**base, "validation": {"cscv": {"blocks": 8}, "maxPbo": 0.3, "minDsr": 0.9}}, OptimizationConfig
    )
    assert (camel.validation.cscv_blocks(), camel.validation.max_pbo, camel.validation.min_dsr) == (
        8,
        0.3,
        0.9,
    )
    assert (
        parse_model({**base, "validation": {"cscv": False}}, OptimizationConfig).validation.cscv_blocks()
        is None
    )
    assert (
        parse_model({**base, "validation": {"cscv": True}}, OptimizationConfig).validation.cscv_blocks() == 16
    )
    with pytest.raises(ConfigError, match="multiple of 2"):
        parse_model({**base, "validation": {"cscv": {"blocks": 7}}}, OptimizationConfig)
    with pytest.raises(ConfigError, match="validation.max_pbo"):
        parse_model({**base, "validation": {"max_pbo": 1.5}}, OptimizationConfig)


def test_variant_baseline_must_name_a_variant():
    body = {"name": "x", "base_operation": "o", "variants": [{"name": "a"}, {"name": "b"}]}
    assert parse_model(body, VariantConfig).baseline_name() == "a"
    assert parse_model({**body, "baseline": "b"}, VariantConfig).baseline_name() == "b"
    with pytest.raises(ConfigError, match="baseline: no variant is named 'c'"):
        parse_model({**body, "baseline": "c"}, VariantConfig)


def test_load_meta_rejects_other_roots(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("operation: {}\n")
    with pytest.raises(ConfigError, match="optimization_config or variant_config"):
        load_meta(p)


def test_variant_names_unique_and_comparison_config_checked():
    with pytest.raises(ConfigError, match="duplicate"):
        parse_model(
            {"name": "t", "base_operation": "o", "variants": [{"name": "a"}, {"name": "a"}]}, VariantConfig
        )
    with pytest.raises(ConfigError, match="equity_curves"):
        parse_model(
            {
                "name": "t",
                "base_operation": "o",
                "variants": [{"name": "a"}],
                "comparison_config": {"visualizations": ["equity_curve"]},
            },
            VariantConfig,
        )


# ---- constraint grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,env,expected",
    [
        ("ma_crossover.fast < ma_crossover.slow", {"ma_crossover.fast": 5, "ma_crossover.slow": 10}, True),
        ("ma_crossover.fast < ma_crossover.slow", {"ma_crossover.fast": 10, "ma_crossover.slow": 10}, False),
        ("a.slow >= 2 * a.fast", {"a.fast": 5, "a.slow": 10}, True),
        ("a.slow >= 2 * a.fast", {"a.fast": 6, "a.slow": 10}, False),
        ("a.x + 1 == 3 and a.y != 2", {"a.x": 2, "a.y": 3}, True),
        ("a.x + 1 == 3 and a.y != 2", {"a.x": 2, "a.y": 2}, False),
        ("1 < a.x <= 3", {"a.x": 3}, True),
        ("1 < a.x <= 3", {"a.x": 1}, False),
        ("-(a.x - 4) / 2 > .5", {"a.x": 2}, True),
        ("a.x / a.y > 1", {"a.x": 1, "a.y": 0}, True),  # x/0 = inf
        ("a.x / a.y > 1", {"a.x": 0, "a.y": 0}, False),  # 0/0 = nan: every comparison false
        ("fast < slow", {"fast": 1, "slow": 2}, True),
    ],
)
def test_constraint_grammar(text, env, expected):
    assert parse_constraint(text).holds(env) is expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "a.x < ",
        "a.x",
        "a.x < b.y or a.x > 1",
        "a.x << 2",
        "a.x < 2)",
        "(a.x < 2)",
        "1 < 2",
        "",
        "a.x ** 2 < 3",
        "a.x < 3; import os",
    ],
)
def test_constraint_syntax_errors(text):
    with pytest.raises(ConstraintSyntaxError):
        parse_constraint(text)


def test_constraint_refs_and_vectorised_evaluation():
    import numpy as np

    c = parse_constraint("m.fast < m.slow and m.slow <= 3 * m.fast")
    assert c.refs == ("m.fast", "m.slow")
    fast = np.arange(1, 5).reshape(4, 1)
    slow = np.arange(1, 10).reshape(1, 9)
    mask = c.evaluate({"m.fast": fast, "m.slow": slow})
    assert mask.shape == (4, 9)
    assert int(mask.sum()) == sum(1 for f in range(1, 5) for s in range(1, 10) if f < s <= 3 * f)
