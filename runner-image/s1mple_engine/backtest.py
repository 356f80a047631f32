"""``run_backtest``: one operation x one blueprint x one dataset -> BacktestResult.

Pipeline: ContextOperator (features) -> OpportunityOperator (aggregated opportunities, OPP ids) ->
PlanningOperator (a plan per opportunity) -> simulation (ThreatOperator vetting at decision bars,
ExecutionOperator rules on open positions, ledger) -> metrics + causality.  Everything before the
simulation is vectorized and memoized per dataset; see :mod:`s1mple_engine.simulate` for fill rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import EXECUTION_PHASES, Blueprint, ConfigError, Operation, Window, load_blueprint
from .data import MarketData, load_market_data, span_years
from .operators import collect_opportunities, plan_opportunities
from .result import (
    DEFAULT_BLOCKS,
    BacktestResult,
    Causality,
    Curve,
    FillRecord,
    OpportunityRecord,
    RejectionReason,
    SkipReason,
    ThreatRecord,
    TradeRecord,
    bar_returns,
    compute_metrics,
    count_reasons,
    monthly_returns,
    return_stats,
    times_iso,
)
from .segments import measure_segments
from .simulate import REJECTED, SKIPPED, STATUS_NAMES, SimOutput, simulate
from .validation import Strategy, require_valid
from .workers import Context, Opportunities

_COMPILED: dict[str, Strategy] = {}


def operation_blueprint(operation: Operation, index: int = 0) -> Blueprint:
    link = operation.strategy_links[index].blueprint
    if isinstance(link, Blueprint):
        return link
    return load_blueprint(Path(link))


def compile_cached(blueprint: Blueprint) -> Strategy:
    key = blueprint.model_dump_json()
    strat = _COMPILED.get(key)
    if strat is None:
        strat = require_valid(blueprint)
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        _COMPILED[key] = strat
    return strat


def windowed(data: MarketData, window: Window | None) -> tuple[MarketData, int]:
    """The bars a run with this trading window may see, and the window's first bar.

    Every bar up to the window's end and none after it: features warm up on the bars before the window
    (an indicator's first value inside the window equals its value on the whole series), and nothing
    after the window's end can reach a decision, whatever the plugins do."""
    if window is None:
        return data, 0
    n = len(data)

    def bar(value: int | str | None, default: int, name: str, last: bool) -> int:
        if value is None:
            return default
        return value if isinstance(value, int) else data.bar_at(value, f"operation.window.{name}", last=last)

    lo, hi = bar(window.start, 0, "start", False), bar(window.end, n - 1, "end", True)
    if not 0 <= lo < hi < n:
        span = f"{str(data.time[0])[:19]} .. {str(data.time[-1])[:19]}" if n else "no bars"
        raise ConfigError(
            f"operation.window: start {window.start!r} .. end {window.end!r} selects bars {lo} .. {hi}, "
            f"but the data has bars 0 .. {n - 1} ({span}): a window needs 2 or more bars inside the data"
        )
    return data.head(hi + 1), lo


def from_bar(opps: Opportunities, lo: int) -> Opportunities:
    """The opportunities at bar ``lo`` or later: a windowed run opens positions inside its window only."""
    if not lo or not len(opps) or opps.bars[0] >= lo:
        return opps
    keep = opps.bars >= lo
    return Opportunities(
        opps.bars[keep],
        opps.dirs[keep],
        opps.source[keep],
        opps.ref[keep],
        {k: v[keep] for k, v in opps.meta.items()},
        opps.pre_status[keep],
    )


def run_backtest(
    operation: Operation,
    blueprint: Blueprint | None = None,
    data: MarketData | None = None,
    *,
    curves: bool = True,
    blocks: int = DEFAULT_BLOCKS,
    series: bool = False,
) -> BacktestResult:
    """Run one backtest.  ``blueprint`` defaults to the operation's first strategy link, ``data`` to the
    operation's market data and period.  ``curves=False`` (sweeps) skips curves and record lists;
    ``blocks``/``series``: what :func:`return_stats` records of the per-bar returns."""
    if blueprint is None:
        blueprint = operation_blueprint(operation)
    strat = compile_cached(blueprint)
    if data is None:
        data = load_market_data(operation.market_data, operation.period)
    data, lo = windowed(data, operation.window)
    if len(data) < 2:
        raise ConfigError(f"market data has {len(data)} bar(s); a backtest needs at least 2")
    ctx = Context(data)
    ops = strat.operators
    for w in strat.context:  # ContextOperator: pure causal features (see operators.py)
        ctx.features.update(ctx.memo(("context",) + w.key, lambda w=w: w.compute(ctx)))
    opps = from_bar(collect_opportunities(ctx, strat.opportunity, ops["OpportunityOperator"]), lo)
    plan = plan_opportunities(ctx, strat.planning, opps, ops["PlanningOperator"])
    rules = [w.configure(ctx) for phase in EXECUTION_PHASES for w in strat.execution[phase]]
    sim = simulate(
        ctx,
        opps,
        plan,
        strat.threat,
        ops["ThreatOperator"].aggregation.value,
        rules,
        cash=operation.cash,
        commission=operation.commission,
        slippage=operation.slippage,
        fill_at=operation.fill_at,
    )
    rets = bar_returns(sim.eqx[lo:])  # the window's bars only
    res = build_result(operation, strat, data, opps, sim, curves, lo, rets)
    res.returns = return_stats(rets, blocks, series)
    if operation.segments:  # walk-forward's windows, measured inside this one run
        res.segments = measure_segments(
            operation.segments, data, sim.eqx, sim.trades, sim.intervals, operation.cash, lo
        )
    return res


def opportunity_ids(bars: np.ndarray) -> list[str]:
    """Deterministic ids ``OPP-<bar>-<k>``: k counts opportunities within the bar (0-based)."""
    if not len(bars):
        return []
    first = np.ones(len(bars), dtype=bool)
    first[1:] = bars[1:] != bars[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(bars)), 0))
    k = np.arange(len(bars)) - start
    return [f"OPP-{b}-{x}" for b, x in zip(bars.tolist(), k.tolist(), strict=True)]


