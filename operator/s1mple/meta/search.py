"""Bayesian search over a plan's space with Optuna's TPE sampler, asked in batches that keep the pool
busy, seeded, and resumed from stored results without replaying.

Each dimension is one Optuna parameter holding the CHOICE INDEX (ordinal numeric ranges as integers, so
TPE can exploit order; everything else categorical); constrained parameter groups are one parameter per
member, and a combination that violates ``parameter_constraints`` is told to TPE as infeasible without
running it.  Runs that fail are told as failed; runs that violate ``constraints`` (min_trades,
max_drawdown) are told with their violation (``Trial.set_constraint``), so TPE steers away from them.

What the overhead costs: a TPE fit goes over every trial so far (10-18 ms from a few dozen trials to 500,
where a backtest of benchmarks/search.py costs ~2-3 ms), and each trial's ask and tell ~0.2 ms, so fits are
spent sparingly.  One fit proposes a whole batch (:class:`BatchTPESampler`: its candidates ranked by the
acquisition), of ``batch_size`` runs: the pool's width, up to 12 when the search is long enough.  While a
batch runs, a thread tells TPE the previous batch's results and asks for the next batch, so telling and
fitting overlap the backtests.  A proposal that is infeasible or repeats a run is told
(its violation, the run's result) and the fit's next candidate taken; once those are used up, a repeat's
slot goes to a seeded random point not run yet (an enqueued trial: no fit).  A resumed sweep adds its
stored results to the study as finished trials (``study.add_trials``) and asks only for the runs still
missing: resuming a finished sweep asks nothing and builds no study.
"""

from __future__ import annotations

import math
import random
import time
from collections import ChainMap
from collections.abc import Callable, Container, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.samplers import TPESampler
from optuna.trial import TrialState, create_trial

from .models import Direction, RunConstraints
from .planner import OptimizationPlan
from .space import ComponentDim, ParamDim

RUNS_PER_FIT = 12  # 12 runs keep 2 processes busy about as long as the next fit takes (benchmarks/search.py)
FITS_PER_SEARCH = 20  # ... but a search has at least this many batches, or TPE barely learns
ASKS_PER_TRIAL = 50  # give up when this many asks per wanted run keep hitting infeasible points
RANDOM_FILL_ATTEMPTS = 1_000  # draws to find a point not run yet when TPE repeats one

Batch = dict[int, tuple[Any, dict[str, Any]]]  # grid index -> (trial, payload)
Execute = Callable[[list[dict[str, Any]]], dict[str, dict[str, Any]]]


