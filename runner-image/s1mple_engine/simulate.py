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
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .workers import (
    CLOSE,
    ENTRY_LIMIT,
    ENTRY_MARKET,
    HOLD,
    SEVERITIES,
    SIZE_AMOUNT,
    SIZE_FRACTION,
    Context,
    Opportunities,
    PlanDraft,
    ThreatWorker,
)

# opportunity status codes
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

# threat vetting modes (ThreatOperator aggregation)
VETO_ALL, VETO_FIRST, VETO_NONE = "COLLECT_ALL", "CHAIN_THROUGH", "NONE"


@dataclass
class SimOutput:
    eqx: np.ndarray  # eqx[0] = cash, eqx[t+1] = equity at the close of bar t
    trades: list[
        tuple
    ]  # (opp, side, entry_bar, entry_price, exit_bar, exit_price, units, pnl, ret_pct, reason)
    fills: list[tuple]  # (bar, opp, +1 buy/-1 sell, units, price, commission, reason)
    intervals: list[tuple[int, int]]  # (entry bar, final exit bar) per position
    opp_status: np.ndarray  # status code per opportunity
    opp_reason: dict[int, str]  # skip/unfill reasons
    opp_threats: dict[int, list[int]]  # rejected opportunity -> threat indexes (into threats)
    threats: list[tuple[int, int, int]]  # (bar, threat worker index, creation sequence)
    extra: dict[str, Any] = field(default_factory=dict)


