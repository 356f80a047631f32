"""The broker: cash, the open position, and every fill -- fill prices, sizing, entries, adds and exits.

Fill prices (the one place they are computed):

* a **market** order (entry, exit, scale-in, TWAP slice, emergency exit) fills at the bar's open (or
  close with ``fill_at: close``) moved against the trader by the slippage: :func:`slipped`;
* a working **limit** entry fills at its level, or at the open when the bar gaps through it (better),
  without slippage; a working **stop** entry at its level or the gapped open (worse), with slippage:
  :func:`working_entry_price`;
* stops, take-profits and partial targets fill at their level or the gapped open, only the stop with
  slippage: :meth:`Broker.fill_touch`;
* every fill pays ``commission x |units| x price`` (:meth:`Broker.fill`).
"""

from __future__ import annotations

import math

import numpy as np

from ..workers import ENTRY_LIMIT, SIZE_AMOUNT, SIZE_FRACTION, Opportunities, Plan
from .outcome import TRADED, UNFILLED, Fill, Trade
from .stops import ExitLevels
from .threats import ThreatBook


def slipped(price: float, direction: int, slippage: float) -> float:
    """A market fill: a buy (``direction`` +1) pays ``price x (1 + slippage)``, a sell (-1) gets
    ``price x (1 - slippage)``."""
    return price * (1.0 + direction * slippage)


def working_entry_price(
    order_type: int, direction: int, open_price: float, level: float, slippage: float
) -> float:
    """The fill of a working limit/stop entry touched in a bar that opened at ``open_price``."""
    if order_type == ENTRY_LIMIT:
        return min(open_price, level) if direction > 0 else max(open_price, level)
    gapped = max(open_price, level) if direction > 0 else min(open_price, level)
    return slipped(gapped, direction, slippage)


