"""Event-chain validation, run before every backtest.

Each worker listens to its active triggers plus the custom events of its manifest (``listens``) and
publishes the events of its manifest (``publishes``).  The system publishes ``on_context_ready`` and
``on_ledger_update`` always, and ``on_opportunity_detected`` when the blueprint has an opportunity worker.
Problems, each naming the worker path, the plugin and the event:

* **unknown event** – listened to, but neither a system event nor published by any registered plugin;
* **listener with no publisher** – a known event that no worker of *this* blueprint publishes (the
  message names registered plugins that would publish it);
* **cycle** – workers that (transitively) trigger each other, e.g. A publishes x, B listens to x and
  publishes y, A listens to y.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .config import suggest
from .registry import all_plugins, known_events
from .workers import SYSTEM_EVENTS


class Wired(Protocol):
    """A worker as the event chain sees it (a plugin instance, or its validation-time Wiring)."""

    @property
    def name(self) -> str: ...
    @property
    def publishes(self) -> Sequence[str]: ...

    def listened_events(self) -> tuple[str, ...]: ...


def validate_event_chains(workers: Sequence[tuple[str, Wired]], has_opportunity_workers: bool) -> list[str]:
    problems: list[str] = []
    published: dict[str, list[int]] = {}
    for idx, (_, w) in enumerate(workers):
        for ev in w.publishes:
            published.setdefault(ev, []).append(idx)
    system = {"on_context_ready", "on_ledger_update"}
    if has_opportunity_workers:
        system.add("on_opportunity_detected")
    known = known_events()
    for path, w in workers:
        for ev in w.listened_events():
            label = f"{path} ({w.name})"
            if ev not in known:
                problems.append(f"{label}: listens to unknown event {ev!r}{suggest(ev, known)}")
            elif ev not in system and ev not in published:
                if ev in SYSTEM_EVENTS:
                    fix = "add an opportunity worker"
                else:
                    pubs = sorted(n for n, c in all_plugins().items() if ev in c.publishes)
                    fix = f"add a worker that publishes it ({', '.join(pubs) or 'none registered'})"
                problems.append(
                    f"{label}: listens to {ev!r} but no worker in this blueprint publishes it; {fix}"
                )
    # cycles among workers: edge a -> b when a publishes an event b listens to
    edges: dict[int, list[tuple[int, str]]] = {i: [] for i in range(len(workers))}
    for b, (_, wb) in enumerate(workers):
        for ev in wb.listened_events():
            for a in published.get(ev, ()):
                edges[a].append((b, ev))
    state = [0] * len(workers)  # 0 new, 1 on stack, 2 done
    reported: set[frozenset[int]] = set()
    for i in range(len(workers)):
        if state[i] == 0:
            _visit(i, [(i, "")], edges, state, reported, workers, problems)
    return problems


def _visit(
    a: int,
    stack: list[tuple[int, str]],
    edges: dict[int, list[tuple[int, str]]],
    state: list[int],
    reported: set[frozenset[int]],
    workers: Sequence[tuple[str, Wired]],
    problems: list[str],
) -> None:
    """Depth-first search from ``a`` reporting each cycle once (a module function, not a recursive
    closure: that would be a reference cycle left for the GC on every backtest)."""
    state[a] = 1
    for b, ev in edges[a]:
        stack.append((b, ev))
        if state[b] == 1:
            start = next(k for k in range(len(stack)) if stack[k][0] == b)
            cycle = stack[start:]
            members = frozenset(x for x, _ in cycle)
            if members not in reported:
                reported.add(members)
                chain = f"{workers[b][0]} ({workers[b][1].name})"
                for x, e in cycle[1:]:  # the last element is b again: closes the loop
                    chain += f" --{e}--> {workers[x][0]} ({workers[x][1].name})"
                problems.append(f"event cycle: {chain}; break it by removing one of these wirings")
        elif state[b] == 0:
            _visit(b, stack, edges, state, reported, workers, problems)
        stack.pop()
    state[a] = 2
