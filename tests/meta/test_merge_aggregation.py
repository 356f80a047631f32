"""Merge rules of overrides, and the pure aggregation (records in, results out)."""

from __future__ import annotations

import pandas as pd
import pytest

from s1mple.meta.aggregation import (
    RunOrder,
    feasibility,
    optimization_result,
)
from s1mple.meta.comparison import most_defensive, variant_result
from s1mple.meta.merge import merge_overrides
from s1mple.meta.models import BlueprintOverrides, Direction, RunConstraints
from s1mple_engine.config import Blueprint, dump_model

BASE = dump_model(
    Blueprint.model_validate(
        {
            "name": "b",
            "context_workers": [{"plugin": "ema", "params": {"period": 20}}],
            "opportunity_workers": [{"plugin": "ma_crossover", "params": {"fast": 10, "slow": 30}}],
            "threat_workers": [{"plugin": "max_drawdown_monitor"}],
            "planning_workers": {
                "entry_planning": [{"plugin": "market_entry_immediate"}],
                "exit_planning": [{"plugin": "opposite_signal_exit"}],
                "size_planning": [{"plugin": "fixed_fraction_sizer", "params": {"fraction": 0.5}}],
            },
            "execution_workers": {
                "position_management": [{"plugin": "trailing_stop_manager"}],
                "risk_safety": [{"plugin": "emergency_exit_agent"}],
            },
            "operator_overrides": {
                "OpportunityOperator": {"execution_strategy": "PARALLEL"},
                "PlanningOperator": {"execution_strategy": "SEQUENTIAL"},
            },
        }
    )
)


def merged(overrides: dict) -> dict:
    return merge_overrides(BASE, BlueprintOverrides.model_validate(overrides))


def test_empty_override_is_the_base():
    assert merged({}) == BASE


def test_worker_lists_replace():
    out = merged({"opportunity_workers": [{"plugin": "fvg_entry_detector", "params": {"min_gap_size": 8}}]})
    assert out["opportunity_workers"] == [{"plugin": "fvg_entry_detector", "params": {"min_gap_size": 8}}]
    assert out["context_workers"] == BASE["context_workers"]
    assert merged({"threat_workers": []})["threat_workers"] == []


def test_worker_params_are_not_merged_with_the_base_worker():
    out = merged({"opportunity_workers": [{"plugin": "ma_crossover", "params": {"fast": 5}}]})
    assert out["opportunity_workers"][0]["params"] == {"fast": 5}


def test_planning_phases_merge_by_phase():
    out = merged({"planning_workers": {"exit_planning": [{"plugin": "atr_based_stops"}]}})
    assert out["planning_workers"]["exit_planning"] == [{"plugin": "atr_based_stops", "params": {}}]
    assert out["planning_workers"]["entry_planning"] == BASE["planning_workers"]["entry_planning"]
    assert out["planning_workers"]["size_planning"] == BASE["planning_workers"]["size_planning"]
    cleared = merged({"planning_workers": {"size_planning": []}})
    assert cleared["planning_workers"]["size_planning"] == []


def test_execution_phases_merge_by_phase():
    out = merged(
        {"execution_workers": {"risk_safety": [{"plugin": "x", "triggers": ["on_threat_detected"]}]}}
    )
    assert out["execution_workers"]["risk_safety"] == [
        {"plugin": "x", "params": {}, "triggers": ["on_threat_detected"]}
    ]
    assert out["execution_workers"]["position_management"] == BASE["execution_workers"]["position_management"]


def test_operator_overrides_merge_by_operator():
    out = merged({"operator_overrides": {"PlanningOperator": {"execution_strategy": "PARALLEL"}}})
    assert out["operator_overrides"]["PlanningOperator"] == {
        "execution_strategy": "PARALLEL",
        "aggregation_strategy": "COLLECT_ALL",
    }
    assert (
        out["operator_overrides"]["OpportunityOperator"] == BASE["operator_overrides"]["OpportunityOperator"]
    )
    with pytest.raises(ValueError, match="unknown operator"):
        merged({"operator_overrides": {"PlanOperator": {"execution_strategy": "PARALLEL"}}})


def test_merge_does_not_modify_the_base():
    import copy

    before = copy.deepcopy(BASE)
    merged(
        {
            "planning_workers": {"exit_planning": []},
            "operator_overrides": {"ThreatOperator": {"execution_strategy": "PARALLEL"}},
        }
    )
    assert before == BASE


