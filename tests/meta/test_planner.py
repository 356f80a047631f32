"""Expansion: every dimension's count and content, constraints, laziness, cap, determinism of run ids."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import pytest

from s1mple.meta.planner import get_workers, plan_file
from s1mple_engine.config import Blueprint, ConfigError, Operation
from s1mple_engine.runspec import RunSpec, run_id_of

from .conftest import write_spec

MA_GRID = """\
optimization_config:
  name: MA grid
  base_operation: op.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {start: 5, end: 29, step: 1}
        slow: {start: 10, end: 68, step: 2}
  parameter_constraints:
    - ma_crossover.fast < ma_crossover.slow
"""


def bp_of(payload):
    op = payload["operation"]
    assert len(op["strategy_links"]) == 1
    return op["strategy_links"][0]["blueprint"]


def all_payloads(plan):
    return [plan.payload(i) for i in range(plan.total)]


def test_parameter_space_grid_count_and_content(base_dir):
    plan = plan_file(write_spec(base_dir, MA_GRID))
    assert plan.total == 640
    payloads = all_payloads(plan)
    pairs = [
        (p["configuration"]["ma_crossover"]["fast"], p["configuration"]["ma_crossover"]["slow"])
        for p in payloads
    ]
    expected = [(f, s) for f in range(5, 30) for s in range(10, 69, 2) if f < s]
    assert pairs == expected  # deterministic order: first parameter slowest
    for p, (f, s) in zip(payloads, expected, strict=True):
        (w,) = bp_of(p)["opportunity_workers"]
        assert w["plugin"] == "ma_crossover" and w["params"] == {"fast": f, "slow": s}
        # the rest of the base blueprint is untouched
        assert bp_of(p)["planning_workers"]["size_planning"][0]["params"] == {"fraction": 0.5}
    assert len({p["run_id"] for p in payloads}) == 640


def test_each_payload_is_a_valid_run_spec_with_one_inline_link(base_dir):
    plan = plan_file(write_spec(base_dir, MA_GRID))
    payload = plan.payload(17)
    spec = RunSpec.from_payload(payload)
    assert len(spec.operation.strategy_links) == 1
    assert isinstance(spec.operation.strategy_links[0].blueprint, Blueprint)
    # the run id is the content hash of the resolved operation, however it is computed
    assert run_id_of(spec.operation) == payload["run_id"]
    assert run_id_of(Operation.model_validate(payload["operation"])) == payload["run_id"]
    assert spec.operation.market_data.path == "sample:GOOG"


def test_values_and_bool_params(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: v
          base_operation: op.yaml
          parameter_space:
            - worker_category: planning_workers
              worker_phase: size_planning
              worker_plugin: fixed_fraction_sizer
              parameters:
                fraction: {start: 0.5, end: 2.0, step: 0.25}
                compound: {values: [true, false]}
        """,
        )
    )
    assert plan.total == 14
    confs = [p["configuration"]["fixed_fraction_sizer"] for p in all_payloads(plan)]
    assert confs[:2] == [{"fraction": 0.5, "compound": True}, {"fraction": 0.5, "compound": False}]
    assert confs[-1] == {"fraction": 2.0, "compound": False}


