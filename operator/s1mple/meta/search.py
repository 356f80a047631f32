"""Bayesian search over a plan's space with Optuna's TPE sampler, asked in batches (one batch = one run per
worker, so the pool stays busy), seeded and replayable.

Each dimension is one Optuna parameter holding the CHOICE INDEX (ordinal numeric ranges as integers, so
TPE can exploit order; everything else categorical); constrained parameter groups are one parameter per
member, and a combination that violates ``parameter_constraints`` is told to TPE as infeasible without
running it.  Runs that fail are told as failed; runs that violate ``constraints`` (min_trades,
max_drawdown) are told with their violation (``Trial.set_constraint``), so TPE steers away from them.
Trials are told in ask order, so the same seed and the same results give the same sequence — which is
also what makes a resumed bayesian sweep skip the runs it already has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .models import Direction, RunConstraints
from .planner import OptimizationPlan
from .space import ComponentDim, ParamDim

ASKS_PER_TRIAL = 50  # give up when this many asks per wanted run keep hitting infeasible/duplicate points


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


class BayesianSearch:
    def __init__(self, plan: OptimizationPlan, batch_size: int):
        import optuna
        from optuna.distributions import CategoricalDistribution, IntDistribution

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.plan = plan
        cfg = plan.config
        self.max_trials = min(cfg.search.max_trials or plan.total, plan.total)
        self.batch_size = max(1, batch_size)
        self.primary = cfg.optimization_targets.primary_metric
        self.direction = cfg.optimization_targets.primary_direction()
        self.constraints = cfg.constraints
        self.dists: dict[str, Any] = {}
        self.layout: list[tuple[int, list[str]]] = []  # (dimension position, optuna param names)

        def dist(member: Any) -> Any:
            if isinstance(member, ParamDim) and member.ordinal and member.size > 1:
                return IntDistribution(0, member.size - 1)
            return CategoricalDistribution(list(range(member.size)))

        for k, d in enumerate(plan.dims):
            members = d.members if isinstance(d, ComponentDim) else [d]
            names = []
            for m in members:
                name = m.name
                self.dists[name] = dist(m)
                names.append(name)
            self.layout.append((k, names))
        sampler = optuna.samplers.TPESampler(
            seed=cfg.search.seed,
            constant_liar=True,
            multivariate=True,
            n_startup_trials=min(10, max(2, self.max_trials // 5)),
        )
        self.study = optuna.create_study(
            direction="maximize" if self.direction == Direction.MAXIMIZE else "minimize", sampler=sampler
        )
        self.seen: dict[int, dict[str, Any]] = {}  # grid index -> record
        self.order: list[int] = []  # grid indices in the order they were first proposed

    def _digits(self, trial: Any) -> list[int] | None:
        digits = []
        for k, names in self.layout:
            d = self.plan.dims[k]
            picks = [int(trial.params[n]) for n in names]
            if isinstance(d, ComponentDim):
                pos = d.index_of(picks)
                if pos is None:
                    return None
                digits.append(pos)
            else:
                digits.append(picks[0])
        return digits

    def _tell(self, trial: Any, record: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        value = (record.get("metrics") or {}).get(self.primary)
        if record.get("status") != "ok" or not isinstance(value, int | float) or not math.isfinite(value):
            self.study.tell(trial, state=TrialState.FAIL)
            return
        trial.set_constraint("violation", _violation(record, self.constraints))
        self.study.tell(trial, float(value))

    def run(
        self,
        execute: Callable[[list[dict[str, Any]]], dict[str, dict[str, Any]]],
        known: Callable[[str], dict[str, Any] | None],
    ) -> list[dict[str, Any]]:
        """Drive the search.  ``execute(payloads)`` runs a batch and returns {run_id: record};
        ``known(run_id)`` gives an already stored record (resume) or None.  Returns the payloads run/used,
        in trial order."""
        asks = 0
        limit = ASKS_PER_TRIAL * self.max_trials + 100
        used: list[dict[str, Any]] = []
        while len(self.seen) < self.max_trials and asks < limit:
            want = min(self.batch_size, self.max_trials - len(self.seen))
            pending: list[tuple[Any, int, dict[str, Any]]] = []
            new: dict[int, dict[str, Any]] = {}
            while len(new) < want and asks < limit:
                trial = self.study.ask(self.dists)
                asks += 1
                digits = self._digits(trial)
                if digits is None:  # violates parameter_constraints: never run
                    trial.set_constraint("violation", 1.0)
                    self.study.tell(trial, 0.0)
                    continue
                index = self.plan.index_of(digits)
                if index in self.seen:  # already evaluated: tell the same outcome again
                    self._tell(trial, self.seen[index])
                    continue
                payload = new.get(index) or self.plan.payload(index)
                new[index] = payload
                pending.append((trial, index, payload))
            if not pending:
                break
            results: dict[str, dict[str, Any]] = {}
            to_run = []
            for payload in new.values():
                stored = known(payload["run_id"])
                if stored is not None:
                    results[payload["run_id"]] = stored
                else:
                    to_run.append(payload)
            if to_run:
                results.update(execute(to_run))
            interrupted = False
            for trial, index, payload in pending:
                record = results.get(payload["run_id"])
                if record is None:  # interrupted before this run finished
                    interrupted = True
                    continue
                if index not in self.seen:
                    self.seen[index] = record
                    self.order.append(index)
                    used.append(payload)
                self._tell(trial, record)
            if interrupted:
                break
        return used