# ---- aggregation ---------------------------------------------------------------------------------------


def rec(run_id, sharpe, trades=50, dd=5.0, status="ok", **extra):
    return {
        "run_id": run_id,
        "index": int(run_id, 16) % 1000,
        "status": status,
        "configuration": {"ma_crossover": {"fast": 5, "slow": int(run_id, 16) % 50 + 10}},
        "labels": {"phase:exit_planning": "x"},
        "metrics": {"sharpe_ratio": sharpe, "total_trades": trades, "max_drawdown": dd, "total_return": 1.0},
        "causality": {"opportunities_detected": 10, "opportunities_rejected": 2, "threats_detected": 1},
        **extra,
    }


def test_feasibility():
    c = RunConstraints(min_trades=10, max_drawdown=15.0)
    assert feasibility(rec("a1", 1.0), c) == (True, None)
    assert feasibility(rec("a1", 1.0, trades=3), c)[0] is False
    ok, why = feasibility(rec("a1", 1.0, dd=-20.0), c)  # sign-agnostic
    assert not ok and "max_drawdown" in why
    assert feasibility(rec("a1", 1.0, status="failed"), c) == (False, "failed")


def test_ranking_feasible_first_then_metric_then_run_id():
    c = RunConstraints(min_trades=10)
    records = [
        rec("00000000000000b2", 1.0),
        rec("00000000000000a1", 1.0),  # tie on sharpe: run_id decides
        rec("00000000000000c3", 9.0, trades=2),  # best sharpe but infeasible
        rec("00000000000000d4", None),  # no metric
        rec("00000000000000e5", 0.5),
        {"run_id": "00000000000000f6", "index": 1, "status": "failed", "error": "boom"},
    ]
    by_id = {r["run_id"]: r for r in records}
    ranked = [
        rid[-2:] for _, rid, _, _ in RunOrder.of(by_id, by_id, "sharpe_ratio", Direction.MAXIMIZE, c).order
    ]
    assert ranked == ["a1", "b2", "e5", "d4", "c3", "f6"]
    ranked_min = [
        rid[-2:] for _, rid, _, _ in RunOrder.of(by_id, by_id, "sharpe_ratio", Direction.MINIMIZE, c).order
    ]
    assert ranked_min[:3] == ["e5", "a1", "b2"]


def test_optimization_result_keys_and_best():
    records = [
        rec("00000000000000a1", 2.0),
        rec("00000000000000b2", 3.0, trades=1),
        rec("00000000000000c3", 1.0),
        {"run_id": "00000000000000f6", "index": 1, "status": "timeout", "error": "timed out"},
    ]
    out = optimization_result(
        optimization_id="abc",
        optimization_name="n",
        timestamp="t",
        total_combinations=4,
        records=records,
        constraints=RunConstraints(min_trades=10),
    )
    for key in (
        "optimization_id",
        "optimization_name",
        "timestamp",
        "total_combinations",
        "successful_runs",
        "failed_runs",
        "results",
        "best_configuration",
    ):
        assert key in out
    assert (out["successful_runs"], out["failed_runs"], out["infeasible_runs"]) == (3, 1, 1)
    assert out["best_configuration"]["run_id"] == "00000000000000a1"
    first = out["results"][0]
    assert set(first) >= {"run_id", "configuration", "metrics", "causality"}
    assert out["results"][1]["run_id"] == "00000000000000c3"
    assert out["results"][2]["infeasible_reason"].startswith("total_trades 1 < min_trades 10")
    assert out["results"][3]["error"] == "timed out"
    # deterministic: the same records in another order give the same result
    again = optimization_result(
        optimization_id="abc",
        optimization_name="n",
        timestamp="t",
        total_combinations=4,
        records=records[::-1],
        constraints=RunConstraints(min_trades=10),
    )
    assert again == out


def test_no_feasible_run_means_no_best():
    out = optimization_result(
        optimization_id="a",
        optimization_name="n",
        timestamp="t",
        total_combinations=1,
        records=[rec("00000000000000a1", 1.0, trades=1)],
        constraints=RunConstraints(min_trades=5),
    )
    assert out["best_configuration"] is None


def results_table(records, primary_metric="sharpe_ratio", constraints=None):
    """results.parquet of ``records`` as the sweep writes it, read back."""
    import io

    from s1mple.meta.outputs import write_table

    by_id = {r["run_id"]: r for r in records}
    order = RunOrder.of(by_id, list(by_id), primary_metric, Direction.MAXIMIZE, constraints)
    return pd.read_parquet(io.BytesIO(write_table(by_id, order)))


