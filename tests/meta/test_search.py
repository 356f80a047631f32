"""Search strategies cost what they draw, not what the space holds: random draws and validates only its
trials (seeded, no duplicates, constraints checked per draw); a Bayesian search never re-asks for a point
it has, and resumes from stored results without replaying the study."""

from __future__ import annotations

import threading

import pytest
from optuna.trial import TrialState

from s1mple.meta.planner import plan_file
from s1mple.meta.search import BayesianSearch, batch_size
from s1mple.meta.space import ComponentDim
from s1mple_engine.config import ConfigError

from .conftest import fake_metrics, fake_run, write_spec

# three constrained params of 10,000 values each: a 10^12-point sub-grid nobody can enumerate, times a
# free 100-value sizer fraction
HUGE = """\
optimization_config:
  name: huge
  base_operation: op.yaml
  search: {{strategy: random, max_trials: {trials}, seed: {seed}}}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: 1, end: 10000}}
        slow: {{start: 1, end: 10000}}
    - worker_category: context_workers
      worker_plugin: ema
      parameters:
        period: {{start: 1, end: 10000}}
    - worker_category: planning_workers
      worker_phase: size_planning
      worker_plugin: fixed_fraction_sizer
      parameters:
        fraction: {{start: 0.01, end: 1.0, step: 0.01}}
  parameter_constraints:
    - {constraint}
  max_combinations: 1000000
"""


def huge(base_dir, trials=200, seed=1, constraint="ma_crossover.fast < ma_crossover.slow < ema.period"):
    return plan_file(write_spec(base_dir, HUGE.format(trials=trials, seed=seed, constraint=constraint)))


def test_random_search_over_a_huge_constrained_space_plans_only_its_draws(base_dir):
    plan = huge(base_dir)
    group = next(d for d in plan.dims if isinstance(d, ComponentDim))
    assert group.feasible is None and group.grid_size == 10**12  # never enumerated
    assert plan.total == 10**14 and plan.planned_runs == 200
    payloads = list(plan.payloads())
    assert len({p["run_id"] for p in payloads}) == 200  # no duplicates
    for p in payloads:  # every draw satisfies the constraint
        c = p["configuration"]
        assert c["ma_crossover"]["fast"] < c["ma_crossover"]["slow"] < c["ema"]["period"]
    checked = []

    def validator(bp):
        checked.append(bp)
        return []

    assert plan.validate(validator) == []
    # the drawn configurations only: one structure, then each plugin's drawn settings (<= 200 each)
    assert 200 <= len(checked) <= 1 + 3 * 200


def test_random_search_is_reproducible_by_seed(base_dir):
    a = list(huge(base_dir, seed=4).planned_indices())
    assert a == list(huge(base_dir, seed=4).planned_indices())
    assert a != list(huge(base_dir, seed=5).planned_indices())


def test_random_search_names_a_constraint_almost_nothing_satisfies(base_dir):
    tight = "ma_crossover.fast > 9990 and ema.period < 3"
    with pytest.raises(ConfigError) as exc:
        huge(base_dir, trials=50, constraint=tight).planned_indices()
    text = str(exc.value)
    assert "random draws found only" in text and tight in text and "max_trials" in text


def bayes_spec(
    trials: int, seed: int, fast: tuple[int, int], slow: tuple[int, int], constraint: str = ""
) -> str:
    return f"""\
optimization_config:
  name: bayes
  base_operation: op.yaml
  search: {{strategy: bayesian, max_trials: {trials}, seed: {seed}}}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: {fast[0]}, end: {fast[1]}}}
        slow: {{start: {slow[0]}, end: {slow[1]}}}
""" + (f"  parameter_constraints:\n    - {constraint}\n" if constraint else "")


BAYES = bayes_spec(60, seed=2, fast=(5, 14), slow=(20, 29))
# 4,950 feasible points: TPE proposes infeasible ones (fast >= slow) now and then
LEARN = bayes_spec(
    80, seed=3, fast=(1, 100), slow=(1, 100), constraint="ma_crossover.fast < ma_crossover.slow"
)


def run_batch(log):
    def execute(payloads):
        log.extend(p["run_id"] for p in payloads)
        return {p["run_id"]: fake_run(p) for p in payloads}

    return execute


def test_bayesian_search_never_runs_a_point_twice_and_asks_once_per_new_point(base_dir):
    plan = plan_file(write_spec(base_dir, BAYES))  # 100 points, 60 trials: TPE repeats itself often
    search = BayesianSearch(plan, workers=3)
    ran: list[str] = []
    payloads = search.run(run_batch(ran))
    assert len(payloads) == 60 and len(ran) == 60 and len(set(ran)) == 60
    # a repeated proposal is told and replaced by the fit's next candidate or a random point, not refitted
    assert search.sampler.fits < 60 - 10  # (the first 10 trials are random)


def test_bayesian_resume_adds_no_runs_and_reuses_stored_results(base_dir):
    plan = plan_file(write_spec(base_dir, BAYES))
    first = BayesianSearch(plan, workers=2)
    first.run(run_batch([]))
    stored = [first.seen[i] for i in first.order]

    again = BayesianSearch(plan, workers=2)
    resumed = again.resume(stored)
    ran: list[str] = []
    assert again.run(run_batch(ran)) == [] and ran == [] and again.asks == 0 and again.sampler.fits == 0
    assert [p["run_id"] for p in resumed] == [r["run_id"] for r in stored]
    assert again.study.trials == []  # nothing left to ask: no study built

    # half stored: only the other half runs, and the stored half is not run again
    half = BayesianSearch(plan, workers=2)
    half.resume(stored[:30])
    ran = []
    half.run(run_batch(ran))
    assert len(ran) == 30 and not set(ran) & {r["run_id"] for r in stored[:30]}
    # ... and TPE fitted on the stored half too: they are the study's first 30 trials
    told = [t for t in half.study.trials if t.state.is_finished()]
    assert [t.params for t in told[:30]] == [half._params(r["index"]) for r in stored[:30]]
    assert [t.value for t in told[:30]] == [r["metrics"]["sharpe_ratio"] for r in stored[:30]]