def test_worker_selection(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: sel
          base_operation: op.yaml
          worker_selection:
            - worker_category: opportunity_workers
              subtype_variants:
                - subtype: technical_pattern
                  plugins: [fvg_entry_detector]
                - subtype: momentum_signal
                  plugins: [ma_crossover, rsi_reversal]
                  params: {rsi_reversal: {period: 7}}
        """,
        )
    )
    assert plan.total == 2
    a, b = all_payloads(plan)
    assert bp_of(a)["opportunity_workers"] == [
        {"plugin": "fvg_entry_detector", "subtype": "technical_pattern", "params": {}}
    ]
    assert bp_of(b)["opportunity_workers"] == [
        # a plugin of the base keeps its params; others get the given ones (or none)
        {"plugin": "ma_crossover", "subtype": "momentum_signal", "params": {"fast": 10, "slow": 30}},
        {"plugin": "rsi_reversal", "subtype": "momentum_signal", "params": {"period": 7}},
    ]
    assert a["labels"] == {"selection:opportunity_workers": "technical_pattern"}
    assert b["configuration"] == {"ma_crossover": {"fast": 10, "slow": 30}, "rsi_reversal": {"period": 7}}


def test_planning_variants_with_ranges(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: pv
          base_operation: op.yaml
          planning_variants:
            - phase: entry_planning
              variants:
                - plugin: market_entry_immediate
                - plugin: limit_entry_at_fvg
                  params: {entry_at_midpoint: true}
            - phase: exit_planning
              variants:
                - plugin: opposite_signal_exit
                - plugin: atr_based_stops
                  params:
                    atr_multiplier: {start: 1.0, end: 3.0, step: 0.5}
                    atr_period: 14
        """,
        )
    )
    assert [d.size for d in plan.dims] == [2, 6]
    assert plan.total == 12
    payloads = all_payloads(plan)
    exits = [bp_of(p)["planning_workers"]["exit_planning"] for p in payloads[:6]]
    assert exits[0] == [{"plugin": "opposite_signal_exit", "params": {}}]
    assert exits[1] == [{"plugin": "atr_based_stops", "params": {"atr_multiplier": 1.0, "atr_period": 14}}]
    assert exits[5][0]["params"]["atr_multiplier"] == 3.0
    entries = [bp_of(p)["planning_workers"]["entry_planning"][0]["plugin"] for p in payloads]
    assert entries == ["market_entry_immediate"] * 6 + ["limit_entry_at_fvg"] * 6
    # other phases untouched
    assert all(
        bp_of(p)["planning_workers"]["size_planning"][0]["plugin"] == "fixed_fraction_sizer" for p in payloads
    )
    assert payloads[1]["configuration"]["atr_based_stops"] == {"atr_multiplier": 1.0, "atr_period": 14}
    assert payloads[1]["labels"]["phase:exit_planning"] == "atr_based_stops(atr_multiplier=1.0)"


def test_operator_variants_default_and_explicit_aggregation(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: ops
          base_operation: op.yaml
          operator_variants:
            - operator_id: PlanningOperator
              execution_strategy: {values: [SEQUENTIAL, PARALLEL, EVENT_DRIVEN]}
            - operator_id: OpportunityOperator
              execution_strategy: {values: [PARALLEL]}
              aggregation_strategy: {values: [COLLECT_ALL, CHAIN_THROUGH]}
        """,
        )
    )
    assert plan.total == 6
    got = [
        (
            bp_of(p)["operator_overrides"]["PlanningOperator"],
            bp_of(p)["operator_overrides"]["OpportunityOperator"],
        )
        for p in all_payloads(plan)
    ]
    plans = [g[0] for g in got[::2]]
    assert plans == [
        {"execution_strategy": "SEQUENTIAL", "aggregation_strategy": "CHAIN_THROUGH"},
        {"execution_strategy": "PARALLEL", "aggregation_strategy": "COLLECT_ALL"},
        {"execution_strategy": "EVENT_DRIVEN", "aggregation_strategy": "NONE"},
    ]
    assert [g[1]["aggregation_strategy"] for g in got[:2]] == ["COLLECT_ALL", "CHAIN_THROUGH"]


def test_worker_variants_are_merged_overrides(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: wv
          base_operation: op.yaml
          worker_variants:
            - name: implicit
              overrides:
                planning_workers:
                  entry_planning:
                    - plugin: simple_dca_planner
            - name: no_threats
              overrides:
                threat_workers: []
        """,
        )
    )
    assert plan.total == 2
    a, b = (bp_of(p) for p in all_payloads(plan))
    assert a["planning_workers"]["entry_planning"] == [{"plugin": "simple_dca_planner", "params": {}}]
    assert a["planning_workers"]["exit_planning"][0]["plugin"] == "opposite_signal_exit"
    assert a["threat_workers"][0]["plugin"] == "max_drawdown_monitor"
    assert b["threat_workers"] == []
    assert plan.payload(0)["labels"] == {"worker_variant": "implicit"}
    assert plan.payload(0)["configuration"] == {"simple_dca_planner": {}}