def test_results_table_columns():
    frame = results_table([rec("00000000000000a1", 2.0), rec("00000000000000b2", 3.0)])
    assert list(frame["rank"]) == [1, 2] and frame.iloc[0]["run_id"] == "00000000000000b2"
    for col in (
        "ma_crossover.slow",
        "choice.phase:exit_planning",
        "sharpe_ratio",
        "calmar_ratio",
        "opportunities_detected",
        "feasible",
        "error",
        "status",
    ):
        assert col in frame.columns
    assert frame["sharpe_ratio"].tolist() == [3.0, 2.0] and frame["ma_crossover.fast"].tolist() == [5, 5]


def test_results_table_mixed_param_types_are_stringified():
    a = rec("00000000000000a1", 1.0)
    b = rec("00000000000000b2", 1.0)
    a["configuration"] = {"p": {"mode": "fast"}}
    b["configuration"] = {"p": {"mode": 3}}
    assert set(results_table([a, b])["p.mode"]) == {"fast", "3"}


def test_results_table_a_param_some_runs_lack_is_missing_not_the_text_nan():
    a, b, c = (rec(f"00000000000000c{i}", float(i)) for i in range(3))
    a["configuration"] = {"p": {"mode": "fast"}}
    b["configuration"] = {"p": {"mode": 3}}
    c["configuration"] = {"q": {"x": 1}}  # no p.mode at all
    frame = results_table([a, b, c])
    by_run = dict(zip(frame["run_id"], frame["p.mode"], strict=True))
    assert by_run["00000000000000c0"] == "fast" and by_run["00000000000000c1"] == "3"
    assert pd.isna(by_run["00000000000000c2"])  # missing, not the text "nan"
    assert list(frame["q.x"].isna()) == [False, True, True]  # ranked: c2 (sharpe 2.0) first


def test_results_table_rows_become_arrow_in_batches_with_the_same_table(monkeypatch):
    """Rows are held as dicts BATCH at a time (memory), the row groups stay ROW_GROUP rows: the same
    table; at the shipped sizes (BATCH a multiple of Arrow's 1,024-row write batch) the same bytes as
    whole row groups of dicts."""
    import io

    import pyarrow.parquet as pq

    from s1mple.meta import outputs

    blocks = {"bars": [5, 5], "sum": [0.1, 0.2], "sumsq": [1.0, 2.0]}
    records = [rec(f"{i:016x}", float(i % 7), trades=5 + i % 3) for i in range(9000)]
    for r in records[::4]:
        r["returns"] = {"bars": 10, "sharpe": 0.1, "blocks": blocks}
    by_id = {r["run_id"]: r for r in records}
    order = RunOrder.of(by_id, list(by_id), "sharpe_ratio", Direction.MAXIMIZE, None)
    batched = outputs.write_table(by_id, order)
    with monkeypatch.context() as m:
        m.setattr(outputs, "BATCH", outputs.ROW_GROUP)
        assert outputs.write_table(by_id, order) == batched
    meta = pq.ParquetFile(io.BytesIO(batched)).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [outputs.ROW_GROUP, 9000 - outputs.ROW_GROUP]
    monkeypatch.setattr(outputs, "BATCH", 3)
    small = outputs.write_table(by_id, order)
    assert pq.read_table(io.BytesIO(small)).equals(pq.read_table(io.BytesIO(batched)))


def test_the_streamed_outputs_equal_the_in_memory_result(tmp_path):
    """Pass 1 on compact keys + pass 2 streamed: the same result.json as optimization_result, the
    same best, and only ``keep`` entries held."""
    import json

    from s1mple.meta.outputs import write_optimization
    from s1mple_engine.store import FileStore

    c = RunConstraints(min_trades=10)
    records = [rec(f"00000000000000e{i}", float(i % 4), trades=5 + i) for i in range(12)]
    records[3]["status"], records[3]["error"] = "failed", "boom"
    records[5]["labels"] = {"phase:exit_planning": "y", "size": "z"}
    expected = optimization_result(
        optimization_id="o",
        optimization_name="n",
        timestamp="t",
        total_combinations=12,
        records=records,
        constraints=c,
    )
    by_id = {r["run_id"]: r for r in records}
    order = RunOrder.of(by_id, list(by_id), "sharpe_ratio", Direction.MAXIMIZE, c)
    head = {k: v for k, v in expected.items() if k != "results"}
    assert order.best_entry(by_id)["run_id"] == expected["best_configuration"]["run_id"]
    assert (order.ok_runs, order.feasible_runs) == (expected["successful_runs"], expected["feasible_runs"])
    store = FileStore(tmp_path)
    kept, table = write_optimization(store, "result.json", by_id, order, head, keep=3)
    assert json.loads(store.get_bytes("result.json")) == json.loads(json.dumps(expected))
    assert kept == expected["results"][:3]
    labels = [c for c in pd.read_parquet(__import__("io").BytesIO(table)).columns if c.startswith("choice.")]
    assert labels == ["choice.phase:exit_planning", "choice.size"]


