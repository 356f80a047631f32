"""An optimization's result.json and results.parquet, written in memory that does not grow with records.

Pass 1 reads every record once and keeps only its rank key (~150 bytes a run) and what the table's
columns will be.  Pass 2 reads the records again in rank order, one at a time, streaming each result
entry into result.json and each row into a parquet row group.  The records themselves can be a lazy
mapping (the operator keeps them as JSON text): nothing holds all of them, their entries and their rows
at once.  Same content as :func:`aggregation.optimization_result` / :func:`aggregation.results_frame`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import aggregation
from .aggregation import METRICS, Record, column_kind, feasibility, rank_key, table_columns
from .models import CAUSALITY_COUNTS, Direction, RunConstraints

#: Rows per parquet row group (and per batch held in memory).
ROW_GROUP = 8192
_FLOATS = {*METRICS, *CAUSALITY_COUNTS, "duration_s"}
_INTS = {"rank", "index"}
_BOOLS = {"feasible"}


@dataclass
class RunOrder:
    """Pass 1: the runs best first, as (rank key, run_id, feasible, reason), and the table's columns."""

    order: list[tuple[tuple[Any, ...], str, bool, str | None]]
    ok_runs: int
    feasible_runs: int
    columns: list[str]
    kinds: dict[str, set[type]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        records: Mapping[str, Record],
        run_ids: Iterable[str],
        primary_metric: str,
        direction: Direction,
        constraints: RunConstraints | None,
    ) -> RunOrder:
        order = []
        ok_runs = feasible_runs = 0
        label_first: dict[str, tuple[Any, ...]] = {}  # where a label column first appears in rank order
        kinds: dict[str, set[type]] = {}
        variants = False
        for rid in run_ids:
            rec = records.get(rid)
            if rec is None:
                continue
            ok, why = feasibility(rec, constraints)
            key = rank_key(rec, primary_metric, direction, ok)
            order.append((key, rid, ok, why))
            ok_runs += rec.get("status") == "ok"
            feasible_runs += ok
            variants = variants or rec.get("name") is not None
            for pos, (k, v) in enumerate((rec.get("labels") or {}).items()):
                col = f"choice.{k}"
                label_first[col] = min(label_first.get(col, (key, pos)), (key, pos))
                _note_kind(kinds, col, v)
            for plugin, params in (rec.get("configuration") or {}).items():
                for p, v in (params or {}).items():
                    _note_kind(kinds, f"{plugin}.{p}", json.dumps(v) if isinstance(v, list | dict) else v)
        order.sort()
        labels = sorted(label_first, key=label_first.__getitem__)
        params = [c for c in kinds if not c.startswith("choice.")]
        columns = table_columns(labels, params, variants)
        return cls(order, ok_runs, feasible_runs, columns, kinds)

    def best_entry(self, records: Mapping[str, Record]) -> Record | None:
        """The result entry of the best run: the first feasible one that has the primary metric."""
        for n, (key, rid, ok, why) in enumerate(self.order):
            if ok and key[1] == 0:  # rank_key: (feasible group, metric missing, value, run_id)
                return aggregation.result_entry(records[rid], ok, why, n + 1)
        return None

    def schema(self) -> pa.Schema:
        return pa.schema([(col, self._type(col)) for col in self.columns])

    def _type(self, col: str) -> pa.DataType:
        if col in _FLOATS:
            return pa.float64()
        if col in _INTS:
            return pa.int64()
        if col in _BOOLS:
            return pa.bool_()
        kinds = self.kinds.get(col, set())
        if column_kind(kinds) == "str" or not kinds or kinds == {str}:
            return pa.string()
        if kinds == {bool}:
            return pa.bool_()
        return pa.int64() if kinds == {int} else pa.float64()


def _note_kind(kinds: dict[str, set[type]], col: str, value: Any) -> None:
    if value is not None and value == value:  # value != value: NaN
        kinds.setdefault(col, set()).add(type(value))
    else:
        kinds.setdefault(col, set())


class _Table:
    """results.parquet, one row group at a time."""

    def __init__(self, order: RunOrder):
        self.schema = order.schema()
        self.stringify = {c for c in order.kinds if column_kind(order.kinds[c]) == "str"}
        self.sink = pa.BufferOutputStream()
        self.writer = pq.ParquetWriter(self.sink, self.schema)
        self.rows: list[Record] = []

    def add(self, row: Record) -> None:
        for col in self.stringify:
            if row.get(col) is not None:
                row[col] = str(row[col])
        self.rows.append(row)
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_batch(pa.RecordBatch.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def finish(self) -> bytes:
        self.flush()
        self.writer.close()
        return self.sink.getvalue().to_pybytes()


def write_optimization(
    store: Any,
    result_key: str,
    records: Mapping[str, Record],
    order: RunOrder,
    head: Record,
    keep: int | None = None,
) -> tuple[list[Record], bytes]:
    """Pass 2: result.json (``head`` + every entry, best first) into ``store``, and the table's bytes
    (small: ~100 bytes a run).  Returns the first ``keep`` entries (all for None) too."""
    kept: list[Record] = []
    table = _Table(order)

    def chunks() -> Iterator[str]:
        yield json.dumps(head, default=str)[:-1] + (", " if head else "") + '"results": ['
        for n, (_, rid, ok, why) in enumerate(order.order):
            rec = records[rid]
            entry = aggregation.result_entry(rec, ok, why, n + 1)
            table.add(aggregation.table_row(rec, ok, why, n + 1))
            if keep is None or n < keep:
                kept.append(entry)
            yield (", " if n else "") + json.dumps(entry, default=str)
        yield "]}"

    store.put_lines(result_key, chunks())
    return kept, table.finish()


def write_table(records: Mapping[str, Record], order: RunOrder) -> bytes:
    """results.parquet alone (a variant test's; its result is small and built in memory)."""
    table = _Table(order)
    for n, (_, rid, ok, why) in enumerate(order.order):
        table.add(aggregation.table_row(records[rid], ok, why, n + 1))
    return table.finish()