def test_all_dimensions_multiply_and_params_apply_last(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: all
          base_operation: op.yaml
          worker_variants:
            - name: a
            - name: b
              overrides: {context_workers: [{plugin: atr, params: {period: 14}}]}
          worker_selection:
            - worker_category: opportunity_workers
              subtype_variants:
                - {subtype: trend, plugins: [ma_crossover]}
                - {subtype: trend2, plugins: [ma_crossover, rsi]}
          planning_variants:
            - phase: exit_planning
              variants: [{plugin: opposite_signal_exit}, {plugin: fixed_rr_exit}]
          operator_variants:
            - operator_id: PlanningOperator
              execution_strategy: {values: [SEQUENTIAL, PARALLEL]}
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: ma_crossover
              parameters: {fast: {values: [5, 10, 15]}}
        """,
        )
    )
    assert plan.total == 2 * 2 * 2 * 2 * 3
    payloads = all_payloads(plan)
    assert len({p["run_id"] for p in payloads}) == plan.total
    for p in payloads:
        ma = [w for w in bp_of(p)["opportunity_workers"] if w["plugin"] == "ma_crossover"]
        assert ma[0]["params"]["fast"] == p["configuration"]["ma_crossover"]["fast"]
        assert ma[0]["params"]["slow"] == 30  # from the base, kept by the selection
    combos = {
        tuple(sorted(p["labels"].items())) + (p["configuration"]["ma_crossover"]["fast"],) for p in payloads
    }
    assert len(combos) == plan.total


def test_constraint_count_is_exact_and_lazy(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: c
          base_operation: op.yaml
          max_combinations: 1000000
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: ma_crossover
              parameters:
                fast: {start: 1, end: 50}
                slow: {start: 1, end: 200}
            - worker_category: context_workers
              worker_plugin: ema
              parameters:
                period: {start: 1, end: 100}
          parameter_constraints:
            - "slow >= 2 * fast"
            - ema.period != 7
        """,
        )
    )
    feasible = sum(1 for f in range(1, 51) for s in range(1, 201) if s >= 2 * f)
    assert plan.total == feasible * 99
    # run i is computed from i: spot-check against a brute-force enumeration
    brute = [
        (f, s, e)
        for f, s in itertools.product(range(1, 51), range(1, 201))
        if s >= 2 * f
        for e in range(1, 101)
        if e != 7
    ]
    for i in (0, 1, 98, 99, 12345, plan.total - 1):
        c = plan.payload(i)["configuration"]
        assert (c["ma_crossover"]["fast"], c["ma_crossover"]["slow"], c["ema"]["period"]) == brute[i]


def test_a_million_runs_are_counted_without_materialising(base_dir):
    spec = write_spec(
        base_dir,
        """\
        optimization_config:
          name: big
          base_operation: op.yaml
          max_combinations: 2000000
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: ma_crossover
              parameters:
                fast: {start: 1, end: 100}
                slow: {start: 1, end: 100}
            - worker_category: context_workers
              worker_plugin: ema
              parameters:
                period: {start: 1, end: 100}
        """,
    )
    t0 = time.perf_counter()
    plan = plan_file(spec)
    assert plan.total == 1_000_000
    last = plan.payload(999_999)
    assert time.perf_counter() - t0 < 2
    assert last["configuration"] == {"ma_crossover": {"fast": 100, "slow": 100}, "ema": {"period": 100}}


