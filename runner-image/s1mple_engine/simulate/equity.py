"""Mark-to-market: the equity at every bar's close, written one segment of bars at a time."""

from __future__ import annotations

import numpy as np

from .threats import ThreatBook


class EquityCurve:
    """``values[0]`` is the starting cash, ``values[t + 1]`` the equity at the close of bar t.

    Between two fills the account holds constant cash and a constant position, so a whole segment of bars
    is marked at once: ``cash + position x close``.  ``marked_to`` is the first bar whose close is not
    marked yet; a fill at a bar's close moves it back (``remark_from``) so that bar is marked again.

    Without ledger threats marking is lazy: :meth:`mark` only records the (cash, position) step that holds
    from a bar on, and :meth:`finish` builds the curve with one ``np.repeat``.  Ledger threats read the
    equity as it is marked, so with them every segment is written at once and scanned.
    """

    def __init__(self, close: np.ndarray, cash: float, threats: ThreatBook):
        self.close = close
        self.values = np.empty(len(close) + 1)
        self.values[0] = cash
        self.marked_to = 0
        self.threats = threats
        self.lazy = not threats.ledger_workers
        self.step_bar: list[int] = []
        self.step_cash: list[float] = []
        self.step_position: list[float] = []

    def remark_from(self, bar: int) -> None:
        """The close of ``bar`` (and later) is marked again: a fill at that close changed the account."""
        self.marked_to = bar

    def mark(self, to_bar: int, cash: float, position: float) -> int:
        """Mark bars [marked_to, to_bar] with ``cash`` and ``position`` (signed units).  Returns the first
        ledger emergency onset among them (bars after it are marked again once the position is gone) or -1."""
        a = self.marked_to
        if to_bar < a:
            return -1
        if self.lazy:
            steps = self.step_bar
            while steps and steps[-1] >= a:  # bars marked again replace their old steps
                steps.pop()
                self.step_cash.pop()
                self.step_position.pop()
            if not steps or self.step_cash[-1] != cash or self.step_position[-1] != position:
                steps.append(a)
                self.step_cash.append(cash)
                self.step_position.append(position)
            self.marked_to = to_bar + 1
            return -1
        values = self.values
        if position:
            values[a + 1 : to_bar + 2] = cash + position * self.close[a : to_bar + 1]
        else:
            values[a + 1 : to_bar + 2] = cash
        self.marked_to = to_bar + 1
        if position or values[a] != cash:
            first_emergency = self.threats.scan_ledger(values, a, to_bar, bool(position))
            if first_emergency >= 0:
                self.marked_to = first_emergency + 1
                return first_emergency
        return -1

    def finish(self) -> np.ndarray:
        """The whole curve (after the last bar is marked)."""
        if self.lazy:
            lengths = np.diff(np.append(self.step_bar, len(self.close)))
            self.values[1:] = (
                np.repeat(self.step_cash, lengths) + np.repeat(self.step_position, lengths) * self.close
            )
        return self.values
