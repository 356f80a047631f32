"""How a plan's runs are laid out in storage for a Job's pods: one definition for writer and reader.

The operator streams the runs that still need a result into fixed-size chunk files while it plans (one
pass, never the whole plan in memory), then writes ``manifest.json`` with the layout LAST::

    plans/<plan_id>/chunk-<j>.jsonl   runs j*CHUNK_RUNS .. (j+1)*CHUNK_RUNS-1 of the runs to do
    plans/<plan_id>/manifest.json     {..., "cluster": {"todo": N, "runs_per_pod": R, "chunk_runs": C}}

Job completion index ``i`` runs positions ``[i*R, min((i+1)*R, N))``: chunk size (storage) and runs per
pod (scheduling) are independent, so the pod count can be chosen after the pass that counted the runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .store import Store

CHUNK_RUNS = 1000


def plan_dir(plan_id: str) -> str:
    return f"plans/{plan_id}"


def manifest_key(plan_id: str) -> str:
    return f"{plan_dir(plan_id)}/manifest.json"


def chunk_key(plan_id: str, j: int) -> str:
    return f"{plan_dir(plan_id)}/chunk-{j}.jsonl"


class BadLayout(Exception):
    """The stored plan cannot give this index its runs (missing, unreadable, or index out of range)."""


@dataclass(frozen=True)
class Layout:
    todo: int
    runs_per_pod: int
    chunk_runs: int = CHUNK_RUNS

    @property
    def completions(self) -> int:
        return -(-self.todo // self.runs_per_pod) if self.todo else 0

    def span(self, index: int) -> range:
        """The positions (among the runs to do) that completion index ``index`` runs."""
        if not 0 <= index < self.completions:
            raise BadLayout(f"index {index} out of range: the plan has {self.completions} pod(s)")
        start = index * self.runs_per_pod
        return range(start, min(start + self.runs_per_pod, self.todo))

    def as_dict(self) -> dict[str, int]:
        return {"todo": self.todo, "runs_per_pod": self.runs_per_pod, "chunk_runs": self.chunk_runs}

    @classmethod
    def of_manifest(cls, manifest: dict[str, Any]) -> Layout:
        c = manifest.get("cluster") or {}
        try:
            return cls(int(c["todo"]), int(c["runs_per_pod"]), int(c.get("chunk_runs", CHUNK_RUNS)))
        except (KeyError, TypeError, ValueError):
            raise BadLayout("manifest.json has no usable 'cluster' layout (todo, runs_per_pod)") from None


class ChunkWriter:
    """Collects run payloads and writes each full chunk at once (the caller writes the manifest last)."""

    def __init__(self, store: Store, plan_id: str, chunk_runs: int = CHUNK_RUNS):
        self.store, self.plan_id, self.chunk_runs = store, plan_id, chunk_runs
        self.pending: list[dict[str, Any]] = []
        self.written = 0  # chunks

    def add(self, payload: dict[str, Any]) -> None:
        self.pending.append(payload)
        if len(self.pending) == self.chunk_runs:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.put_jsonl(chunk_key(self.plan_id, self.written), self.pending)
            self.pending, self.written = [], self.written + 1


def read_layout(store: Store, plan_id: str) -> Layout:
    key = manifest_key(plan_id)
    if not store.exists(key):
        raise BadLayout(f"no plan {plan_id} in {store.uri} ({store.url(key)} missing)")
    try:
        manifest = store.get_json(key)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadLayout(f"{store.url(key)}: unreadable: {exc}") from None
    return Layout.of_manifest(manifest if isinstance(manifest, dict) else {})


def read_run_lines(store: Store, plan_id: str, index: int) -> list[str]:
    """The run payloads of completion index ``index``, as JSON lines: a pod parses one run at a time, so
    thousands of payload dicts never sit in its heap (where every full GC pass would walk them)."""
    layout = read_layout(store, plan_id)
    span = layout.span(index)
    lines: list[str] = []
    first, last = span.start // layout.chunk_runs, (span.stop - 1) // layout.chunk_runs
    for j in range(first, last + 1):
        key = chunk_key(plan_id, j)
        try:
            text = store.get_bytes(key).decode()
        except KeyError:
            raise BadLayout(f"{store.url(key)} missing") from None
        except UnicodeDecodeError as exc:
            raise BadLayout(f"{store.url(key)}: unreadable: {exc}") from None
        offset = j * layout.chunk_runs
        rows = [line for line in text.splitlines() if line.strip()]
        lines += rows[max(span.start - offset, 0) : span.stop - offset]
    if len(lines) != len(span):
        raise BadLayout(f"plan {plan_id} index {index}: {len(span)} runs planned, chunks hold {len(lines)}")
    return lines