def threat_ids(threats: list[tuple[int, int, int]]) -> list[str]:
    """Deterministic ids ``THR-<bar>-<k>``, k ordering threats of a bar by (worker order, creation)."""
    order = sorted(range(len(threats)), key=lambda t: threats[t])
    ids = [""] * len(threats)
    last_bar, k = -1, 0
    for t in order:
        bar = threats[t][0]
        k = k + 1 if bar == last_bar else 0
        last_bar = bar
        ids[t] = f"THR-{bar}-{k}"
    return ids


def build_result(
    operation: Operation,
    strat: Strategy,
    data: MarketData,
    opps: Opportunities,
    sim: SimOutput,
    curves: bool,
    lo: int = 0,
    rets: np.ndarray | None = None,
) -> BacktestResult:
    """The result of a run; with a trading window from bar ``lo``, equity, curves and metrics cover the
    bars ``lo`` .. end only (bar numbers in the records stay those of the whole data)."""
    trades = sim.trades
    eqx = sim.eqx[lo:]  # eqx[lo]: the equity at the close before the window, still all cash
    times = data.time[lo:]
    years = span_years(times) if lo else data.years
    metrics, dd = compute_metrics(
        eqx,
        operation.cash,
        years,
        [t[7] for t in trades],
        [t[4] - t[2] for t in trades],
        [(a - lo, b - lo) for a, b in sim.intervals] if lo else sim.intervals,
        data.bars_per_year,
        rets,
    )
    res = BacktestResult.model_construct(
        operation=operation.name,
        strategy=strat.name,
        symbol=data.symbol,
        start=str(times[0])[:19],
        end=str(times[-1])[:19],
        bars=len(times),
        initial_cash=float(operation.cash),
        metrics=metrics,
        causality=causality(strat, opps, sim, lo),
        equity_curve=None,
        drawdown_curve=None,
        monthly_returns=[],
        trades=[],
        opportunities=[],
        threats=[],
        fills=[],
        notes=list(dict.fromkeys(note for _, w in strat.paths for note in w.notes(Context(data)))),
    )
    if data.timeframe_note:
        res.notes.append(data.timeframe_note)
    if curves:
        add_records(res, strat, data, opps, sim, eqx, dd, lo)
    return res