def batch_size(workers: int, max_trials: int) -> int:
    """Runs asked per TPE fit: the pool's width at least (every process gets a run), up to
    ``RUNS_PER_FIT`` when the search has trials enough for ``FITS_PER_SEARCH`` batches of that size."""
    return max(workers, min(RUNS_PER_FIT, max_trials // FITS_PER_SEARCH))


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
    if member.ordinal and member.size > 1:
        return IntDistribution(0, member.size - 1)
    return CategoricalDistribution(list(range(member.size)))


class BatchTPESampler(TPESampler):
    """TPE that fits once per batch.  A fit draws candidates from the density of the best trials (l),
    ranks them by the acquisition l/g and TPE takes the best; the batch's next asks take the next best
    distinct candidates of the same fit (also when a proposal is infeasible or already run) instead of
    fitting again.  :meth:`new_batch` starts a batch: its first ask fits, over the trials told so far (the
    running ones counted as bad by the constant liar, so the fit looks elsewhere)."""

    def __init__(self, space: dict[str, Any], **options: Any):
        super().__init__(**options)
        # every trial is asked with the same distributions: TPE's search space, sorted by name as Optuna's
        # IntersectionSearchSpace has it (which walks the study and deep-copies the space on every ask)
        self.space = {n: space[n] for n in sorted(space) if not space[n].single()}
        self.fits = 0
        self.candidates: list[dict[str, Any]] = []  # the current fit's next best, best first
        self._space: dict[str, Any] = {}
        self._ranking = False

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self.space

    def new_batch(self) -> None:
        self.candidates = []

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        if self.candidates and search_space.keys() == self._space.keys():
            return self.candidates.pop(0)
        self._space, self._ranking = search_space, True
        try:
            return super().sample_relative(study, trial, search_space)
        finally:
            self._ranking = False

    def _compute_acquisition_func(self, samples: Any, mpe_below: Any, mpe_above: Any) -> Any:
        values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
        self.fits += 1
        if self._ranking:
            self.candidates = self._ranked(samples, values)[1:]  # [0] is the argmax: TPE's own pick
        return values

    def _ranked(self, samples: dict[str, np.ndarray], values: np.ndarray) -> list[dict[str, Any]]:
        names = list(self._space)
        points = dict.fromkeys(
            tuple(samples[n][i].item() for n in names) for i in np.argsort(-values, kind="stable")
        )
        return [
            {n: self._space[n].to_external_repr(v) for n, v in zip(names, point, strict=True)}
            for point in points
        ]


class BayesianSearch:
    def __init__(self, plan: OptimizationPlan, workers: int):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.plan = plan
        cfg = plan.config
        self.max_trials = min(cfg.search.max_trials or plan.total, plan.total)
        self.batch_size = batch_size(max(1, workers), self.max_trials)
        self.primary = cfg.optimization_targets.primary_metric
        self.direction = cfg.optimization_targets.primary_direction()
        self.constraints = cfg.constraints
        self.dists: dict[str, Any] = {}
        self.layout: list[tuple[int, list[str]]] = []  # (dimension position, optuna param names)
        for k, d in enumerate(plan.dims):
            members = d.members if isinstance(d, ComponentDim) else [d]
            for m in members:
                assert isinstance(m, ParamDim)
                self.dists[m.name] = _distribution(m)
            self.layout.append((k, [m.name for m in members]))
        self.sampler = BatchTPESampler(
            self.dists,
            seed=cfg.search.seed,
            constant_liar=True,
            multivariate=True,
            n_startup_trials=min(10, max(2, self.max_trials // 5)),
        )
        self.study = optuna.create_study(
            direction="maximize" if self.direction == Direction.MAXIMIZE else "minimize", sampler=self.sampler
        )
        self.rng = random.Random(cfg.search.seed)
        self.seen: dict[int, dict[str, Any]] = {}  # grid index -> record
        self.order: list[int] = []  # grid indices in the order they were first proposed
        self.ran: list[dict[str, Any]] = []  # payloads of the runs :meth:`run` ran (so far), in trial order
        self.resumed: list[int] = []  # grid indices of stored results not in the study yet
        self.asks = 0  # TPE asks (fits); enqueued random fills and resumed trials are not counted
        self.asking_s = 0.0  # CPU seconds of TPE's work (tells, fits, asks, payloads) in the asker thread
        self.waited_s = 0.0  # seconds a finished batch waited for the asker before the next one could start

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
        value, violation = self._outcome(record)
        if value is None:
            self.study.tell(trial, state=TrialState.FAIL)
            return
        if violation > 0:  # feasible trials carry none: TPE reads each trial's constraints on every fit
            trial.set_constraint("violation", violation)
        self.study.tell(trial, value)

    def _accept(self, index: int, record: dict[str, Any]) -> None:
        self.seen[index] = record
        self.order.append(index)

    # -- resume ---------------------------------------------------------------------------------------
    def resume(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Take stored results of this plan's runs (in the order given, up to ``max_trials``) as finished
        trials, without asking TPE anything.  Returns their payloads.  They join the study when
        :meth:`run` has something to ask: resuming a finished search builds no study at all."""
        used = []
        for record in records:
            if len(self.seen) >= self.max_trials:
                break
            index = record.get("index")
            if not isinstance(index, int) or not 0 <= index < self.plan.total or index in self.seen:
                continue
            payload = self.plan.payload(index)
            if payload["run_id"] != record.get("run_id"):  # another plan's run at this index
                continue
            self._accept(index, record)
            self.resumed.append(index)
            used.append(payload)
        return used

    def _add_resumed(self) -> None:
        trials = []
        for index in self.resumed:
            value, violation = self._outcome(self.seen[index])
            trials.append(
                create_trial(
                    state=TrialState.FAIL if value is None else TrialState.COMPLETE,
                    value=value,
                    params=self._params(index),
                    distributions=self.dists,
                    constraints={"violation": violation} if violation > 0 else None,
                )
            )
        self.study.add_trials(trials)
        self.resumed = []

    # -- the loop -------------------------------------------------------------------------------------
    def _random_unseen(self, taken: Container[int]) -> int | None:
        """A seeded random feasible grid index neither run nor taken (None if none is found)."""
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

    def _propose(self, want: int, limit: int, running: Batch | None = None) -> Batch:
        """Up to ``want`` new grid indices (not run, not ``running``) with their trial and payload.
        Infeasible proposals are told as such; a proposal that repeats a run is told its result and
        replaced by a random unseen point."""
        batch: Batch = {}
        self.sampler.new_batch()
        taken = ChainMap(batch, running or {})  # sees what this loop adds to the batch
        while len(batch) < want and self.asks < limit:
            trial = self.study.ask(self.dists)
            self.asks += 1
            digits = self._digits(trial.params)
            if digits is None:  # violates parameter_constraints: never run
                trial.set_constraint("violation", 1.0)
                self.study.tell(trial, 0.0)
                continue
            index = self.plan.index_of(digits)
            if index not in self.seen and index not in taken:
                batch[index] = (trial, self.plan.payload(index))
                continue
            if index in self.seen:
                self._tell(trial, self.seen[index])
            else:  # running or in this batch already: give up this trial, the other one will be told
                self.study.tell(trial, state=TrialState.FAIL)
            if self.sampler.candidates:  # the next ask takes the fit's next best
                continue
            fill = self._random_unseen(taken)
            if fill is not None:
                self.study.enqueue_trial(self._params(fill))
                batch[fill] = (self.study.ask(self.dists), self.plan.payload(fill))
        return batch

    def _advance(
        self, finished: list[tuple[Any, dict[str, Any]]], want: int, limit: int, running: Batch
    ) -> Batch:
        """Tell the finished batch's results, then ask for the next batch (``want`` runs, not ``running``):
        TPE's part of a step, done in the asker thread while ``running`` runs."""
        started = time.thread_time()
        try:
            for trial, record in finished:
                self._tell(trial, record)
            return self._propose(want, limit, running) if want > 0 and self.asks < limit else {}
        finally:
            self.asking_s += time.thread_time() - started

    def run(self, execute: Execute) -> list[dict[str, Any]]:
        """Ask, run and tell batches until ``max_trials`` trials have results (resumed ones count).
        ``execute(payloads)`` runs a batch and returns {run_id: record}.  Returns the payloads run, in
        trial order.

        Pipelined: while a batch runs, a thread tells TPE the previous batch's results and asks for the
        next batch (the running batch's trials are RUNNING to TPE: the constant liar keeps it away from
        them), so between two batches the pool waits only for what is left of that fit.  The study is only
        touched by one thread at a time, and each batch is asked after the same tells whatever the timing,
        so the trials depend on the seed and the batch size only."""
        ran = self.ran
        limit = ASKS_PER_TRIAL * self.max_trials + 100

        def want(pending: int) -> int:
            return min(self.batch_size, self.max_trials - len(self.seen) - pending)

        if want(0) <= 0:
            return ran
        self._add_resumed()
        batch = self._propose(want(0), limit)
        finished: list[tuple[Any, dict[str, Any]]] = []  # results of the last batch, not told yet
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tpe-ask") as asker:
            while batch:
                following = asker.submit(self._advance, finished, want(len(batch)), limit, batch)
                try:
                    results = execute([payload for _, payload in batch.values()])
                finally:
                    waiting = time.perf_counter()
                    proposed = following.result()
                    self.waited_s += time.perf_counter() - waiting
                finished = []
                for index, (trial, payload) in batch.items():
                    record = results.get(payload["run_id"])
                    if record is not None:  # None: interrupted before this run finished
                        self._accept(index, record)
                        ran.append(payload)
                        finished.append((trial, record))
                if len(finished) < len(batch):
                    break
                batch = proposed
                if not batch and want(0) > 0 and self.asks < limit:
                    batch = self._advance(finished, want(0), limit, {})
                    finished = []
        for trial, record in finished:
            self._tell(trial, record)
        return ran
