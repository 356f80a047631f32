"""An optimization's result.json and results.parquet, written in memory that does not grow with records.

Pass 1 (:class:`aggregation.RunOrder`) reads every record once and keeps only its rank key (~150 bytes
a run) and what the table's columns will be.  Pass 2 (here) reads the records again in rank order, one
at a time, streaming each result entry into result.json and each row into a parquet row group.  The
records can be a lazy mapping (the operator keeps them as JSON text): nothing holds all of them, their
entries and their rows at once.  Same entries as :func:`aggregation.optimization_result`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from . import aggregation
from .aggregation import METRICS, Record, RunOrder, column_kind
from .models import CAUSALITY_COUNTS

if TYPE_CHECKING:  # pyarrow is imported when a table is written, not when a sweep is planned or run
    import pyarrow as pa

#: Rows per parquet row group.
ROW_GROUP = 8192
#: Rows held as Python dicts before they become an Arrow batch (a row with its block sums is ~2.5 KB as
#: dicts, ~1 KB in Arrow: a row group buffered as dicts was ~20 MB of the s1mple controller's peak).
BATCH = 1024
_FLOATS = {*METRICS, *CAUSALITY_COUNTS, "duration_s", "psr", "sharpe_per_bar", "skewness", "kurtosis"}
_INTS = {"rank", "index", "bars"}
_BOOLS = {"feasible"}


@cache
def _lists() -> dict[str, pa.DataType]:
    import pyarrow as pa

    return {
        "block_bars": pa.list_(pa.int64()),
        "block_sum": pa.list_(pa.float64()),
        "block_sumsq": pa.list_(pa.float64()),
    }


def table_schema(order: RunOrder) -> pa.Schema:
    """The parquet schema of an order's table: fixed before the first row group is written."""
    import pyarrow as pa

    return pa.schema([(col, _arrow_type(order, col)) for col in order.columns])


def _arrow_type(order: RunOrder, col: str) -> pa.DataType:
    import pyarrow as pa

    if col in _lists():
        return _lists()[col]
    if col in _FLOATS:
        return pa.float64()
    if col in _INTS:
        return pa.int64()
    if col in _BOOLS:
        return pa.bool_()
    kinds = order.kinds.get(col, set())
    if column_kind(kinds) == "str" or not kinds or kinds == {str}:
        return pa.string()
    if kinds == {bool}:
        return pa.bool_()
    return pa.int64() if kinds == {int} else pa.float64()


class _Table:
    """results.parquet, one row group at a time, its rows made Arrow batches as they come."""

    def __init__(self, order: RunOrder):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = table_schema(order)
        self.stringify = {c for c in order.kinds if column_kind(order.kinds[c]) == "str"}
        self.sink = pa.BufferOutputStream()
        self.writer = pq.ParquetWriter(self.sink, self.schema)
        self.rows: list[Record] = []
        self.batches: list[pa.RecordBatch] = []
        self.buffered = 0

    def add(self, row: Record) -> None:
        for col in self.stringify:
            if row.get(col) is not None:
                row[col] = str(row[col])
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self._batch()
        if self.buffered >= ROW_GROUP:
            self.flush()

    def _batch(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.batches.append(pa.RecordBatch.from_pylist(self.rows, schema=self.schema))
            self.buffered += len(self.rows)
            self.rows = []

    def flush(self) -> None:
        """The buffered rows as one row group."""
        import pyarrow as pa

        self._batch()
        if self.batches:
            self.writer.write_table(pa.Table.from_batches(self.batches, self.schema), ROW_GROUP)
            self.batches, self.buffered = [], 0

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

    def entries() -> Iterator[Record]:
        for n, (_, rid, ok, why) in enumerate(order.order):
            rec = records[rid]
            entry = aggregation.result_entry(rec, ok, why, n + 1)
            table.add(aggregation.table_row(rec, ok, why, n + 1))
            if keep is None or n < keep:
                kept.append(entry)
            yield entry

    store.put_lines(result_key, aggregation.json_chunks({**head, "results": entries()}))
    return kept, table.finish()


def write_table(records: Mapping[str, Record], order: RunOrder) -> bytes:
    """results.parquet alone (a variant test's; its result is small and built in memory)."""
    table = _Table(order)
    for n, (_, rid, ok, why) in enumerate(order.order):
        table.add(aggregation.table_row(records[rid], ok, why, n + 1))
    return table.finish()