class Broker:
    """The account of one run: cash, one open position at a time, and the record of fills and trades.

    The position: ``side`` (+1 long, -1 short, 0 flat), ``units`` (> 0 while open), ``entry_price`` (the
    size-weighted average of its fills), ``entry_bar`` and ``opp`` (the opportunity that opened it); its
    stop, target and partial levels live in ``levels`` (:class:`ExitLevels`).  A TWAP entry leaves
    ``twap_left`` slices of ``twap_units`` to fill at the opens of ``twap_next``, ``twap_next + 1``, ...
    """

    def __init__(
        self,
        cash: float,
        commission: float,
        slippage: float,
        opps: Opportunities,
        plan: Plan,
        levels: ExitLevels,
        threats: ThreatBook,
        status: list[int],
        reasons: dict[int, str],
    ):
        self.cash = cash
        self.commission = commission
        self.slippage = slippage
        self.levels = levels
        self.threats = threats
        self.status = status
        self.reasons = reasons
        self.side = 0
        self.units = 0.0
        self.entry_price = 0.0
        self.entry_bar = -1
        self.opp = -1
        self.twap_left = 0
        self.twap_units = 0.0
        self.twap_next = -1
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.intervals: list[tuple[int, int]] = []
        # the plan per opportunity, as lists (scalar access in the loop)
        self.opp_bar = opps.bars.tolist()
        self.opp_dir = opps.dirs.tolist()
        self.size_kind = plan.size_kind.tolist()
        self.size_value = plan.size_value.tolist()
        self.size_cap = plan.size_cap.tolist()
        self.size_risk_dist = plan.size_risk_dist.tolist()
        self.integer_units = plan.integer_units.tolist()
        self.slices = plan.slices.tolist()
        self.threat_scale = plan.threat_scale.tolist()
        self.threat_window = plan.threat_window.tolist()
        self.threat_min_sev = plan.threat_min_sev.tolist()
        self.stop_dist = plan.stop_dist.tolist()
        self.tp_dist = plan.tp_dist.tolist()

    @property
    def position(self) -> float:
        """Signed units held (0 when flat)."""
        return self.side * self.units

    def fill(self, bar: int, delta: float, price: float, why: str, opp: int) -> None:
        """Trade ``delta`` units (> 0 buy, < 0 sell) at ``price``; the commission comes out of cash."""
        size = abs(delta)
        fee = size * price * self.commission
        self.cash -= delta * price + fee
        self.fills.append((bar, opp, 1 if delta > 0 else -1, size, price, fee, why))

    def unfilled(self, j: int, why: str) -> None:
        self.status[j] = UNFILLED
        self.reasons[j] = why

    def size(self, j: int, price: float) -> float:
        """Units opportunity ``j`` buys or sells at ``price`` (> 0) by its plan's sizing, or 0 with the
        opportunity marked UNFILLED (no equity left, or a size that rounds to nothing)."""
        if self.cash <= 0:
            self.unfilled(j, "INSUFFICIENT_EQUITY")
            return 0.0
        cash = self.cash
        per_unit = price * (1.0 + self.commission)
        kind = self.size_kind[j]
        whole = self.integer_units[j]
        if kind == SIZE_FRACTION:
            notional = self.size_value[j] * cash
            u = (notional // per_unit) if whole else notional / per_unit
        elif kind == SIZE_AMOUNT:
            u = min(self.size_value[j], cash) / per_unit
        else:  # SIZE_RISK: the fraction of equity risked over the sizer's stop distance, capped
            dist = self.size_risk_dist[j]
            u = self.size_value[j] * cash / dist if dist > 0 else 0.0
            cap = self.size_cap[j] * cash / per_unit
            if u > cap:
                u = cap
        scale = self.threat_scale[j]
        if scale != 1.0 and self.threats.recent(
            self.opp_bar[j], self.threat_window[j], self.threat_min_sev[j]
        ):
            u *= scale
            self.reasons[j] = "SIZE_REDUCED_ON_THREAT"
        if whole and kind != SIZE_FRACTION:
            u = float(math.floor(u))
        if not u > 0 or not math.isfinite(u):
            self.unfilled(j, "INSUFFICIENT_EQUITY")
            return 0.0
        return float(u)

    def open_position(self, bar: int, j: int, price: float, intrabar: bool) -> None:
        """Enter opportunity ``j`` at ``price`` (slippage included) and arm its stop and targets.  An entry
        inside the bar (a working limit/stop order) can be stopped out in that same bar."""
        direction = self.opp_dir[j]
        u = self.size(j, price)
        if u <= 0:
            return
        k = self.slices[j]
        if k > 1:  # TWAP: this is the first of k equal slices; the others fill at the next bars' opens
            u = u / k
            if self.integer_units[j]:
                u = float(math.floor(u))
            if not u > 0:
                self.unfilled(j, "INSUFFICIENT_EQUITY")
                return
            self.twap_left, self.twap_units, self.twap_next = k - 1, u, bar + 1
        self.status[j] = TRADED
        self.side = direction
        self.units = float(u)
        self.entry_price = price
        self.entry_bar = bar
        self.opp = j
        self.fill(bar, direction * self.units, price, "entry", j)
        levels = self.levels
        if not levels.in_use:
            return
        levels.arm(direction, price, self.stop_dist[j], self.tp_dist[j])
        levels.next_check = bar + 1 if intrabar else bar
        if (
            intrabar
            and levels.stop == levels.stop
            and levels.low_in_long_space(bar, direction) <= direction * levels.stop
        ):
            self.close(bar, self.units, slipped(levels.stop, -direction, self.slippage), "stop_loss")

    def add(self, bar: int, j: int, u: float, price: float, why: str) -> None:
        """Add ``u`` units to the open position (scale-in or a TWAP slice): the entry price becomes the
        size-weighted average; stops and targets keep the levels set at the first fill."""
        self.fill(bar, self.side * u, price, why, j)
        self.entry_price = (self.units * self.entry_price + u * price) / (self.units + u)
        self.units += u

    def close(self, bar: int, u: float, price: float, why: str) -> None:
        """Exit ``u`` units of the open position at ``price`` (slippage included) and record the trade.
        Closing the last units ends the position (and cancels TWAP slices not filled yet); a loss beyond
        the account leaves 0, never negative cash."""
        side, entry_price, comm = self.side, self.entry_price, self.commission
        self.fill(bar, -side * u, price, why, self.opp)
        pnl = side * u * (price - entry_price) - u * entry_price * comm - u * price * comm
        self.trades.append(
            (
                self.opp,
                side,
                self.entry_bar,
                entry_price,
                bar,
                price,
                u,
                pnl,
                pnl / (u * entry_price) * 100.0,
                why,
            )
        )
        units = self.units = self.units - u
        if units <= 1e-12 * (u if u > 1.0 else 1.0):
            self.units = 0.0
            if self.cash < 0.0:  # bankruptcy: the account cannot owe more than it had
                self.cash = 0.0
            self.intervals.append((self.entry_bar, bar))
            self.side = 0
            self.opp = -1
            self.twap_left = 0

    def fill_touch(self, bar: int, stop_l: float, best: float, trailed: bool) -> None:
        """Fill what ``bar`` touched (:meth:`ExitLevels.first_touch`), conservatively: the stop first (at
        its level, or the open when the bar gapped through it, with slippage), else the take-profit, else
        the nearest partial target (at the level or the better open, no slippage; a partial may move the
        stop to breakeven)."""
        levels, side = self.levels, self.side
        low, high, open_ = levels.bar_in_long_space(bar, side)
        if levels.trails:
            levels.best = best
            if trailed:
                levels.stop = side * stop_l
                levels.stop_kind = "trailing_stop"
        tp_l = side * levels.tp if levels.tp == levels.tp else math.inf
        if low <= stop_l:
            price = side * min(open_, stop_l)
            self.close(bar, self.units, price * (1.0 - side * self.slippage), levels.stop_kind)
        elif high >= tp_l:
            self.close(bar, self.units, side * max(open_, tp_l), "take_profit")
        else:
            level, fraction, breakeven = levels.partials.pop(0)
            u = self.units * fraction
            if self.integer_units[self.opp]:
                u = float(math.floor(u))
            if u > 0:
                self.close(bar, u, side * max(open_, level), "partial_take_profit")
            entry = self.entry_price
            if breakeven and self.side and (levels.stop != levels.stop or side * entry > side * levels.stop):
                levels.stop = entry
                levels.stop_kind = "breakeven_stop"
        levels.next_check = bar + 1

    def first_ruin_bar(self, a: int, b: int, close: np.ndarray, close_range: tuple[float, float]) -> int:
        """First bar in [a, b] whose close marks the open position's equity at or below zero, or -1.
        A long bought with the account's own cash never gets there; the closes are scanned only when
        the bankruptcy price is within their range (``close_range`` = min, max)."""
        side, cash, units = self.side, self.cash, self.units
        if a > b or (side > 0 and cash >= 0):
            return -1
        level = (-cash / units if side > 0 else cash / units) * (1.0 - side * 1e-12)  # equity 0, a hair early
        if (side > 0 and level < close_range[0]) or (side < 0 and level > close_range[1]):
            return -1
        hit = np.flatnonzero(cash + side * units * close[a : b + 1] <= 0.0)
        return a + int(hit[0]) if len(hit) else -1