def test_cap_refuses_with_dimensions_and_the_fixes(base_dir):
    spec = write_spec(
        base_dir,
        """\
        optimization_config:
          name: big
          base_operation: op.yaml
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: ma_crossover
              parameters:
                fast: {start: 1, end: 1000}
                slow: {start: 1, end: 1000}
        """,
    )
    with pytest.raises(ConfigError) as e:
        plan_file(spec)
    text = str(e.value)
    assert "1,000,000 runs" in text and "100,000" in text
    assert "ma_crossover.fast (1,000)" in text and "ma_crossover.slow (1,000)" in text
    assert (
        "Narrow a range" in text and "--max-combinations" in text and "random" in text and "bayesian" in text
    )
    assert plan_file(spec, max_combinations=1_000_000).total == 1_000_000


def test_random_search_is_reproducible_sample_without_replacement(base_dir):
    spec = write_spec(
        base_dir,
        MA_GRID.replace(
            "  parameter_space:", "  search: {strategy: random, max_trials: 50, seed: 7}\n  parameter_space:"
        ),
    )
    a, b = plan_file(spec), plan_file(spec)
    ia, ib = list(a.planned_indices()), list(b.planned_indices())
    assert ia == ib and len(set(ia)) == 50 and all(0 <= i < 640 for i in ia)
    other = plan_file(
        write_spec(
            base_dir,
            MA_GRID.replace(
                "  parameter_space:",
                "  search: {strategy: random, max_trials: 50, seed: 8}\n  parameter_space:",
            ),
            "s2.yaml",
        )
    )
    assert list(other.planned_indices()) != ia
    # random sampling of a space far above the cap is allowed; max_trials is capped instead
    big = write_spec(
        base_dir,
        """\
        optimization_config:
          name: big
          base_operation: op.yaml
          search: {strategy: random, max_trials: 10}
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: ma_crossover
              parameters: {fast: {start: 1, end: 100000}, slow: {start: 1, end: 100000}}
        """,
        "big.yaml",
    )
    plan = plan_file(big)
    assert plan.total == 10**10 and len(plan.planned_indices()) == 10


def test_unknown_constraint_refs_name_the_constraint_and_valid_refs(base_dir):
    spec = write_spec(
        base_dir,
        MA_GRID.replace("ma_crossover.fast < ma_crossover.slow", "ma_crossover.fsat < ma_crossover.slow"),
    )
    with pytest.raises(ConfigError) as e:
        plan_file(spec)
    text = str(e.value)
    assert "parameter_constraints.0" in text and "ma_crossover.fsat" in text
    assert "ma_crossover.fast" in text and "ma_crossover.slow" in text


def test_missing_target_worker_is_reported(base_dir):
    spec = write_spec(
        base_dir,
        """\
        optimization_config:
          name: m
          base_operation: op.yaml
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: fvg_entry_detector
              parameters: {min_gap_size: {start: 3, end: 10}}
        """,
    )
    plan = plan_file(spec)
    problems = plan.validate(lambda bp: [])
    assert problems and "fvg_entry_detector" in problems[0] and "ma_crossover" in problems[0]