def simulate(
    ctx: Context,
    opps: Opportunities,
    plan: PlanDraft,
    threat_workers: list[ThreatWorker],
    veto: str,
    exec_rules: list[dict[str, Any]],
    *,
    cash: float,
    commission: float,
    slippage: float,
    fill_at: str,
    ruin_checks: bool = False,
) -> SimOutput:
    """Run the loop.  Bankruptcy is rare, so the loop first runs without looking for it (no scan per
    segment); only when the equity curve touched zero does it run again with ``ruin_checks``."""
    data = ctx.data
    n = len(data)
    L, Hh, C = data.low, data.high, data.close
    o_, h_, l_, c_ = data.lists
    at_close = fill_at == "close"
    comm = commission
    slip = slippage
    m = len(opps)
    obars = opps.bars.tolist()
    odirs = opps.dirs.tolist()
    opre = opps.pre_status.tolist()
    e_type = plan.entry_type.tolist()
    e_level = plan.entry_level.tolist()
    e_valid = plan.valid_bars.tolist()
    p_stop = plan.stop_dist.tolist()
    p_tp = plan.tp_dist.tolist()
    p_opp = plan.on_opposite.tolist()
    s_kind = plan.size_kind.tolist()
    s_val = plan.size_value.tolist()
    s_cap = plan.size_cap.tolist()
    s_dist = plan.size_risk_dist.tolist()
    s_int = plan.integer_units.tolist()
    p_slices = plan.slices.tolist()
    p_scale_in = plan.scale_in.tolist()
    p_tscale = plan.threat_scale.tolist()
    p_twin = plan.threat_window.tolist()
    p_tsev = plan.threat_min_sev.tolist()

    # ---------------------------------------------------------------- execution rules
    # trail rules: (kind, value, array(s)[, activate]) - kind "percent" | "atr" | "levels" (value unused,
    # arrays = (long stop levels, short stop levels) per bar, used from the previous bar); activate =
    # None or (target_r, fallback_fraction): trail only once the best price has reached that first target
    trails: list[tuple] = []
    partial_rules: list[tuple[float, float, bool, float]] = []
    emergency: frozenset[str] | None = None
    for rule in exec_rules:
        if "trail" in rule:
            trails.append(rule["trail"])
        if "partial" in rule:
            partial_rules.append(rule["partial"])
        if "emergency" in rule:
            emergency = (emergency or frozenset()) | rule["emergency"]
    has_touch_rules = (
        bool(trails or partial_rules)
        or bool(np.isfinite(plan.stop_dist).any())
        or bool(np.isfinite(plan.tp_dist).any())
    )

    # ---------------------------------------------------------------- threats
    threats: list[tuple[int, int, int]] = []
    seq = [0]

    def new_threat(bar: int, widx: int) -> int:
        threats.append((bar, widx, seq[0]))
        seq[0] += 1
        return len(threats) - 1

    market_flags: list[list[bool] | None] = []
    episode_tid: list[dict[int, int]] = []
    ledger_idx: list[int] = []
    em_onsets: list[int] = []  # bars where an emergency-relevant market threat starts
    for widx, w in enumerate(threat_workers):
        if w.kind == "market":
            flags = ctx.memo(("threat_flags",) + w.key, lambda w=w: w.flags(ctx))
            market_flags.append(flags.tolist())
            tids: dict[int, int] = {}
            if "on_context_ready" in w.active_triggers:
                start = flags.copy()
                start[1:] &= ~flags[:-1]
                onsets = np.flatnonzero(start)
                ep = np.maximum.accumulate(np.where(start, np.arange(n), -1))
                for b in onsets.tolist():
                    tids[b] = new_threat(b, widx)
                episode_tid.append({"ep": ep.tolist(), "tids": tids})  # type: ignore[dict-item]
                if emergency and w.severity in emergency:
                    em_onsets.extend(onsets.tolist())
            else:
                episode_tid.append({})
        else:
            market_flags.append(None)
            episode_tid.append({})
            ledger_idx.append(widx)
    # threats created so far are the market onsets (all bars); later ones (ledger, vetting) are appended
    # in non-decreasing bar order as the loop advances
    n_static = len(threats)
    sev_rank = [SEVERITIES.index(w.severity) if w.severity in SEVERITIES else 0 for w in threat_workers]
    static_sorted = sorted(threats[:n_static])
    static_bars = [t[0] for t in static_sorted]
    static_sev = [sev_rank[t[1]] for t in static_sorted]

    def recent_threat(bar: int, window: int, min_sev: int) -> bool:
        """A threat of severity >= min_sev detected in bars [bar - window, bar] (known at bar's close)."""
        lo = bar - window
        for k in range(bisect_left(static_bars, lo), bisect_right(static_bars, bar)):
            if static_sev[k] >= min_sev:
                return True
        for t in range(len(threats) - 1, n_static - 1, -1):
            tb, tw, _ = threats[t]
            if tb < lo:
                break
            if tb <= bar and sev_rank[tw] >= min_sev:
                return True
        return False

    em_onsets = sorted(set(em_onsets))
    em_onsets_arr = np.asarray(em_onsets, dtype=np.int64)
    ledger_last_day = {w: -(10**9) for w in ledger_idx}
    ledger_last_tid = {w: -1 for w in ledger_idx}
    ledger_em = [w for w in ledger_idx if emergency and threat_workers[w].severity in emergency]
    day = data.day if ledger_idx else None
    day_l = day.tolist() if day is not None else None

    # ---------------------------------------------------------------- state
    eqx = np.empty(n + 1)
    eqx[0] = cash0 = cash
    tc = 0  # first bar whose closing equity is not committed yet
    side = 0
    units = 0.0
    entry_price = 0.0
    entry_bar = -1
    pos_opp = -1
    stop = math.nan
    stop_kind = "stop_loss"  # exit reason if the stop is hit: stop_loss | breakeven_stop | trailing_stop
    tp = math.nan
    stop_dist = math.nan
    best_l = 0.0  # best price since entry, in "long space" (side * price)
    parts: list[tuple[float, float, bool]] = []  # remaining partial targets (level_l, fraction, breakeven)
    trail_act: list[float] = []  # per trail rule: activation level in long space (-inf: always active)
    t_touch = 0
    twap_left = 0  # TWAP slices still to fill (at the opens of twap_next, twap_next + 1, ...)
    twap_units = 0.0
    twap_next = -1
    pending: tuple[int, int, float, int, int] | None = None  # (opp, type, level, first bar, last bar)
    trades: list[tuple] = []
    fills: list[tuple] = []
    intervals: list[tuple[int, int]] = []
    status = [PENDING] * m
    reason: dict[int, str] = {}
    opp_threats: dict[int, list[int]] = {}
    NH, NL = -Hh, -L  # short positions are scanned in negated ("long") space
    c_min, c_max = (float(C.min()), float(C.max())) if ruin_checks else (0.0, 0.0)

    # Equity marking.  Without ledger threats it is lazy: commit() records the (cash, position) step that
    # holds from bar a on, and one np.repeat builds the whole curve at the end.  Ledger threats need the
    # equity as it is committed, so with them commit() writes the segment right away.
    lazy = not ledger_idx
    seg_start: list[int] = []
    seg_cash: list[float] = []
    seg_pos: list[float] = []

    def commit(to_bar: int) -> int:
        """Mark equity for bars [tc, to_bar]; ledger threats; returns the first emergency onset bar or -1."""
        nonlocal tc
        a = tc
        if to_bar < a:
            return -1
        if lazy:
            pos = side * units
            while seg_start and seg_start[-1] >= a:  # re-marked bars (fills at a close) replace old steps
                seg_start.pop()
                seg_cash.pop()
                seg_pos.pop()
            if not seg_start or seg_cash[-1] != cash or seg_pos[-1] != pos:
                seg_start.append(a)
                seg_cash.append(cash)
                seg_pos.append(pos)
            tc = to_bar + 1
            return -1
        if units:
            eqx[a + 1 : to_bar + 2] = cash + side * units * C[a : to_bar + 1]
        else:
            eqx[a + 1 : to_bar + 2] = cash
        tc = to_bar + 1
        if ledger_idx and (units or eqx[a] != cash):
            found = [
                (w, threat_workers[w].ledger_scan(ctx, eqx, a, to_bar, ledger_last_day[w]).tolist())
                for w in ledger_idx
            ]
            first_em = -1
            if units:
                for w, onsets in found:
                    if onsets and w in ledger_em and (first_em < 0 or onsets[0] < first_em):
                        first_em = onsets[0]
            for w, onsets in found:
                for b in onsets:
                    if 0 <= first_em < b:
                        break
                    ledger_last_day[w] = day_l[b]
                    ledger_last_tid[w] = new_threat(b, w)
            if first_em >= 0:
                tc = first_em + 1  # later bars are re-marked after the emergency exit
                return first_em
        return -1

    def do_fill(bar: int, delta: float, price: float, why: str, opp: int) -> None:
        nonlocal cash
        fee = abs(delta) * price * comm
        cash -= delta * price + fee
        fills.append((bar, opp, 1 if delta > 0 else -1, abs(delta), price, fee, why))

    def exit_units(bar: int, u: float, raw_price: float, why: str) -> None:
        nonlocal units, side, pos_opp, twap_left, cash
        do_fill(bar, -side * u, raw_price, why, pos_opp)
        pnl = side * u * (raw_price - entry_price) - u * entry_price * comm - u * raw_price * comm
        trades.append(
            (
                pos_opp,
                side,
                entry_bar,
                entry_price,
                bar,
                raw_price,
                u,
                pnl,
                pnl / (u * entry_price) * 100.0,
                why,
            )
        )
        units -= u
        if units <= 1e-12 * max(1.0, u):
            units = 0.0
            if cash < 0.0:  # bankruptcy: the account cannot owe more than it had
                cash = 0.0
            intervals.append((entry_bar, bar))
            side = 0
            pos_opp = -1
            twap_left = 0  # a closed position cancels the TWAP slices not filled yet

    def ruin_bar(a: int, b: int) -> int:
        """First bar in [a, b] whose close marks the open position's equity at or below zero, or -1.
        A long bought with the account's own cash never gets there; the closes are scanned only when
        the bankruptcy price is within their range."""
        if a > b or (side > 0 and cash >= 0):
            return -1
        level = (-cash / units if side > 0 else cash / units) * (1.0 - side * 1e-12)  # equity 0, a hair early
        if (side > 0 and level < c_min) or (side < 0 and level > c_max):
            return -1
        hit = np.flatnonzero(cash + side * units * C[a : b + 1] <= 0.0)
        return a + int(hit[0]) if len(hit) else -1

    def size_units(j: int, raw_price: float) -> float:
        """Units for opportunity j at ``raw_price`` (> 0), or 0 with the opportunity marked UNFILLED."""
        if cash <= 0:
            status[j] = UNFILLED
            reason[j] = "INSUFFICIENT_EQUITY"
            return 0.0
        per_unit = raw_price * (1.0 + comm)
        kind = s_kind[j]
        if kind == SIZE_FRACTION:
            notional = s_val[j] * cash
            u = (notional // per_unit) if s_int[j] else notional / per_unit
        elif kind == SIZE_AMOUNT:
            notional = min(s_val[j], cash)
            u = notional / per_unit
        else:
            dist = s_dist[j]
            u = s_val[j] * cash / dist if dist > 0 else 0.0
            cap = s_cap[j] * cash / per_unit
            if u > cap:
                u = cap
        if p_tscale[j] != 1.0 and recent_threat(obars[j], p_twin[j], p_tsev[j]):
            u *= p_tscale[j]
            reason[j] = "SIZE_REDUCED_ON_THREAT"
        if s_int[j] and kind != SIZE_FRACTION:
            u = float(math.floor(u))
        if not u > 0 or not math.isfinite(u):
            status[j] = UNFILLED
            reason[j] = "INSUFFICIENT_EQUITY"
            return 0.0
        return float(u)

    def add_units(bar: int, j: int, u: float, raw_price: float, why: str) -> None:
        """Add ``u`` units to the open position (scale-in or a TWAP slice): the entry price becomes the
        size-weighted average; stops and targets keep the levels set at the first fill."""
        nonlocal units, entry_price
        do_fill(bar, side * u, raw_price, why, j)
        entry_price = (units * entry_price + u * raw_price) / (units + u)
        units += u

    def open_position(bar: int, j: int, raw_price: float, intrabar: bool) -> None:
        nonlocal \
            side, \
            units, \
            entry_price, \
            entry_bar, \
            pos_opp, \
            stop, \
            stop_kind, \
            tp, \
            stop_dist, \
            best_l, \
            parts, \
            trail_act, \
            twap_left, \
            twap_units, \
            twap_next, \
            t_touch
        d = odirs[j]
        u = size_units(j, raw_price)
        if u <= 0:
            return
        k = p_slices[j]
        if k > 1:  # TWAP: this is the first of k equal slices; the others fill at the next bars' opens
            u = u / k
            if s_int[j]:
                u = float(math.floor(u))
            if not u > 0:
                status[j] = UNFILLED
                reason[j] = "INSUFFICIENT_EQUITY"
                return
            twap_left, twap_units, twap_next = k - 1, u, bar + 1
        status[j] = TRADED
        side = d
        units = float(u)
        entry_price = raw_price
        entry_bar = bar
        pos_opp = j
        do_fill(bar, d * units, raw_price, "entry", j)
        stop_dist = p_stop[j]
        stop = raw_price - d * stop_dist if stop_dist == stop_dist else math.nan
        stop_kind = "stop_loss"
        tpd = p_tp[j]
        tp = raw_price + d * tpd if tpd == tpd else math.nan
        best_l = d * raw_price
        parts = []
        for target_r, frac, be, fallback in partial_rules:
            dist = target_r * stop_dist if stop_dist == stop_dist and stop_dist > 0 else fallback * raw_price
            parts.append((d * raw_price + dist, frac, be))
        parts.sort()
        trail_act = []
        for rule in trails:
            act = rule[3] if len(rule) > 3 else None
            if act is None:
                trail_act.append(-math.inf)
            else:
                target_r, fallback = act
                has_stop = stop_dist == stop_dist and stop_dist > 0
                dist = target_r * stop_dist if has_stop else fallback * raw_price
                trail_act.append(d * raw_price + dist)
        t_touch = bar + 1 if intrabar else bar
        if intrabar and stop == stop:
            # conservative: an intrabar entry can be stopped out in its own bar
            lo_l = l_[bar] if d > 0 else -h_[bar]
            if lo_l <= d * stop:
                exit_units(bar, units, stop * (1.0 - d * slip), "stop_loss")

    def find_touch(a: int, b: int) -> tuple[int, float, float, bool] | None:
        """First intrabar event of the open position in bars [a, b]: (bar, stop level, best price) in long
        space, and whether trailing raised the stop; or None (then the trailing state advances to b and
        touches are next checked from b+1)."""
        nonlocal stop, best_l, t_touch, stop_kind
        d = side
        lo, hi = (L, Hh) if d > 0 else (NH, NL)
        stop_l = d * stop if stop == stop else -math.inf
        levels = None
        hit = None
        if trails:
            seg_hi = hi[a:b]
            prev_best = np.maximum.accumulate(np.concatenate(([best_l], seg_hi)))
            cand = np.full(b - a + 1, -np.inf)
            for r, (kind, val, arr, *_) in enumerate(trails):
                if kind == "percent":
                    lv = prev_best - val * np.abs(prev_best)
                else:
                    src = arr if kind == "atr" else arr[0 if d > 0 else 1]
                    prev = src[a - 1 : b] if a >= 1 else np.concatenate(([np.nan], src[:b]))
                    if kind == "atr":
                        lv = np.where(np.isnan(prev), -np.inf, prev_best - val * prev)
                    else:  # "levels": the previous bar's stop level for this side, as given
                        lv = np.where(np.isnan(prev), -np.inf, d * prev)
                if trail_act[r] > -math.inf:
                    lv = np.where(prev_best >= trail_act[r], lv, -np.inf)
                cand = np.maximum(cand, lv)
            levels = np.maximum.accumulate(np.maximum(cand, stop_l))
            hit = lo[a : b + 1] <= levels
        elif stop_l > -math.inf:
            hit = lo[a : b + 1] <= stop_l
        tp_l = d * tp if tp == tp else math.inf
        target_l = min(tp_l, parts[0][0]) if parts else tp_l
        if target_l < math.inf:
            thit = hi[a : b + 1] >= target_l
            hit = thit if hit is None else (hit | thit)
        idx = np.flatnonzero(hit) if hit is not None else ()
        if not len(idx):
            if levels is not None:
                best_l = max(best_l, float(hi[a : b + 1].max()))
                if levels[-1] > stop_l:
                    stop = d * float(levels[-1])
                    stop_kind = "trailing_stop"
            t_touch = b + 1
            return None
        k = int(idx[0])
        if levels is None:
            return a + k, stop_l, best_l, False
        lvl = float(levels[k])
        return a + k, lvl, max(best_l, float(hi[a : a + k + 1].max())), lvl > stop_l

    def apply_touch(bar: int, lvl: float, best: float, trailed: bool) -> None:
        nonlocal stop, best_l, t_touch, stop_kind
        d = side
        lo_k, hi_k, op_k = (l_[bar], h_[bar], o_[bar]) if d > 0 else (-h_[bar], -l_[bar], -o_[bar])
        if trails:
            best_l = best
            if trailed:
                stop = d * lvl
                stop_kind = "trailing_stop"
        tp_l = d * tp if tp == tp else math.inf
        if lo_k <= lvl:  # the stop first (conservative), at the open if gapped through
            px = d * min(op_k, lvl)
            exit_units(bar, units, px * (1.0 - d * slip), stop_kind)
        elif hi_k >= tp_l:
            exit_units(bar, units, d * max(op_k, tp_l), "take_profit")
        else:
            lvl_p, frac, be = parts.pop(0)
            u = units * frac
            if s_int[pos_opp]:
                u = float(math.floor(u))
            if u > 0:
                exit_units(bar, u, d * max(op_k, lvl_p), "partial_take_profit")
            if be and side and (stop != stop or d * entry_price > d * stop):
                stop = entry_price
                stop_kind = "breakeven_stop"
        t_touch = bar + 1

    def vet(j: int, bar: int) -> list[int]:
        """Threat vetting of opportunity j at bar; returns the threat indexes that apply (rejecting it,
        unless the ThreatOperator's aggregation is NONE) and creates on_opportunity_detected threats."""
        found: list[int] = []
        for widx in range(len(threat_workers)):
            flags = market_flags[widx]
            if flags is not None:
                if flags[bar]:
                    ep = episode_tid[widx]
                    if ep:
                        found.append(ep["tids"][ep["ep"][bar]])
                    else:
                        found.append(new_threat(bar, widx))
            elif ledger_last_tid[widx] >= 0 and ledger_last_day[widx] == day_l[bar]:
                found.append(ledger_last_tid[widx])
            if found and veto == VETO_FIRST:
                break
        return found

    # ---------------------------------------------------------------- the loop
    i = 0
    while True:
        D = obars[i] if i < m else n
        H = D if n > D else n - 1
        slice_bar = twap_next if (side and twap_left > 0 and twap_next <= H) else -1
        if slice_bar >= 0:
            H = slice_bar - 1  # bars before the slice first (stops, targets, emergencies)
        if pending is not None:
            pj, ptype, plevel, pfirst, plast = pending
            d = odirs[pj]
            lo_b, hi_b = pfirst, min(plast, H)
            k = -1
            if lo_b <= hi_b:
                if (ptype == ENTRY_LIMIT) == (d > 0):
                    touched = np.flatnonzero(L[lo_b : hi_b + 1] <= plevel)
                else:
                    touched = np.flatnonzero(Hh[lo_b : hi_b + 1] >= plevel)
                if len(touched):
                    k = lo_b + int(touched[0])
            if k >= 0:
                commit(k - 1)
                op_k = o_[k]
                if ptype == ENTRY_LIMIT:
                    px = min(op_k, plevel) if d > 0 else max(op_k, plevel)
                else:
                    px = (max(op_k, plevel) if d > 0 else min(op_k, plevel)) * (1.0 + d * slip)
                pending = None
                open_position(k, pj, px, intrabar=True)
                continue
            if plast < H:
                status[pj] = EXPIRED
                pending = None
                continue
        em_bar = -1
        if side:
            hit = find_touch(t_touch, H) if (has_touch_rules and t_touch <= H) else None
            lim = hit[0] - 1 if hit else H
            rb = ruin_bar(tc, lim) if ruin_checks else -1
            if rb >= 0:
                lim = rb
            eb = -1
            if len(em_onsets_arr):
                pos = int(np.searchsorted(em_onsets_arr, tc))
                if pos < len(em_onsets_arr) and em_onsets_arr[pos] < lim + (rb < 0):
                    eb = int(em_onsets_arr[pos])
            b = commit(eb if eb >= 0 else lim)
            if b < 0:
                b = eb
            if rb >= 0 and b < 0:  # bankrupt at the close of rb: liquidate there
                tc = rb
                exit_units(rb, units, c_[rb], "bankruptcy")
                continue
            if b >= 0:
                if b < D:  # emergency exit at the next open (or at this close)
                    fb = b if at_close else b + 1
                    if fb >= n:
                        break
                    if at_close:
                        tc = b
                    exit_units(
                        fb, units, (c_[b] if at_close else o_[fb]) * (1.0 - side * slip), "emergency_exit"
                    )
                    continue
                em_bar = b
            elif hit:
                apply_touch(*hit)
                continue
        else:
            commit(H)
        if slice_bar >= 0:  # phase 0 of slice_bar: the next TWAP slice fills at the open
            add_units(slice_bar, pos_opp, twap_units, o_[slice_bar] * (1.0 + side * slip), "entry_slice")
            twap_left -= 1
            twap_next += 1
            continue
        if n <= D:
            break
        # ------------------------------------------------------------ phase 2 at bar D: decisions
        commit(D)
        exit_why = "emergency_exit" if em_bar == D and side else None
        entry_j = -1
        add_j = -1
        acted_dir = 0
        while i < m and obars[i] == D:
            j = i
            i += 1
            if opre[j]:
                status[j] = SKIPPED
                reason[j] = "CONFLICTING_OPPORTUNITY"
                continue
            if acted_dir:
                status[j] = SKIPPED
                reason[j] = "DUPLICATE_SAME_BAR" if odirs[j] == acted_dir else "CONFLICTING_OPPORTUNITY"
                continue
            if threat_workers:
                found = vet(j, D)
                if found:
                    if (
                        emergency
                        and side
                        and exit_why is None
                        and any(
                            threats[t][0] == D and threat_workers[threats[t][1]].severity in emergency
                            for t in found
                        )
                    ):
                        exit_why = "emergency_exit"
                    if veto != VETO_NONE:
                        status[j] = REJECTED
                        opp_threats[j] = found
                        continue
            d = odirs[j]
            if side:
                if exit_why == "emergency_exit":
                    status[j] = SKIPPED
                    reason[j] = "EMERGENCY_EXIT"
                    continue
                if d == side:
                    if p_scale_in[j]:  # scale in: add to the open position (a market order)
                        acted_dir = d
                        add_j = j
                        continue
                    status[j] = SKIPPED
                    reason[j] = "POSITION_OPEN"
                    continue
                mode = p_opp[pos_opp]
                if mode == HOLD:
                    status[j] = SKIPPED
                    reason[j] = "POSITION_OPEN"
                    continue
                exit_why = "opposite_signal"
                acted_dir = d
                if mode == CLOSE:
                    status[j] = CLOSED_ONLY
                    continue
                entry_j = j
            else:
                acted_dir = d
                if pending is not None:
                    status[pending[0]] = CANCELLED
                    pending = None
                entry_j = j
        if exit_why is None and entry_j < 0 and add_j < 0:
            continue
        fb = D if at_close else D + 1
        if fb >= n:
            for j in (entry_j, add_j):
                if j >= 0:
                    status[j] = UNFILLED
                    reason[j] = "END_OF_DATA"
            continue
        if add_j >= 0:
            if at_close:
                tc = D
            px = (c_[D] if at_close else o_[fb]) * (1.0 + side * slip)
            u = size_units(add_j, px)
            if u > 0:
                status[add_j] = TRADED
                add_units(fb, add_j, u, px, "scale_in")
            continue
        if at_close:
            tc = D  # the close of D is re-marked after these fills
        if exit_why is not None and side:
            px = c_[D] if at_close else o_[fb]
            exit_units(fb, units, px * (1.0 - side * slip), exit_why)
        if entry_j >= 0:
            et = e_type[entry_j]
            if et == ENTRY_MARKET:
                px = c_[D] if at_close else o_[fb]
                open_position(fb, entry_j, px * (1.0 + odirs[entry_j] * slip), intrabar=False)
                if at_close:
                    t_touch = D + 1
            else:
                pending = (entry_j, et, e_level[entry_j], D + 1, D + e_valid[entry_j])

    # ---------------------------------------------------------------- end of data
    commit(n - 1)
    if lazy:
        lengths = np.diff(np.append(seg_start, n))
        eqx[1:] = np.repeat(seg_cash, lengths) + np.repeat(seg_pos, lengths) * C
    if pending is not None:
        status[pending[0]] = UNFILLED
        reason[pending[0]] = "END_OF_DATA"
    if side:
        exit_units(n - 1, units, c_[n - 1] * (1.0 - side * slip), "end_of_data")
        eqx[n] = cash
    if not ruin_checks and eqx.min() <= 0.0:
        return simulate(
            ctx,
            opps,
            plan,
            threat_workers,
            veto,
            exec_rules,
            cash=cash0,
            commission=commission,
            slippage=slippage,
            fill_at=fill_at,
            ruin_checks=True,
        )
    return SimOutput(
        eqx=eqx,
        trades=trades,
        fills=fills,
        intervals=intervals,
        opp_status=np.asarray(status, dtype=np.int8),
        opp_reason=reason,
        opp_threats=opp_threats,
        threats=threats,
    )