def causality(strat: Strategy, opps: Opportunities, sim: SimOutput, lo: int) -> Causality:
    """How the run's opportunities fared: detected, rejected by threats (and by which), skipped (and why)."""
    status = sim.opp_status
    threat_workers = strat.threat
    rejection_types = []
    for threat_list in sim.opp_threats.values():
        rejection_types += [threat_workers[sim.threats[t][1]].threat_type for t in threat_list]
    skipped = [sim.opp_reason.get(j, "") for j in np.flatnonzero(status == SKIPPED).tolist()]
    return Causality.model_construct(
        opportunities_detected=len(opps),
        opportunities_rejected=int((status == REJECTED).sum()),
        opportunities_skipped=len(skipped),
        threats_detected=sum(t[0] >= lo for t in sim.threats) if lo else len(sim.threats),
        top_rejection_reasons=[
            RejectionReason.model_construct(threat_type=k, count=v) for k, v in count_reasons(rejection_types)
        ],
        skip_reasons=[SkipReason.model_construct(reason=k, count=v) for k, v in count_reasons(skipped)],
    )


def add_records(
    res: BacktestResult,
    strat: Strategy,
    data: MarketData,
    opps: Opportunities,
    sim: SimOutput,
    eqx: np.ndarray,
    dd: np.ndarray,
    lo: int,
) -> None:
    """The curves and the trade, opportunity, threat and fill lists (``curves=True``)."""
    tnames = times_iso(data.time)
    wnames = tnames[lo:]
    times = data.time[lo:]
    status = sim.opp_status
    tw = strat.threat
    oids = opportunity_ids(opps.bars)
    tids = threat_ids(sim.threats)
    res.equity_curve = Curve.model_construct(time=wnames, values=eqx[1:].tolist())
    res.drawdown_curve = Curve.model_construct(time=wnames, values=dd.tolist())
    res.monthly_returns = monthly_returns(times, eqx)
    res.trades = trade_records(sim, oids, tnames)
    src_names = [w.name for w in strat.opportunity]
    records = []
    for j, (b, d, src) in enumerate(
        zip(opps.bars.tolist(), opps.dirs.tolist(), opps.source.tolist(), strict=True)
    ):
        records.append(
            OpportunityRecord.model_construct(
                opportunity_id=oids[j],
                bar=b,
                time=tnames[b],
                direction="long" if d > 0 else "short",
                source=src_names[src] if src_names else "",
                status=STATUS_NAMES[int(status[j])],
                reason=sim.opp_reason.get(j),
                threat_ids=[tids[t] for t in sim.opp_threats.get(j, [])],
            )
        )
    res.opportunities = records
    res.threats = sorted(
        (
            ThreatRecord.model_construct(
                threat_id=tids[t],
                bar=b,
                time=tnames[b],
                threat_type=tw[w].threat_type,
                plugin=tw[w].name,
                severity=tw[w].severity,
            )
            for t, (b, w, _) in enumerate(sim.threats)
            if b >= lo  # market threats of the warm-up bars are not the window's
        ),
        key=lambda r: (r.bar, int(r.threat_id.rsplit("-", 1)[1])),
    )
    res.fills = [
        FillRecord.model_construct(
            bar=b,
            time=tnames[b],
            opportunity_id=oids[j] if j >= 0 else "",
            side="buy" if s > 0 else "sell",
            size=float(u),
            price=float(p),
            commission=float(fee),
            reason=why,
        )
        for (b, j, s, u, p, fee, why) in sim.fills
    ]


def trade_records(sim: SimOutput, oids: list[str], tnames: list[str]) -> list[TradeRecord]:
    """The simulation's trades as records (bar numbers and times of the whole data)."""
    return [
        TradeRecord.model_construct(
            opportunity_id=oids[j],
            side="long" if s > 0 else "short",
            entry_time=tnames[eb],
            entry_bar=eb,
            entry_price=float(ep),
            exit_time=tnames[xb],
            exit_bar=xb,
            exit_price=float(xp),
            size=float(u),
            pnl=float(pnl),
            return_pct=float(r),
            exit_reason=why,
            duration_bars=xb - eb,
        )
        for (j, s, eb, ep, xb, xp, u, pnl, r, why) in sim.trades
    ]
