"""The event loop: from one bar where something can happen to the next, never bar by bar.

Each turn of :meth:`Simulation.run` looks ahead to the next decision bar (the next opportunity, or the end
of the data) and asks, in order: does a working limit/stop entry fill before it
(:meth:`~Simulation.work_pending_entry`)?  Does the open position hit a stop, a target, an emergency or
ruin before it (:meth:`~Simulation.watch_position`)?  Is a TWAP slice due?  Only when nothing happens
before the decision bar does the loop mark equity up to its close and :meth:`~Simulation.decide` what
its opportunities do, then :meth:`~Simulation.send_orders` for the next open (or this close).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..workers import CLOSE, ENTRY_LIMIT, ENTRY_MARKET, HOLD, Context, Opportunities, Plan, ThreatWorker
from .broker import Broker, slipped, working_entry_price
from .equity import EquityCurve
from .outcome import (
    CANCELLED,
    CLOSED_ONLY,
    EXPIRED,
    PENDING,
    REJECTED,
    SKIPPED,
    TRADED,
    VETO_FIRST,
    VETO_NONE,
    SimOutput,
)
from .stops import ExitLevels
from .threats import ThreatBook

# watch_position's answers besides an emergency bar (>= 0) or -1 (nothing happened)
RESTART, END = -2, -3


def split_rules(rules: list[dict[str, Any]]) -> tuple[list[tuple], list[tuple], frozenset[str] | None]:
    """The ExecutionOperator's rules by kind: trailing stops, partial targets, emergency severities."""
    trails: list[tuple] = []
    partials: list[tuple] = []
    emergency: frozenset[str] | None = None
    for rule in rules:
        if "trail" in rule:
            trails.append(rule["trail"])
        if "partial" in rule:
            partials.append(rule["partial"])
        if "emergency" in rule:
            emergency = (emergency or frozenset()) | rule["emergency"]
    return trails, partials, emergency