def test_result_json_is_streamed_entry_by_entry_and_reads_back_the_same():
    import json

    from s1mple.meta.aggregation import json_chunks

    out = optimization_result(
        optimization_id="o",
        optimization_name="n",
        timestamp="t",
        total_combinations=3,
        records=[rec(f"00000000000000d{i}", float(i)) for i in range(3)],
    )
    chunks = list(json_chunks(out))
    assert len(chunks) == 2 + len(out["results"])  # head, one per entry, tail
    assert json.loads("".join(chunks)) == json.loads(json.dumps(out))


def vrec(run_id, name, sharpe, ret, dd, trades, detected, rejected, exposure):
    return {
        "run_id": run_id,
        "index": 0,
        "name": name,
        "status": "ok",
        "metrics": {
            "sharpe_ratio": sharpe,
            "total_return": ret,
            "max_drawdown": dd,
            "total_trades": trades,
            "exposure": exposure,
        },
        "causality": {
            "opportunities_detected": detected,
            "opportunities_rejected": rejected,
            "threats_detected": 2,
            "top_rejection_reasons": [{"threat_type": "MAX_DRAWDOWN_BREACHED", "count": rejected}],
        },
    }


def test_variant_result_comparative_analysis():
    variants = [
        {"name": "baseline", "run_id": "a" * 16},
        {"name": "threat_aware", "run_id": "b" * 16},
        {"name": "relaxed", "run_id": "c" * 16},
        {"name": "broken", "run_id": "d" * 16},
    ]
    records = [
        vrec("a" * 16, "baseline", 2.45, 34.5, 8.2, 127, 245, 118, 0.6),
        vrec("b" * 16, "threat_aware", 2.78, 31.2, 5.4, 98, 245, 147, 0.4),
        vrec("c" * 16, "relaxed", 1.0, 10.0, 12.0, 300, 400, 10, 0.9),
        {"run_id": "d" * 16, "index": 3, "name": "broken", "status": "failed", "error": "x"},
    ]
    out = variant_result(
        test_id="t",
        test_name="n",
        timestamp="ts",
        market_period={"start": "2020"},
        variants=variants,
        records=records,
        causality_analysis=["rejection_reasons", "threats_per_variant"],
    )
    assert out["total_variants"] == 4 and out["successful_runs"] == 3 and out["failed_runs"] == 1
    assert out["comparative_analysis"] == {
        "best_sharpe": "threat_aware",
        "best_return": "baseline",
        "lowest_drawdown": "threat_aware",
        "most_trades": "relaxed",
        "most_defensive": "threat_aware",
    }
    assert [r["variant_name"] for r in out["results"]] == ["baseline", "threat_aware", "relaxed", "broken"]
    assert out["results"][0]["causality"]["opportunity_id_count"] == 245
    assert out["causality_analysis"]["threats_per_variant"]["baseline"] == 2
    assert out["market_period"] == {"start": "2020"}


def test_most_defensive_falls_back_to_exposure_and_ties_by_run_id():
    rows = [
        {
            "name": "a",
            "run_id": "2",
            "metrics": {"exposure": 0.5},
            "causality": {"opportunities_detected": 0},
        },
        {"name": "b", "run_id": "1", "metrics": {"exposure": 0.2}, "causality": {}},
    ]
    assert most_defensive(rows) == "b"
    rows = [
        {
            "name": "a",
            "run_id": "2",
            "metrics": {"exposure": 0.5},
            "causality": {"opportunities_detected": 10, "opportunities_rejected": 5},
        },
        {
            "name": "b",
            "run_id": "1",
            "metrics": {"exposure": 0.5},
            "causality": {"opportunities_detected": 4, "opportunities_rejected": 2},
        },
    ]
    assert most_defensive(rows) == "b"
