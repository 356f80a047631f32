"""What a simulation hands back: equity curve, trades, fills, and what became of every opportunity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# What became of an opportunity (``SimOutput.opp_status``; ``STATUS_NAMES`` spells them for results).
PENDING, TRADED, REJECTED, SKIPPED, EXPIRED, CANCELLED, UNFILLED, CLOSED_ONLY = range(8)
STATUS_NAMES = (
    "pending",
    "traded",
    "rejected",
    "skipped",
    "expired",
    "cancelled",
    "unfilled",
    "closed_position",
)

# How the ThreatOperator vets an opportunity: reject on every threat found, on the first, or never.
VETO_ALL, VETO_FIRST, VETO_NONE = "COLLECT_ALL", "CHAIN_THROUGH", "NONE"

#: A trade: (opportunity, side, entry bar, entry price, exit bar, exit price, units, pnl, return %, reason).
Trade = tuple[int, int, int, float, int, float, float, float, float, str]
#: A fill: (bar, opportunity, +1 buy / -1 sell, units, price, commission, reason).
Fill = tuple[int, int, int, float, float, float, str]
#: A threat: (bar, threat worker index, creation sequence).
Threat = tuple[int, int, int]


@dataclass
class SimOutput:
    """The simulation's record of one run (``backtest.build_result`` turns it into a BacktestResult)."""

    eqx: np.ndarray  #: eqx[0] = starting cash, eqx[t + 1] = equity at the close of bar t
    trades: list[Trade]  #: one per exit (a partial exit is a trade of its own)
    fills: list[Fill]
    intervals: list[tuple[int, int]]  #: (entry bar, final exit bar) per position
    opp_status: np.ndarray  #: status code per opportunity (see STATUS_NAMES)
    opp_reason: dict[int, str]  #: skip / unfilled / size reasons
    opp_threats: dict[int, list[int]]  #: rejected opportunity -> threat indexes (into ``threats``)
    threats: list[Threat]
    extra: dict[str, Any] = field(default_factory=dict)