def test_validation_covers_each_distinct_worker_configuration_once(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        optimization_config:
          name: val
          base_operation: op.yaml
          max_combinations: 300000
          planning_variants:
            - phase: exit_planning
              variants: [{plugin: opposite_signal_exit}, {plugin: fixed_rr_exit}]
          parameter_space:
            - worker_category: opportunity_workers
              worker_plugin: ma_crossover
              parameters:
                fast: {start: 5, end: 29}
                slow: {start: 10, end: 68, step: 2}
            - worker_category: context_workers
              worker_plugin: ema
              parameters: {period: {start: 2, end: 200}}
          parameter_constraints: [ma_crossover.fast < ma_crossover.slow]
        """,
        )
    )
    assert plan.total == 2 * 640 * 199
    calls = []

    def validator(bp):
        calls.append(bp)
        ema = bp.context_workers[0].params["period"]
        return [f"ema period {ema} too long"] if ema > 198 else []

    problems = plan.validate(validator)
    # 2 structures + 640 ma_crossover configs + 199 ema configs, minus the overlaps with the first ones
    assert len(calls) < 2 + 640 + 199 and len(calls) > 640
    assert len(problems) == 2 and "ema(period=199)" in problems[0] and "ema period 200" in problems[1]


def test_variant_plan(base_dir):
    plan = plan_file(
        write_spec(
            base_dir,
            """\
        variant_config:
          name: v
          base_operation: op.yaml
          market_period: {start: "2010-01-01", end: "2012-12-31"}
          variants:
            - name: baseline
            - name: atr
              overrides:
                planning_workers:
                  exit_planning: [{plugin: atr_based_stops, params: {atr_multiplier: 2.0}}]
                operator_overrides:
                  PlanningOperator: {execution_strategy: PARALLEL}
        """,
        )
    )
    assert plan.total == 2
    a, b = plan.payload(0), plan.payload(1)
    assert a["name"] == "baseline" and a["curves"] is True
    assert a["operation"]["period"] == {"start": "2010-01-01", "end": "2012-12-31"}
    assert b["operation"]["period"] == a["operation"]["period"]
    bb = bp_of(b)
    assert bb["planning_workers"]["exit_planning"][0]["plugin"] == "atr_based_stops"
    assert bb["planning_workers"]["entry_planning"][0]["plugin"] == "market_entry_immediate"
    assert bb["operator_overrides"] == {
        "OpportunityOperator": {"execution_strategy": "PARALLEL", "aggregation_strategy": "COLLECT_ALL"},
        "PlanningOperator": {"execution_strategy": "PARALLEL", "aggregation_strategy": "COLLECT_ALL"},
    }
    assert plan.describe()["total_variants"] == 2


def test_data_flag_swaps_market_data(base_dir):
    (base_dir / "bars.csv").write_text("x\n")
    plan = plan_file(write_spec(base_dir, MA_GRID), data=str(base_dir / "bars.csv"))
    assert plan.payload(0)["operation"]["market_data"]["path"] == str(base_dir / "bars.csv")
    with pytest.raises(ConfigError, match="not found"):
        plan_file(write_spec(base_dir, MA_GRID), data=str(base_dir / "nope.csv"))


def test_run_ids_are_stable_across_processes_and_orders(base_dir):
    spec = write_spec(base_dir, MA_GRID)
    here = [plan_file(spec).payload(i)["run_id"] for i in (0, 100, 639)]
    code = (
        "import json,sys; from s1mple.meta.planner import plan_file; p = plan_file(sys.argv[1]);"
        "print(json.dumps([p.payload(i)['run_id'] for i in (0, 100, 639)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(spec)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert json.loads(out.stdout) == here
    # a reordered but equal spec gives the same ids
    spec2 = write_spec(
        base_dir,
        MA_GRID.replace(
            "        fast: {start: 5, end: 29, step: 1}\n        slow: {start: 10, end: 68, step: 2}\n",
            "        slow: {start: 10, end: 68, step: 2}\n        fast: {start: 5, end: 29, step: 1}\n",
        ),
        "r.yaml",
    )
    p2 = plan_file(spec2)
    ids2 = {p2.payload(i)["run_id"] for i in range(p2.total)}
    assert set(here) <= ids2


def test_describe_lists_dimensions_and_samples(base_dir):
    plan = plan_file(write_spec(base_dir, MA_GRID))
    d = plan.describe()
    assert d["total_combinations"] == 640 and d["space_without_constraints"] == 750
    assert d["dimensions"][0]["size"] == 640 and "fast < " in d["dimensions"][0]["describe"]
    assert len(d["samples"]) == 3 and d["samples"][0]["configuration"] == {
        "ma_crossover": {"fast": 5, "slow": 10}
    }


def test_get_workers_helper():
    assert get_workers({"planning_workers": {"exit_planning": [1]}}, "planning_workers", "exit_planning") == [
        1
    ]
    assert get_workers({}, "opportunity_workers", None) == []
