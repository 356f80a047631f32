"""A run's record is built without a second validation pass (``RunRecord.model_construct``): what it
holds must still be exactly what validation would accept and keep, for every kind of run a sweep makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from s1mple_engine.config import Operation, load_operation
from s1mple_engine.runs import RunRecord, execute_run
from s1mple_engine.runspec import RunSpec, run_id_of

ROOT = Path(__file__).resolve().parents[2]


def spec_of(kind: str, **extra) -> RunSpec:
    op = load_operation(ROOT / "config/operations/ma_crossover.yaml")
    if "segments" in extra:
        op = Operation.model_validate({**op.model_dump(), "segments": extra.pop("segments")})
    return RunSpec(
        run_id=run_id_of(op),
        index=3,
        kind=kind,
        labels={"fast": "10"},
        configuration={"ma_crossover": {"fast": 10, "slow": 20}},
        operation=op,
        **extra,
    )


@pytest.mark.parametrize(
    "spec",
    [
        spec_of("optimization"),
        spec_of("variant_test", name="baseline"),  # records the per-bar return series
        spec_of("optimization", curves=True, window="oos"),
        spec_of("optimization", segments=[{"name": "first", "start": 0, "end": 400, "per_bar": True}]),
    ],
    ids=["optimization", "variant_test", "curves", "segments"],
)
def test_a_constructed_record_is_what_validation_keeps(spec):
    record = execute_run(spec)
    assert record.status == "ok", record.error
    dumped = record.model_dump(mode="json", exclude_none=True)
    again = RunRecord.model_validate(dumped).model_dump(mode="json", exclude_none=True)
    assert again == dumped
    assert all(type(v) in (int, float, type(None)) for v in record.metrics.values())
    assert record.metrics["total_trades"] > 0
