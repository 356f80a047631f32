"""Stops and targets of the open position: where they are, when a bar first touches one, what it fills.

Levels are kept in "long space" (``side x price``) so one comparison serves both sides: a long's stop is
hit when ``low <= stop``; a short's when ``-high <= -stop``.  Trailing rules raise the stop bar by bar
from the best price reached before the bar (so a bar never trails its own stop); partial targets are
sorted, nearest first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..data import MarketData

_NO_BARS = np.empty(0, dtype=np.intp)


class ExitLevels:
    """The exit levels of the open position and the rules that move them.

    ``stop`` / ``tp`` are prices (NaN: none); ``stop_kind`` is the exit reason when the stop is hit
    (``stop_loss``, ``breakeven_stop`` or ``trailing_stop``); ``best`` is the best price since entry in long
    space; ``partials`` the remaining partial targets (level in long space, fraction, move stop to
    breakeven); ``trail_from`` per trailing rule the level (long space) from which it trails (-inf: at once);
    ``next_check`` the first bar not scanned for touches yet.

    Rules (from the ExecutionOperator): ``trails`` = (kind, value, array(s)[, activate]) with kind
    ``percent`` | ``atr`` | ``levels``; ``partial_rules`` = (target in R, fraction, breakeven, fallback
    fraction of the price when the plan has no stop).
    """

    def __init__(
        self,
        data: MarketData,
        trails: list[tuple[Any, ...]],
        partial_rules: list[tuple[Any, ...]],
        in_use: bool = True,
    ):
        self.trails = trails
        self.partial_rules = partial_rules
        self.low, self.high = data.low, data.high
        self.neg_high, self.neg_low = -data.high, -data.low  # a short's lows and highs in long space
        self.opens, self.highs, self.lows, _ = data.lists
        self.stop = math.nan
        self.stop_kind = "stop_loss"
        self.tp = math.nan
        self.stop_dist = math.nan
        self.best = 0.0
        self.partials: list[tuple[float, float, bool]] = []
        self.trail_from: list[float] = []
        self.next_check = 0
        #: False when no position of the run can have a stop, a target or a trailing rule: then entries
        #: skip :meth:`arm` (levels stay NaN) and the loop never looks for touches
        self.in_use = in_use

    def low_in_long_space(self, bar: int, side: int) -> float:
        return self.lows[bar] if side > 0 else -self.highs[bar]

    def bar_in_long_space(self, bar: int, side: int) -> tuple[float, float, float]:
        """(low, high, open) of ``bar`` in long space."""
        if side > 0:
            return self.lows[bar], self.highs[bar], self.opens[bar]
        return -self.highs[bar], -self.lows[bar], -self.opens[bar]

    def arm(self, side: int, price: float, stop_dist: float, tp_dist: float) -> None:
        """Set the levels of a position entered at ``price``: stop and take-profit at their plan distances
        (NaN: none), partial targets and trailing activation in R multiples of the stop distance (or a
        fraction of the price when there is no stop)."""
        has_stop = stop_dist == stop_dist and stop_dist > 0
        self.stop_dist = stop_dist
        self.stop = price - side * stop_dist if stop_dist == stop_dist else math.nan
        self.stop_kind = "stop_loss"
        self.tp = price + side * tp_dist if tp_dist == tp_dist else math.nan
        self.best = side * price
        self.partials = []
        self.trail_from = []
        if not (self.partial_rules or self.trails):
            return
        for target_r, fraction, breakeven, fallback in self.partial_rules:
            dist = target_r * stop_dist if has_stop else fallback * price
            self.partials.append((side * price + dist, fraction, breakeven))
        self.partials.sort()
        for rule in self.trails:
            activate = rule[3] if len(rule) > 3 else None
            if activate is None:
                self.trail_from.append(-math.inf)
            else:
                target_r, fallback = activate
                dist = target_r * stop_dist if has_stop else fallback * price
                self.trail_from.append(side * price + dist)

    def _trailed_stops(self, side: int, a: int, b: int, stop_l: float) -> np.ndarray:
        """The stop in force at each bar of [a, b] (long space) under the trailing rules."""
        seg_high = (self.high if side > 0 else self.neg_low)[a:b]
        best_before = np.maximum.accumulate(np.concatenate(([self.best], seg_high)))
        candidate = np.full(b - a + 1, -np.inf)
        for r, (kind, value, source, *_) in enumerate(self.trails):
            if kind == "percent":
                level = best_before - value * np.abs(best_before)
            else:
                src = source if kind == "atr" else source[0 if side > 0 else 1]
                prev = src[a - 1 : b] if a >= 1 else np.concatenate(([np.nan], src[:b]))
                if kind == "atr":
                    level = np.where(np.isnan(prev), -np.inf, best_before - value * prev)
                else:  # "levels": the previous bar's stop level for this side, as given
                    level = np.where(np.isnan(prev), -np.inf, side * prev)
            if self.trail_from[r] > -math.inf:
                level = np.where(best_before >= self.trail_from[r], level, -np.inf)
            candidate = np.maximum(candidate, level)
        return np.maximum.accumulate(np.maximum(candidate, stop_l))

    def first_touch(self, side: int, a: int, b: int) -> tuple[int, float, float, bool] | None:
        """First bar in [a, b] where the position's stop or a target is touched: (bar, stop level and best
        price there in long space, whether trailing raised the stop); or None, and then the trailing state
        advances to ``b`` and touches are next checked from ``b + 1``."""
        lo, hi = (self.low, self.high) if side > 0 else (self.neg_high, self.neg_low)
        stop_l = side * self.stop if self.stop == self.stop else -math.inf
        levels = None
        hit = None
        if self.trails:
            levels = self._trailed_stops(side, a, b, stop_l)
            hit = lo[a : b + 1] <= levels
        elif stop_l > -math.inf:
            hit = lo[a : b + 1] <= stop_l
        tp_l = side * self.tp if self.tp == self.tp else math.inf
        target_l = min(tp_l, self.partials[0][0]) if self.partials else tp_l
        if target_l < math.inf:
            target_hit = hi[a : b + 1] >= target_l
            hit = target_hit if hit is None else (hit | target_hit)
        idx = np.flatnonzero(hit) if hit is not None else _NO_BARS
        if not len(idx):
            if levels is not None:
                self.best = max(self.best, float(hi[a : b + 1].max()))
                if levels[-1] > stop_l:
                    self.stop = side * float(levels[-1])
                    self.stop_kind = "trailing_stop"
            self.next_check = b + 1
            return None
        k = int(idx[0])
        if levels is None:
            return a + k, stop_l, self.best, False
        level = float(levels[k])
        return a + k, level, max(self.best, float(hi[a : a + k + 1].max())), level > stop_l
