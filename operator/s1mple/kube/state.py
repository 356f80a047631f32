"""What the s1mple controller remembers between reconcile ticks, in one object with one lock.

Nothing here is needed for correctness: every entry is rebuilt from storage after a restart (see
:mod:`s1mple.kube.reconcile`).  It only saves work and paces retries: the plan a running generation
follows, its run ids, the result parts already read and their tally, when progress was last patched and
how often the generation failed in a row.  kopf ticks different resources on different threads, so every
read and write of the maps goes through :attr:`ReconcileState.lock`; what one entry holds is changed only
by the thread that ticks its resource (kopf never runs two ticks of one resource at once).

A generation's entries are dropped when it finishes (:meth:`ReconcileState.forget_generation`), a
resource's when it is deleted (:meth:`ReconcileState.forget_resource`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from s1mple_engine.runs import PartLine

if TYPE_CHECKING:
    from s1mple.kube.research import PlannedResource, Tally

K = TypeVar("K")
#: (resource uid, generation)
Generation = tuple[str, int]
#: (store URI, plan id)
StoredPlan = tuple[str, str]


@dataclass
class ReconcileState:
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: failures in a row and the monotonic time before which the generation is not tried again
    failures: dict[Generation, tuple[int, float]] = field(default_factory=dict)
    #: monotonic time of the last progress patch
    progress_patched: dict[Generation, float] = field(default_factory=dict)
    #: the plan a running generation follows (a generation's spec cannot change: planned once)
    followed: dict[Generation, PlannedResource] = field(default_factory=dict)
    #: every run id of a stored plan, in plan order
    run_ids: dict[StoredPlan, list[str]] = field(default_factory=dict)
    #: result part key -> its (run_id, status, JSON line)s, per store URI (parts are immutable)
    parts: dict[str, dict[str, list[PartLine]]] = field(default_factory=dict)
    #: the progress tally of a stored plan
    tallies: dict[StoredPlan, Tally] = field(default_factory=dict)
    #: the store URIs a resource's entries are kept under (to drop them when it is deleted)
    stores: dict[str, set[str]] = field(default_factory=dict)

    def touch_store(self, uid: str, store_uri: str) -> dict[str, list[PartLine]]:
        """The part cache of ``store_uri``, remembered as one of resource ``uid``'s."""
        with self.lock:
            self.stores.setdefault(uid, set()).add(store_uri)
            return self.parts.setdefault(store_uri, {})

    def forget_generation(self, uid: str, generation: int, store_uri: str, plan_id: str) -> None:
        """Drop what a generation that has finished left behind."""
        with self.lock:
            self.followed.pop((uid, generation), None)
            self.progress_patched.pop((uid, generation), None)
            self.run_ids.pop((store_uri, plan_id), None)
            self.parts.pop(store_uri, None)
            self.tallies.pop((store_uri, plan_id), None)

    def forget_resource(self, uid: str) -> None:
        """Drop every entry of a deleted resource (a re-created one gets a new uid)."""
        with self.lock:
            uris = self.stores.pop(uid, set())
            for by_generation in (self.failures, self.progress_patched, self.followed):
                _drop(by_generation, lambda generation: generation[0] == uid)
            for by_plan in (self.run_ids, self.tallies):
                _drop(by_plan, lambda plan: plan[0] in uris)
            for uri in uris:
                self.parts.pop(uri, None)

    def size(self) -> int:
        """How many entries are kept (a test checks it falls back to zero)."""
        with self.lock:
            maps = (self.failures, self.progress_patched, self.followed, self.run_ids, self.parts)
            return sum(len(m) for m in maps) + len(self.tallies) + len(self.stores)


def _drop(mapping: dict[K, Any], gone: Callable[[K], bool]) -> None:
    for key in [k for k in mapping if gone(k)]:
        del mapping[key]
