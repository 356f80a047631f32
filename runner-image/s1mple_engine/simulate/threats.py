"""The threat book: every threat a run detects, and the questions the simulation asks about them.

Market threats (``kind: market``) are per-bar flags computed once from the bars; a worker triggered
``on_context_ready`` opens one threat per episode (a run of flagged bars) at its first bar.  Ledger threats
(``kind: ledger``) look at the equity as it is marked, so they are found while the loop runs.  Threats
created by vetting an opportunity (a flagged bar with no episode threat) are added at that bar.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np

from ..workers import SEVERITIES, Context, ThreatWorker
from .outcome import Threat


class ThreatBook:
    """Threats of one run, in creation order; ``threats[i]`` = (bar, worker index, creation sequence)."""

    def __init__(self, ctx: Context, workers: list[ThreatWorker], emergency: frozenset[str] | None):
        self.workers = workers
        self.ctx = ctx
        self.emergency = emergency
        self.threats: list[Threat] = []
        #: per worker: the market flags as a list, or None for a ledger worker
        self.market_flags: list[list[bool] | None] = []
        #: per market worker triggered on_context_ready: (episode's first bar per bar, threat per first bar)
        self.episodes: list[tuple[list[int], dict[int, int]] | None] = []
        self.ledger_workers: list[int] = []
        emergency_onsets = self._read_market_threats(ctx)
        # threats so far are the market onsets (all bars); later ones come in non-decreasing bar order
        self.static_count = len(self.threats)
        self.severity_rank = [
            SEVERITIES.index(w.severity) if w.severity in SEVERITIES else 0 for w in workers
        ]
        by_bar = sorted(self.threats)
        self.static_bars = [t[0] for t in by_bar]
        self.static_severity = [self.severity_rank[t[1]] for t in by_bar]
        #: bars where a market threat of an emergency severity starts
        self.emergency_onsets = np.asarray(sorted(set(emergency_onsets)), dtype=np.int64)
        self.ledger_last_day = {w: -(10**9) for w in self.ledger_workers}
        self.ledger_last_threat = {w: -1 for w in self.ledger_workers}
        self.ledger_emergency = [w for w in self.ledger_workers if self._is_emergency_worker(w)]
        self.day = ctx.data.day_list if self.ledger_workers else []

    def _is_emergency_worker(self, widx: int) -> bool:
        return bool(self.emergency) and self.workers[widx].severity in self.emergency  # type: ignore[operator]

    def _read_market_threats(self, ctx: Context) -> list[int]:
        """Flags of every market worker; one threat per episode for those triggered on_context_ready.
        Returns the episode starts of the emergency-severity workers."""
        n = ctx.n
        emergency_onsets: list[int] = []
        for widx, w in enumerate(self.workers):
            if w.kind != "market":
                self.market_flags.append(None)
                self.episodes.append(None)
                self.ledger_workers.append(widx)
                continue
            flags = ctx.memo(("threat_flags",) + w.key, lambda w=w: w.flags(ctx))
            self.market_flags.append(flags.tolist())
            if "on_context_ready" not in w.active_triggers:
                self.episodes.append(None)
                continue
            start = flags.copy()
            start[1:] &= ~flags[:-1]
            onsets = np.flatnonzero(start)
            episode_start = np.maximum.accumulate(np.where(start, np.arange(n), -1))
            threat_at = {b: self.add(b, widx) for b in onsets.tolist()}
            self.episodes.append((episode_start.tolist(), threat_at))
            if self._is_emergency_worker(widx):
                emergency_onsets.extend(onsets.tolist())
        return emergency_onsets

    def add(self, bar: int, widx: int) -> int:
        """Record a threat of worker ``widx`` at ``bar``; returns its index."""
        self.threats.append((bar, widx, len(self.threats)))
        return len(self.threats) - 1

    def recent(self, bar: int, window: int, min_severity: int) -> bool:
        """A threat of severity >= ``min_severity`` detected in bars [bar - window, bar] (at bar's close)."""
        lo = bar - window
        for k in range(bisect_left(self.static_bars, lo), bisect_right(self.static_bars, bar)):
            if self.static_severity[k] >= min_severity:
                return True
        threats = self.threats
        for t in range(len(threats) - 1, self.static_count - 1, -1):
            threat_bar, widx, _ = threats[t]
            if threat_bar < lo:
                break
            if threat_bar <= bar and self.severity_rank[widx] >= min_severity:
                return True
        return False

    def vet(self, bar: int, first_only: bool) -> list[int]:
        """The threats that apply to an opportunity at ``bar`` (creating on_opportunity_detected threats);
        with ``first_only`` (CHAIN_THROUGH) it stops at the first."""
        found: list[int] = []
        for widx in range(len(self.workers)):
            flags = self.market_flags[widx]
            if flags is not None:
                if flags[bar]:
                    episode = self.episodes[widx]
                    if episode is not None:
                        episode_start, threat_at = episode
                        found.append(threat_at[episode_start[bar]])
                    else:
                        found.append(self.add(bar, widx))
            elif self.ledger_last_threat[widx] >= 0 and self.ledger_last_day[widx] == self.day[bar]:
                found.append(self.ledger_last_threat[widx])
            if found and first_only:
                break
        return found

    def calls_emergency(self, found: list[int], bar: int) -> bool:
        """One of ``found`` starts at ``bar`` with an emergency severity (the open position must go)."""
        return any(self.threats[t][0] == bar and self._is_emergency_worker(self.threats[t][1]) for t in found)

    def next_emergency_onset(self, first: int, before: int) -> int:
        """The first market emergency onset in bars [first, before), or -1."""
        onsets = self.emergency_onsets
        if not len(onsets):
            return -1
        pos = int(np.searchsorted(onsets, first))
        return int(onsets[pos]) if pos < len(onsets) and onsets[pos] < before else -1

    def scan_ledger(self, equity: np.ndarray, a: int, b: int, in_position: bool) -> int:
        """Ledger threats in the freshly marked bars [a, b]; returns the first emergency onset while a
        position is open (threats after it are not recorded: the exit changes the equity), or -1."""
        found = [
            (w, self.workers[w].ledger_scan(self.ctx, equity, a, b, self.ledger_last_day[w]))
            for w in self.ledger_workers
        ]
        first_emergency = -1
        if in_position:
            for w, onsets in found:
                if (
                    onsets
                    and w in self.ledger_emergency
                    and (first_emergency < 0 or onsets[0] < first_emergency)
                ):
                    first_emergency = onsets[0]
        for w, onsets in found:
            for bar in onsets:
                if 0 <= first_emergency < bar:
                    break
                self.ledger_last_day[w] = self.day[bar]
                self.ledger_last_threat[w] = self.add(bar, w)
        return first_emergency