def test_bayesian_resume_ignores_records_of_another_plan(base_dir):
    plan = plan_file(write_spec(base_dir, BAYES))
    other = {**fake_run(plan.payload(3)), "run_id": "not-this-plan"}
    search = BayesianSearch(plan, workers=2)
    assert search.resume([other]) == [] and search.seen == {}


def test_bayesian_trials_do_not_depend_on_how_long_runs_or_asks_take(base_dir):
    """The next batch is asked in a thread while the current one runs; whichever finishes first, the
    trials are the same (each batch is asked after the same tells)."""
    plan = plan_file(write_spec(base_dir, BAYES))

    def trials(asks_first: bool) -> list[str]:
        search = BayesianSearch(plan, workers=3)
        asked, ran = threading.Semaphore(0), threading.Semaphore(0)
        propose = search._propose

        def ask_ahead(want, limit, running=()):
            if running and not asks_first:
                assert ran.acquire(timeout=30)  # the running batch has finished
            batch = propose(want, limit, running)
            if running and asks_first:
                asked.release()
            return batch

        def execute(payloads):
            ahead = search.max_trials - len(search.seen) - len(payloads) > 0  # the next batch is being asked
            if ahead and asks_first:
                assert asked.acquire(timeout=30)  # ... and is asked before this one finishes
            elif ahead:
                ran.release()
            return {p["run_id"]: fake_run(p) for p in payloads}

        search._propose = ask_ahead
        ids = [p["run_id"] for p in search.run(execute)]
        assert search.asking_s > 0 and (asks_first or search.waited_s > 0)  # (asked after: the pool waited)
        return ids

    assert trials(asks_first=True) == trials(asks_first=False)


def test_batched_tpe_still_learns(base_dir):
    """Not random in disguise: after the start-up trials, TPE's proposals concentrate where the metric is
    high (fake sharpe = (slow - fast) / 10 over 4,950 feasible points)."""
    plan = plan_file(write_spec(base_dir, LEARN))
    space = sorted(fake_metrics(plan.payload(i))["sharpe_ratio"] for i in range(plan.total))
    payloads = BayesianSearch(plan, workers=4).run(run_batch([]))
    values = [fake_metrics(p)["sharpe_ratio"] for p in payloads]

    def share_below(v: float) -> float:
        return sum(x < v for x in space) / len(space)

    assert len(values) == 80
    assert share_below(sum(values[-40:]) / 40) > 0.85  # a random sample's mean sits near 0.5
    assert share_below(max(values)) > 0.995


def test_bayesian_search_fits_once_per_batch(base_dir):
    plan = plan_file(write_spec(base_dir, LEARN))
    search = BayesianSearch(plan, workers=4)
    batches: list[list[str]] = []

    def execute(payloads):
        batches.append([p["run_id"] for p in payloads])
        return {p["run_id"]: fake_run(p) for p in payloads}

    search.run(execute)
    ran = [rid for batch in batches for rid in batch]
    # each batch was asked while the previous one ran: none repeats a run, done or running
    assert search.batch_size == 4 and all(len(b) <= 4 for b in batches)
    assert len(ran) == 80 and len(set(ran)) == 80
    # infeasible proposals (fast >= slow) are told and the fit's next candidate taken: one fit per batch
    assert 0 < search.sampler.fits <= 80 / 4


def test_batch_size_keeps_the_pool_busy_and_tpe_fitting():
    assert batch_size(workers=2, max_trials=500) == 12  # a fit's cost spread over 12 runs
    assert batch_size(workers=2, max_trials=40) == 2  # ... but a short search still gets 20 fits
    assert batch_size(workers=16, max_trials=500) == 16  # every pool process gets a run


def test_bayesian_search_tells_a_batch_while_the_next_one_runs(base_dir):
    """TPE hears a batch's results in the asker thread while the pool runs the next batch: between two
    batches the pool waits for no tell (a tell here waits until the batch after its run's has started)."""
    plan = plan_file(write_spec(base_dir, BAYES))
    search = BayesianSearch(plan, workers=3)
    batches: list[set[str]] = []
    progress = threading.Condition()
    tell = search._tell

    def tell_once_the_next_batch_runs(trial, record):
        with progress:
            k = next(k for k, batch in enumerate(batches) if record["run_id"] in batch)
            last = sum(map(len, batches)) == search.max_trials
            assert last or progress.wait_for(lambda: len(batches) > k + 1, timeout=10)
        tell(trial, record)

    def execute(payloads):
        with progress:
            batches.append({p["run_id"] for p in payloads})
            progress.notify_all()
        return {p["run_id"]: fake_run(p) for p in payloads}

    search._tell = tell_once_the_next_batch_runs
    assert len(search.run(execute)) == 60 and len(batches) > 2
    told = search.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert {plan.payload(plan.index_of(search._digits(t.params)))["run_id"] for t in told} == set().union(
        *batches
    )