class Simulation:
    """One run's simulation state: the broker, the exit levels, the equity curve, the threat book, and the
    opportunity cursor (``cursor``: the next opportunity to decide) with at most one working entry order
    (``pending`` = (opportunity, order type, level, first bar, last bar))."""

    def __init__(
        self,
        ctx: Context,
        opps: Opportunities,
        plan: Plan,
        threat_workers: list[ThreatWorker],
        veto: str,
        rules: list[dict[str, Any]],
        *,
        cash: float,
        commission: float,
        slippage: float,
        fill_at: str,
        ruin_checks: bool,
    ):
        data = ctx.data
        self.n = len(data)
        self.close = data.close
        self.opens, _, _, self.closes = data.lists
        self.at_close = fill_at == "close"
        self.veto = veto
        self.ruin_checks = ruin_checks
        self.close_range = (float(data.close.min()), float(data.close.max())) if ruin_checks else (0.0, 0.0)
        trails, partials, emergency = split_rules(rules)
        self.has_touch_rules = (
            bool(trails or partials)
            or bool(np.isfinite(plan.stop_dist).any())
            or bool(np.isfinite(plan.tp_dist).any())
        )
        self.threats = ThreatBook(ctx, threat_workers, emergency)
        self.market_emergencies = len(self.threats.emergency_onsets) > 0
        self.levels = ExitLevels(data, trails, partials, self.has_touch_rules)
        self.equity = EquityCurve(data.close, cash, self.threats)
        self.status = [PENDING] * len(opps)
        self.reasons: dict[int, str] = {}
        self.opp_threats: dict[int, list[int]] = {}
        self.broker = Broker(
            cash, commission, slippage, opps, plan, self.levels, self.threats, self.status, self.reasons
        )
        self.opp_bar = self.broker.opp_bar
        self.opp_dir = self.broker.opp_dir
        self.opp_conflicted = opps.pre_status.tolist()
        self.entry_type = plan.entry_type.tolist()
        self.entry_level = plan.entry_level.tolist()
        self.valid_bars = plan.valid_bars.tolist()
        self.on_opposite = plan.on_opposite.tolist()
        self.scale_in = plan.scale_in.tolist()
        self.cursor = 0
        self.pending: tuple[int, int, float, int, int] | None = None

    def mark(self, to_bar: int) -> int:
        """Mark equity up to the close of ``to_bar`` with the account as it is (see EquityCurve.mark)."""
        broker = self.broker
        return self.equity.mark(to_bar, broker.cash, broker.side * broker.units)

    def skip(self, j: int, why: str) -> None:
        self.status[j] = SKIPPED
        self.reasons[j] = why

    def run(self) -> SimOutput:
        """Simulate every bar; the result's equity may touch zero (see :func:`simulate` for ruin)."""
        broker, equity, n, m, opp_bar = self.broker, self.equity, self.n, len(self.status), self.opp_bar
        decide, send_orders = self.decide, self.send_orders
        # watched: something can happen to an open position between decisions (a stop, a target, ruin, an
        # emergency exit); if not, the bars up to the next decision are only marked
        emergencies = self.market_emergencies or not equity.lazy
        watched = self.has_touch_rules or self.ruin_checks or emergencies
        while True:
            cursor = self.cursor
            decision_bar = opp_bar[cursor] if cursor < m else n
            horizon = decision_bar if n > decision_bar else n - 1
            slice_bar = -1
            if broker.side and broker.twap_left > 0 and broker.twap_next <= horizon:
                slice_bar = broker.twap_next
                horizon = slice_bar - 1  # bars before the slice first (stops, targets, emergencies)
            if self.pending is not None and self.work_pending_entry(horizon):
                continue
            emergency_bar = -1
            if broker.side and watched:
                emergency_bar = self.watch_position(decision_bar, horizon)
                if emergency_bar == RESTART:
                    continue
                if emergency_bar == END:
                    break
            else:
                equity.mark(horizon, broker.cash, broker.side * broker.units)
            if slice_bar >= 0:  # the open of slice_bar: the next TWAP slice fills
                price = slipped(self.opens[slice_bar], broker.side, broker.slippage)
                broker.add(slice_bar, broker.opp, broker.twap_units, price, "entry_slice")
                broker.twap_left -= 1
                broker.twap_next += 1
                continue
            if n <= decision_bar:
                break
            if equity.marked_to <= decision_bar:
                self.mark(decision_bar)
            # positional calls in the loop: CPython 3.11 specializes only those (no *args, no keywords)
            exit_why, entry, add = decide(decision_bar, emergency_bar)
            if exit_why is not None or entry >= 0 or add >= 0:
                send_orders(decision_bar, exit_why, entry, add)
        return self.finish()

    def work_pending_entry(self, horizon: int) -> bool:
        """Fill the working limit/stop entry at the first bar up to ``horizon`` that touches its level, or
        expire it after its last bar.  True when that happened (the loop looks ahead again)."""
        j, order_type, level, first, last = self.pending  # type: ignore[misc]
        direction = self.opp_dir[j]
        lo, hi = first, min(last, horizon)
        if lo <= hi:
            if (order_type == ENTRY_LIMIT) == (direction > 0):  # buy limit / sell stop: the low reaches it
                touched = np.flatnonzero(self.broker.levels.low[lo : hi + 1] <= level)
            else:
                touched = np.flatnonzero(self.broker.levels.high[lo : hi + 1] >= level)
            if len(touched):
                bar = lo + int(touched[0])
                self.mark(bar - 1)
                self.pending = None
                price = working_entry_price(
                    order_type, direction, self.opens[bar], level, self.broker.slippage
                )
                self.broker.open_position(bar, j, price, True)  # intrabar
                return True
        if last < horizon:
            self.status[j] = EXPIRED
            self.pending = None
            return True
        return False

    def watch_position(self, decision_bar: int, horizon: int) -> int:
        """Bars up to ``horizon`` with a position open: mark them, and act on the first event among a stop
        or target touch, ruin (liquidation at the close) and an emergency onset (exit at the next open).
        Returns RESTART after a fill, END when an exit falls past the data, an emergency bar that is the
        decision bar itself (the decision phase exits), or -1."""
        broker, levels, equity = self.broker, self.levels, self.equity
        touch = None
        if self.has_touch_rules and levels.next_check <= horizon:
            touch = levels.first_touch(broker.side, levels.next_check, horizon)
        limit = touch[0] - 1 if touch else horizon
        ruin = (
            broker.first_ruin_bar(equity.marked_to, limit, self.close, self.close_range)
            if self.ruin_checks
            else -1
        )
        if ruin >= 0:
            limit = ruin
        onset = -1
        if self.market_emergencies:
            onset = self.threats.next_emergency_onset(equity.marked_to, limit + (ruin < 0))
        bar = equity.mark(onset if onset >= 0 else limit, broker.cash, broker.side * broker.units)
        if bar < 0:
            bar = onset
        if ruin >= 0 and bar < 0:  # bankrupt at the close of ruin: liquidate there
            equity.remark_from(ruin)
            broker.close(ruin, broker.units, self.closes[ruin], "bankruptcy")
            return RESTART
        if bar >= 0:
            if bar >= decision_bar:
                return bar
            fill_bar = bar if self.at_close else bar + 1
            if fill_bar >= self.n:
                return END
            if self.at_close:
                equity.remark_from(bar)
            price = self.closes[bar] if self.at_close else self.opens[fill_bar]
            broker.close(
                fill_bar, broker.units, slipped(price, -broker.side, broker.slippage), "emergency_exit"
            )
            return RESTART
        if touch:
            broker.fill_touch(*touch)
            return RESTART
        return -1

    def decide(self, bar: int, emergency_bar: int) -> tuple[str | None, int, int]:
        """What the opportunities of ``bar`` do, at its close: at most one acts.  Returns the exit reason for
        the open position (or None), the opportunity to enter (or -1) and the one to scale in (or -1)."""
        # names bound once: this runs at every decision bar, the hottest path of a sweep
        status, opp_bar, opp_dir, threats = self.status, self.opp_bar, self.opp_dir, self.threats
        side = self.broker.side
        vetting = bool(threats.workers)
        exit_why = "emergency_exit" if emergency_bar == bar and side else None
        entry = add = -1
        acted = 0  # the direction of the opportunity that acted
        m, cursor = len(status), self.cursor
        while cursor < m and opp_bar[cursor] == bar:
            j = cursor
            cursor += 1
            direction = opp_dir[j]
            if self.opp_conflicted[j]:
                self.skip(j, "CONFLICTING_OPPORTUNITY")
                continue
            if acted:
                self.skip(j, "DUPLICATE_SAME_BAR" if direction == acted else "CONFLICTING_OPPORTUNITY")
                continue
            if vetting:
                found = threats.vet(bar, self.veto == VETO_FIRST)
                if found:
                    if exit_why is None and side and threats.calls_emergency(found, bar):
                        exit_why = "emergency_exit"
                    if self.veto != VETO_NONE:
                        status[j] = REJECTED
                        self.opp_threats[j] = found
                        continue
            if not side:
                acted = direction
                if self.pending is not None:
                    status[self.pending[0]] = CANCELLED
                    self.pending = None
                entry = j
            elif exit_why == "emergency_exit":
                self.skip(j, "EMERGENCY_EXIT")
            elif direction == side:
                if self.scale_in[j]:  # scale in: add to the open position (a market order)
                    acted = direction
                    add = j
                else:
                    self.skip(j, "POSITION_OPEN")
            else:
                on_opposite = self.on_opposite[self.broker.opp]
                if on_opposite == HOLD:
                    self.skip(j, "POSITION_OPEN")
                else:  # CLOSE or REVERSE: the opposite opportunity exits the position
                    exit_why = "opposite_signal"
                    acted = direction
                    if on_opposite == CLOSE:
                        status[j] = CLOSED_ONLY
                    else:
                        entry = j
        self.cursor = cursor
        return exit_why, entry, add

    def send_orders(self, bar: int, exit_why: str | None, entry: int, add: int) -> None:
        """Carry out the decision of ``bar`` (an exit, an entry or a scale-in): market orders fill at the
        next open (or at this close, which is then marked again); a limit/stop entry starts working from
        the next bar."""
        broker = self.broker
        fill_bar = bar if self.at_close else bar + 1
        if fill_bar >= self.n:
            for j in (entry, add):
                if j >= 0:
                    broker.unfilled(j, "END_OF_DATA")
            return
        market_price = self.closes[bar] if self.at_close else self.opens[fill_bar]
        if self.at_close:
            self.equity.remark_from(bar)  # the close of bar is marked again after these fills
        if add >= 0:
            price = slipped(market_price, broker.side, broker.slippage)
            u = broker.size(add, price)
            if u > 0:
                self.status[add] = TRADED
                broker.add(fill_bar, add, u, price, "scale_in")
            return
        if exit_why is not None and broker.side:
            broker.close(
                fill_bar, broker.units, slipped(market_price, -broker.side, broker.slippage), exit_why
            )
        if entry >= 0:
            order_type = self.entry_type[entry]
            if order_type == ENTRY_MARKET:
                price = slipped(market_price, self.opp_dir[entry], broker.slippage)
                broker.open_position(fill_bar, entry, price, False)  # at the open
                if self.at_close:
                    self.levels.next_check = bar + 1
            else:
                self.pending = (
                    entry,
                    order_type,
                    self.entry_level[entry],
                    bar + 1,
                    bar + self.valid_bars[entry],
                )

    def finish(self) -> SimOutput:
        """After the last bar: mark it, leave a working entry unfilled, close the position at the close."""
        broker, n = self.broker, self.n
        self.mark(n - 1)
        equity = self.equity.finish()
        if self.pending is not None:
            broker.unfilled(self.pending[0], "END_OF_DATA")
        if broker.side:
            broker.close(
                n - 1, broker.units, slipped(self.closes[n - 1], -broker.side, broker.slippage), "end_of_data"
            )
            equity[n] = broker.cash
        return SimOutput(
            eqx=equity,
            trades=broker.trades,
            fills=broker.fills,
            intervals=broker.intervals,
            opp_status=np.asarray(self.status, dtype=np.int8),
            opp_reason=self.reasons,
            opp_threats=self.opp_threats,
            threats=self.threats.threats,
        )
