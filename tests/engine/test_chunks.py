"""The plan layout the operator writes and each pod reads: any runs-per-pod over fixed-size chunks."""

from __future__ import annotations

import json

import pytest

from s1mple_engine import chunks
from s1mple_engine.store import FileStore


def _write(store: FileStore, n: int, runs_per_pod: int, chunk_runs: int) -> chunks.Layout:
    writer = chunks.ChunkWriter(store, "p1", chunk_runs=chunk_runs)
    for i in range(n):
        writer.add({"run_id": f"r{i}"})
    writer.flush()
    layout = chunks.Layout(n, runs_per_pod, chunk_runs)
    store.put_json(chunks.manifest_key("p1"), {"cluster": layout.as_dict()})
    return layout


@pytest.mark.parametrize(
    ("n", "per_pod", "chunk"), [(10, 3, 4), (10, 10, 3), (7, 2, 7), (1, 5, 1000), (9, 4, 2)]
)
def test_every_run_goes_to_exactly_one_index_in_order(tmp_path, n, per_pod, chunk):
    store = FileStore(tmp_path)
    layout = _write(store, n, per_pod, chunk)
    assert layout.completions == -(-n // per_pod)
    lines = [line for i in range(layout.completions) for line in chunks.read_run_lines(store, "p1", i)]
    got = [json.loads(line)["run_id"] for line in lines]
    assert got == [f"r{i}" for i in range(n)]
    assert len(store.list_keys("plans/p1/chunk-")) == -(-n // chunk)


def test_bad_layouts_name_what_is_wrong(tmp_path):
    store = FileStore(tmp_path)
    with pytest.raises(chunks.BadLayout, match="no plan p1"):
        chunks.read_run_lines(store, "p1", 0)
    _write(store, 10, 3, 4)
    with pytest.raises(chunks.BadLayout, match="index 4 out of range: the plan has 4 pod"):
        chunks.read_run_lines(store, "p1", 4)
    store.delete(chunks.chunk_key("p1", 1))
    with pytest.raises(chunks.BadLayout, match="chunk-1.jsonl missing"):
        chunks.read_run_lines(store, "p1", 1)
    store.put_bytes(chunks.chunk_key("p1", 1), b'{"run_id": "r4"}\n')  # torn: runs lost
    with pytest.raises(chunks.BadLayout, match="3 runs planned, chunks hold 2"):
        chunks.read_run_lines(store, "p1", 1)
    store.put_json(chunks.manifest_key("p1"), {"plan_id": "p1"})
    with pytest.raises(chunks.BadLayout, match="no usable 'cluster' layout"):
        chunks.read_run_lines(store, "p1", 0)
    store.put_bytes(chunks.manifest_key("p1"), b"{not json")
    with pytest.raises(chunks.BadLayout, match="manifest.json: unreadable"):
        chunks.read_run_lines(store, "p1", 0)
