"""Bayesian search over a plan's space with Optuna's TPE sampler, asked in batches (one batch = one run per
pool process, so the pool stays busy), seeded, and resumed from stored results without replaying.

Each dimension is one Optuna parameter holding the CHOICE INDEX (ordinal numeric ranges as integers, so
TPE can exploit order; everything else categorical); constrained parameter groups are one parameter per
member, and a combination that violates ``parameter_constraints`` is told to TPE as infeasible without
running it.  Runs that fail are told as failed; runs that violate ``constraints`` (min_trades,
max_drawdown) are told with their violation (``Trial.set_constraint``), so TPE steers away from them.

What the overhead costs: an ask is a TPE fit over every trial so far, so the loop never asks again for a
point it already has.  A proposal that repeats a run is told that run's result (TPE learns it again) and
its slot in the batch goes to a seeded random point not run yet (an enqueued trial: no fit).  A resumed
sweep adds its stored results to the study as finished trials (``study.add_trials``) and asks only for
the runs still missing: resuming a finished sweep asks nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any

from .models import Direction, RunConstraints
from .planner import OptimizationPlan
from .space import ComponentDim, ParamDim

ASKS_PER_TRIAL = 50  # give up when this many asks per wanted run keep hitting infeasible points
RANDOM_FILL_ATTEMPTS = 1_000  # draws to find a point not run yet when TPE repeats one

Execute = Callable[[list[dict[str, Any]]], dict[str, dict[str, Any]]]


def _violation(record: dict[str, Any], constraints: RunConstraints) -> float:
    metrics = record.get("metrics") or {}
    v = 0.0
    if constraints.min_trades:
        trades = metrics.get("total_trades") or 0
        v += max(0.0, (constraints.min_trades - trades) / constraints.min_trades)
    if constraints.max_drawdown is not None:
        dd = metrics.get("max_drawdown")
        dd = abs(dd) if isinstance(dd, int | float) else math.inf
        v += max(0.0, (dd - constraints.max_drawdown) / max(constraints.max_drawdown, 1e-9))
    return min(v, 1e6)


def _distribution(member: ParamDim) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if member.ordinal and member.size > 1:
        return IntDistribution(0, member.size - 1)
    return CategoricalDistribution(list(range(member.size)))


class BayesianSearch:
    def __init__(self, plan: OptimizationPlan, batch_size: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.plan = plan
        cfg = plan.config
        self.max_trials = min(cfg.search.max_trials or plan.total, plan.total)
        self.batch_size = max(1, batch_size)
        self.primary = cfg.optimization_targets.primary_metric
        self.direction = cfg.optimization_targets.primary_direction()
        self.constraints = cfg.constraints
        # TPE weighs every trial's constraint values on each ask: only keep them where something can violate
        self.constrained = (
            any(isinstance(d, ComponentDim) for d in plan.dims)
            or bool(cfg.constraints.min_trades)
            or cfg.constraints.max_drawdown is not None
        )
        self.dists: dict[str, Any] = {}
        self.layout: list[tuple[int, list[str]]] = []  # (dimension position, optuna param names)
        for k, d in enumerate(plan.dims):
            members = d.members if isinstance(d, ComponentDim) else [d]
            for m in members:
                assert isinstance(m, ParamDim)
                self.dists[m.name] = _distribution(m)
            self.layout.append((k, [m.name for m in members]))
        sampler = optuna.samplers.TPESampler(
            seed=cfg.search.seed,
            constant_liar=True,
            multivariate=True,
            n_startup_trials=min(10, max(2, self.max_trials // 5)),
        )
        self.study = optuna.create_study(
            direction="maximize" if self.direction == Direction.MAXIMIZE else "minimize", sampler=sampler
        )
        self.rng = random.Random(cfg.search.seed)
        self.seen: dict[int, dict[str, Any]] = {}  # grid index -> record
        self.order: list[int] = []  # grid indices in the order they were first proposed
        self.asks = 0  # TPE asks (fits); enqueued random fills and resumed trials are not counted

    # -- parameters <-> grid indices ------------------------------------------------------------------
    def _digits(self, params: dict[str, Any]) -> list[int] | None:
        digits = []
        for k, names in self.layout:
            d = self.plan.dims[k]
            picks = [int(params[n]) for n in names]
            if isinstance(d, ComponentDim):
                pos = d.index_of(picks)
                if pos is None:
                    return None
                digits.append(pos)
            else:
                digits.append(picks[0])
        return digits

    def _params(self, index: int) -> dict[str, int]:
        digits = self.plan.digits(index)
        params: dict[str, int] = {}
        for k, names in self.layout:
            d = self.plan.dims[k]
            picks = d.member_digits(digits[k]) if isinstance(d, ComponentDim) else [digits[k]]
            params.update(zip(names, picks, strict=True))
        return params

    def _outcome(self, record: dict[str, Any]) -> tuple[float | None, float]:
        """(value to tell, or None for a failed run; constraint violation)."""
        value = (record.get("metrics") or {}).get(self.primary)
        if record.get("status") != "ok" or not isinstance(value, int | float) or not math.isfinite(value):
            return None, 0.0
        return float(value), _violation(record, self.constraints)

    def _tell(self, trial: Any, record: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        value, violation = self._outcome(record)
        if value is None:
            self.study.tell(trial, state=TrialState.FAIL)
            return
        if self.constrained:
            trial.set_constraint("violation", violation)
        self.study.tell(trial, value)

    def _accept(self, index: int, record: dict[str, Any]) -> None:
        self.seen[index] = record
        self.order.append(index)

    # -- resume ---------------------------------------------------------------------------------------
    def resume(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add stored results of this plan's runs as finished trials (in the order given, up to
        ``max_trials``), without asking TPE anything.  Returns their payloads."""
        from optuna.trial import TrialState, create_trial

        trials, used = [], []
        for record in records:
            if len(self.seen) >= self.max_trials:
                break
            index = record.get("index")
            if not isinstance(index, int) or not 0 <= index < self.plan.total or index in self.seen:
                continue
            payload = self.plan.payload(index)
            if payload["run_id"] != record.get("run_id"):  # another plan's run at this index
                continue
            value, violation = self._outcome(record)
            state = TrialState.FAIL if value is None else TrialState.COMPLETE
            trials.append(
                create_trial(
                    state=state,
                    value=value,
                    params=self._params(index),
                    distributions=self.dists,
                    constraints={"violation": violation} if self.constrained and value is not None else None,
                )
            )
            self._accept(index, record)
            used.append(payload)
        self.study.add_trials(trials)
        return used

    # -- the loop -------------------------------------------------------------------------------------
    def _random_unseen(self, taken: dict[int, Any]) -> int | None:
        """A seeded random feasible grid index neither run nor in the batch (None if none is found)."""
        lazy = [
            (k, d) for k, d in enumerate(self.plan.dims) if isinstance(d, ComponentDim) and d.feasible is None
        ]
        for _ in range(RANDOM_FILL_ATTEMPTS):
            index = self.rng.randrange(self.plan.total)
            if index in self.seen or index in taken:
                continue
            digits = self.plan.digits(index)
            if all(d.accepts(digits[k]) is None for k, d in lazy):
                return index
        return None

    def _propose(self, want: int, limit: int) -> dict[int, tuple[Any, dict[str, Any]]]:
        """Up to ``want`` new grid indices with their trial and payload.  Infeasible proposals are told
        as such; a proposal that repeats a run is told its result and replaced by a random unseen point."""
        batch: dict[int, tuple[Any, dict[str, Any]]] = {}
        while len(batch) < want and self.asks < limit:
            trial = self.study.ask(self.dists)
            self.asks += 1
            digits = self._digits(trial.params)
            if digits is None:  # violates parameter_constraints: never run
                trial.set_constraint("violation", 1.0)
                self.study.tell(trial, 0.0)
                continue
            index = self.plan.index_of(digits)
            if index not in self.seen and index not in batch:
                batch[index] = (trial, self.plan.payload(index))
                continue
            if index in self.seen:
                self._tell(trial, self.seen[index])
            else:  # the batch has it already: give up this trial, the batch's own will be told
                from optuna.trial import TrialState

                self.study.tell(trial, state=TrialState.FAIL)
            fill = self._random_unseen(batch)
            if fill is not None:
                self.study.enqueue_trial(self._params(fill))
                batch[fill] = (self.study.ask(self.dists), self.plan.payload(fill))
        return batch

    def run(self, execute: Execute) -> list[dict[str, Any]]:
        """Ask, run and tell batches until ``max_trials`` trials have results (resumed ones count).
        ``execute(payloads)`` runs a batch and returns {run_id: record}.  Returns the payloads run, in
        trial order."""
        ran: list[dict[str, Any]] = []
        limit = ASKS_PER_TRIAL * self.max_trials + 100
        while len(self.seen) < self.max_trials and self.asks < limit:
            batch = self._propose(min(self.batch_size, self.max_trials - len(self.seen)), limit)
            if not batch:
                break
            results = execute([payload for _, payload in batch.values()])
            interrupted = False
            for index, (trial, payload) in batch.items():
                record = results.get(payload["run_id"])
                if record is None:  # interrupted before this run finished
                    interrupted = True
                    continue
                self._accept(index, record)
                ran.append(payload)
                self._tell(trial, record)
            if interrupted:
                break
        return ran
