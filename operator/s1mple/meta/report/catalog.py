"""What a result store holds: every optimization and variant test in it, finished or still running.

A research folder is one that has a ``result.json`` (finished), a ``manifest.json`` (a local sweep,
maybe running) or ``plans/<plan_id>/manifest.json`` (the operator's layout, maybe running).  Progress of a
running one is the number of distinct run_ids in its ``results/`` parts against its planned runs; parts
are immutable once written, so each is counted once.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass
from typing import Any

from s1mple_engine.runs import RESULTS_PREFIX
from s1mple_engine.runspec import MANIFEST_KEY
from s1mple_engine.store import Store, open_store

from ..service import RESULT_KEY
from .sources import REPORT_KEY, read_summary

_RUN_ID = re.compile(rb'"run_id": ?"([0-9a-f]{16})"')


@dataclass
class Research:
    folder: str
    kind: str
    name: str
    state: str  # finished | running
    done: int
    total: int
    failed: int | None
    best: str | None
    date: str | None
    report: bool


def folder_store(store: Store, folder: str) -> Store:
    """The store of one research folder (``folder`` comes from :meth:`Catalog.folders`, never a user)."""
    return open_store(store.url(folder), endpoint_url=getattr(store, "endpoint_url", None))


class Catalog:
    """The research folders of a store, with a cache of what does not change (counted parts, summaries)."""

    def __init__(self, store: Store):
        self.store = store
        self._parts: dict[str, set[str]] = {}
        self._summaries: dict[tuple[str, int], dict[str, Any]] = {}

    def folders(self, keys: list[str] | None = None) -> dict[str, set[str]]:
        """folder -> the marker files found in it (result.json, manifest.json, plans, report.html)."""
        keys = self.store.list_keys("") if keys is None else keys
        found: dict[str, set[str]] = {}
        for key in keys:
            parts = key.split("/")
            name = parts[-1]
            if name in (RESULT_KEY, REPORT_KEY, MANIFEST_KEY) and "plans" not in parts[:-1]:
                found.setdefault("/".join(parts[:-1]), set()).add(name)
            elif name == MANIFEST_KEY and len(parts) >= 3 and parts[-3] == "plans":
                found.setdefault("/".join(parts[:-3]), set()).add("plans")
        return {f: m for f, m in found.items() if m & {RESULT_KEY, MANIFEST_KEY, "plans"}}

    def _done(self, keys: list[str], folder: str) -> int:
        prefix = posixpath.join(folder, RESULTS_PREFIX) if folder else RESULTS_PREFIX
        ids: set[str] = set()
        for key in keys:
            if key.startswith(prefix) and key.endswith(".jsonl"):
                if key not in self._parts:
                    self._parts[key] = {m.decode() for m in _RUN_ID.findall(self.store.get_bytes(key))}
                ids |= self._parts[key]
        return len(ids)

    def _manifest(self, keys: list[str], folder: str, markers: set[str]) -> dict[str, Any]:
        sub = folder_store(self.store, folder)
        if MANIFEST_KEY in markers:
            return sub.get_json(MANIFEST_KEY)
        plans = sorted(
            k
            for k in keys
            if k.startswith(posixpath.join(folder, "plans", "")) and k.endswith("/" + MANIFEST_KEY)
        )
        return self.store.get_json(plans[-1]) if plans else {}

    def research(self) -> list[Research]:
        keys = self.store.list_keys("")
        out = []
        for folder, markers in sorted(self.folders(keys).items()):
            done = self._done(keys, folder)
            if RESULT_KEY in markers:
                key = (folder, done)
                if key not in self._summaries:
                    self._summaries[key] = read_summary(folder_store(self.store, folder))
                out.append(self._finished(folder, self._summaries[key], REPORT_KEY in markers, done))
                continue
            m = self._manifest(keys, folder, markers)
            out.append(
                Research(
                    folder=folder or ".",
                    kind=m.get("kind", "optimization"),
                    name=m.get("name") or folder,
                    state="running",
                    done=done,
                    total=int(m.get("planned_runs") or m.get("total") or 0),
                    failed=None,
                    best=None,
                    date=m.get("created"),
                    report=False,
                )
            )
        return out

    @staticmethod
    def _finished(folder: str, s: dict[str, Any], report: bool, done: int) -> Research:
        if "optimization_id" in s:
            metric = (s.get("optimization_targets") or {}).get("primary_metric")
            best = (s.get("best_configuration") or {}).get("metrics", {}).get(metric)
            total = int(s.get("planned_runs") or s.get("total_combinations") or 0)
            return Research(
                folder=folder or ".",
                kind="optimization",
                name=s.get("optimization_name", folder),
                state="running" if done > int(s.get("completed_runs") or 0) else "finished",
                done=max(done, int(s.get("completed_runs") or 0)),
                total=total,
                failed=s.get("failed_runs"),
                best=f"{metric}={best:.4g}" if isinstance(best, int | float) else None,
                date=s.get("timestamp"),
                report=report,
            )
        return Research(
            folder=folder or ".",
            kind="variant_test",
            name=s.get("test_name", folder),
            state="finished",
            done=int(s.get("successful_runs") or 0) + int(s.get("failed_runs") or 0),
            total=int(s.get("total_variants") or 0),
            failed=s.get("failed_runs"),
            best=(s.get("comparative_analysis") or {}).get("best_sharpe"),
            date=s.get("timestamp"),
            report=report,
        )

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.research()]
