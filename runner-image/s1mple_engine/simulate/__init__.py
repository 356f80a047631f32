"""The trading simulation: a loop over the bars where something can happen, never over every bar.

Visited bars: opportunity (decision) bars, fill bars, and the first bar a stop / take-profit / partial
target / working limit or stop entry is touched, found with vectorized scans (``np.flatnonzero(low[a:b]
<= stop)``); equity is marked to market per segment with one vectorized assignment.

Order of events inside bar t (what can happen, in this order):

0. **open** – market orders decided at the close of t-1 fill at ``open[t]`` (exits first, then entries);
1. **intrabar** – working limit/stop entries fill; stop-loss, take-profit and partial targets of the open
   position are touched.  Conservative rules: a stop and a target touched in the same bar -> the stop
   was hit first; a gap through a level fills at the open (worse for stops, better for limits); a
   position entered intrabar (limit/stop entry) can be stopped in its entry bar but not take profit
   there; after a partial exit, a moved stop applies from the next bar;
2. **close** – equity is marked at ``close[t]`` (``on_ledger_update`` threats check it); threats detected;
   opportunities of bar t are vetted and planned (at most one acts per bar); orders go out for the next
   open (or fill at this close with ``fill_at: close``).

Prices: buys pay ``price x (1 + slippage)``, sells get ``price x (1 - slippage)`` for market and stop
fills; limit and take-profit fills are at their level (or the better open) without slippage.  Every fill
pays ``commission x |units| x price``.  A position still open after the last bar is closed at the last
close (market, ``end_of_data``); that exit only changes the final equity point.

Bankruptcy (like backtesting.py's broker): the equity can never go below zero.  When the close-marked
equity of bar t is <= 0 with a position open, the position is liquidated at ``close[t]`` (fill reason
``bankruptcy``) and the account closes with equity 0; a loss beyond the account (a gap through a stop) is
not carried either: an exit that leaves no position and negative cash leaves 0.  With no equity left,
nothing more trades (later entries are unfilled with ``INSUFFICIENT_EQUITY``).

Adding to a position (one position at a time, its entry price the size-weighted average of its fills;
stop, target and partial levels stay where the first fill put them):

* **TWAP slices** (plan ``slices`` = k > 1): the entry's units are split into k equal slices; the first
  fills like a market entry, slice i at the open of the i-th bar after it (fill reason ``entry_slice``).
  A position closed before all slices filled cancels the rest.
* **scale-in** (plan ``scale_in``): a same-direction opportunity while a position is open adds a market
  order (fill reason ``scale_in``) sized by its own plan, instead of being skipped (``POSITION_OPEN``).

Threat-aware sizing (plan ``threat_scale`` != 1): when a threat of severity >= ``threat_min_sev`` was
detected in the ``threat_window`` bars up to the opportunity's bar (inclusive), its units are multiplied
by ``threat_scale`` (the opportunity's reason says ``SIZE_REDUCED_ON_THREAT``).

Where things are: :mod:`.loop` (the event loop and the decisions, :class:`Simulation`), :mod:`.broker`
(cash, position, sizing and every fill price), :mod:`.stops` (stop, take-profit, partial and trailing
levels and their touches), :mod:`.equity` (mark-to-market), :mod:`.threats` (the threat book),
:mod:`.outcome` (what a run returns).
"""

from __future__ import annotations

from typing import Any

from ..workers import Context, Opportunities, Plan, ThreatWorker
from .loop import Simulation
from .outcome import REJECTED, SKIPPED, STATUS_NAMES, SimOutput

__all__ = ["REJECTED", "SKIPPED", "STATUS_NAMES", "SimOutput", "Simulation", "simulate"]


def simulate(
    ctx: Context,
    opps: Opportunities,
    plan: Plan,
    threat_workers: list[ThreatWorker],
    veto: str,
    exec_rules: list[dict[str, Any]],
    *,
    cash: float,
    commission: float,
    slippage: float,
    fill_at: str,
) -> SimOutput:
    """Simulate one run: the opportunities, planned by ``plan``, vetted by ``threat_workers`` (``veto``: the
    ThreatOperator's aggregation), managed by the ExecutionOperator's ``exec_rules``, on ``ctx``'s bars.

    Bankruptcy is rare, so the loop first runs without looking for it (no scan per segment); only when the
    equity curve touched zero does it run again checking every segment for ruin."""
    out = None
    for ruin_checks in (False, True):
        out = Simulation(
            ctx,
            opps,
            plan,
            threat_workers,
            veto,
            exec_rules,
            cash=cash,
            commission=commission,
            slippage=slippage,
            fill_at=fill_at,
            ruin_checks=ruin_checks,
        ).run()
        if out.eqx.min() > 0.0:
            break
    assert out is not None
    return out
