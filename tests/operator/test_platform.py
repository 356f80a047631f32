"""Platform integration as data: kstatus conditions, the Queued phase, Kueue/scheduling fields of the Job,
label validation, and the metric arithmetic (the real-cluster behaviour is in test_platform_cluster.py)."""

from __future__ import annotations

import pytest

from s1mple.executors.kubernetes import JobState
from s1mple.kube import jobs, monitoring
from s1mple.kube.reconcile import Event, Outcome
from s1mple.kube.research import ResourceRef
from s1mple.kube.spec import KUEUE_QUEUE_LABEL, RunnerSpec
from s1mple.kube.status import Phase, conditions_for
from s1mple_engine.config import ConfigError, parse_model
from tests.operator.test_kube_objects import _plan


def _by_type(conditions):
    return {c.type: c for c in conditions}


@pytest.mark.parametrize(
    "phase,succeeded,ready,reconciling,stalled",
    [
        (None, "Unknown", "False", "True", "False"),
        (Phase.QUEUED, "Unknown", "False", "True", "False"),
        (Phase.RUNNING, "Unknown", "False", "True", "False"),
        (Phase.SUCCEEDED, "True", "True", "False", "False"),
        (Phase.FAILED, "False", "False", "False", "True"),
        (Phase.INVALID, "False", "False", "False", "True"),
    ],
)
def test_kstatus_conditions_follow_the_phase(phase, succeeded, ready, reconciling, stalled):
    got = _by_type(conditions_for(phase, "JobRejected", "the server said no", 7, []))
    assert [got[t].status for t in ("Succeeded", "Ready", "Reconciling", "Stalled")] == [
        succeeded,
        ready,
        reconciling,
        stalled,
    ]
    assert {c.observed_generation for c in got.values()} == {7}
    # the step's reason and message ride on every condition that is "on"; Ready always says why
    assert got["Ready"].reason == "JobRejected" and got["Ready"].message == "the server said no"
    loud = "Stalled" if stalled == "True" else "Reconciling" if reconciling == "True" else None
    if loud:
        assert got[loud].reason == "JobRejected" and got[loud].message == "the server said no"


def test_condition_messages_are_one_line():
    got = conditions_for(Phase.INVALID, "InvalidSpec", "2 problems:\n  - a: bad\n  - b: worse\n", 1, [])
    assert {c.message for c in got if c.status == "True" or c.type == "Ready"} == {
        "2 problems: - a: bad - b: worse"
    }


def test_condition_transition_time_moves_only_when_its_status_changes():
    running = conditions_for(Phase.RUNNING, "Running", "Job j: 4 runs", 1, [])
    previous = [
        {**c.model_dump(by_alias=True), "lastTransitionTime": "2020-01-01T00:00:00Z"} for c in running
    ]
    done = _by_type(conditions_for(Phase.SUCCEEDED, "Completed", "4 runs succeeded", 1, previous))
    assert done["Stalled"].last_transition_time == "2020-01-01T00:00:00Z"  # False before and after
    assert done["Ready"].last_transition_time != "2020-01-01T00:00:00Z"  # False -> True


def test_a_queue_name_labels_the_job_and_creates_it_suspended():
    job = jobs.indexed_job(_plan(runner=RunnerSpec(queue_name="research")))
    assert job["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "research"
    assert job["spec"]["suspend"] is True
    plain = jobs.indexed_job(_plan())
    assert "suspend" not in plain["spec"] and KUEUE_QUEUE_LABEL not in plain["metadata"]["labels"]


def test_scheduling_fields_reach_the_pod_and_our_labels_stay():
    runner = parse_model(
        {
            "labels": {"team": "quant", "app.kubernetes.io/part-of": "research"},
            "annotations": {"example.com/cost-centre": "42"},
            "priorityClassName": "research-low",
            "imagePullSecrets": [{"name": "registry"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        },
        RunnerSpec,
    )
    job = jobs.indexed_job(_plan(runner=runner))
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "quant"
    assert template["metadata"]["labels"]["s1mple.io/generation"] == "1"
    assert template["metadata"]["annotations"] == {"example.com/cost-centre": "42"}
    pod = template["spec"]
    assert pod["priorityClassName"] == "research-low"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["affinity"] == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}


@pytest.mark.parametrize(
    "completions,given,expected",
    [(13, None, 4), (1, None, 1), (4, None, 1), (100, None, 25), (13, 2, 2), (13, 50, 13)],
)
def test_max_failed_indexes_default_is_a_quarter_and_never_above_completions(completions, given, expected):
    plan = _plan(total_runs=completions * 50, max_failed_indexes=given)
    assert plan.completions == completions
    assert jobs.indexed_job(plan)["spec"]["maxFailedIndexes"] == expected


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("labels", {"bad key": "x"}, "key 'bad key'"),
        ("labels", {"team": "x" * 64}, "at most 63"),
        ("labels", {"team": "has space"}, "value 'has space'"),
        ("labels", {"s1mple.io/generation": "9"}, "prefix the controller sets"),
        ("labels", {KUEUE_QUEUE_LABEL: "q"}, "runner.queueName"),
        ("labels", {"Example.com/x": "y"}, "lowercase DNS subdomain"),
        ("annotations", {"x" * 64: "y"}, "1-63 characters"),
        ("annotations", {"big": "x" * 200_000}, "bytes in all"),
        ("queueName", "Not A Queue", "queueName"),
        ("priorityClassName", "UPPER", "priorityClassName"),
    ],
)
def test_runner_metadata_is_validated_before_anything_is_created(field, value, needle):
    with pytest.raises(ConfigError) as err:
        parse_model({field: value}, RunnerSpec)
    assert needle in str(err.value)
    assert field in str(err.value) or field == "queueName"


def test_a_suspended_job_reads_as_suspended():
    job = {"metadata": {"name": "j"}, "spec": {"suspend": True}, "status": {}}
    assert JobState.from_job(job).suspended is True
    job["spec"]["suspend"] = False
    assert JobState.from_job(job).suspended is False


@pytest.mark.parametrize(
    "before,after,expected",
    [
        # progress within a generation: the growth is counted
        (
            {"observedGeneration": 1, "counts": {"succeeded": 2, "failed": 0}},
            {"observedGeneration": 1, "counts": {"succeeded": 5, "failed": 1}},
            (4, 1),
        ),
        # a new generation starts from what storage already holds: not new runs
        (
            {"observedGeneration": 1, "counts": {"succeeded": 12, "failed": 0}},
            {"observedGeneration": 2, "counts": {"succeeded": 12, "failed": 0}},
            (0, 0),
        ),
        ({"observedGeneration": 1, "counts": {"succeeded": 3}}, None, (0, 0)),  # nothing changed
        ({"observedGeneration": 1}, {"conditions": []}, (0, 0)),  # a storage-trouble patch
        (
            {"observedGeneration": 1, "counts": {"succeeded": 5}},
            {"observedGeneration": 1, "counts": {"succeeded": 4}},
            (0, 0),
        ),
    ],
)
def test_run_deltas(before, after, expected):
    assert monitoring.run_deltas(before, after) == expected


def test_phase_counts():
    phases = {
        "a": ("Optimization", "Running"),
        "b": ("Optimization", "Running"),
        "c": ("VariantTest", "Failed"),
    }
    assert monitoring.phase_counts(phases) == {("Optimization", "Running"): 2, ("VariantTest", "Failed"): 1}


def test_each_step_is_one_log_line_naming_the_resource(caplog):
    ref = ResourceRef(kind="Optimization", namespace="research", name="grid", uid="u", generation=2)
    outcome = Outcome(
        events=[Event("Normal", "Planned", "12 runs"), Event("Normal", "JobCreated", "Job j")],
        aggregation_seconds=None,
    )
    with caplog.at_level("INFO", logger="s1mple.operator"):
        monitoring.observe(ref, {}, outcome)
    lines = [r for r in caplog.records if r.name == "s1mple.operator"]
    assert [r.getMessage() for r in lines] == [
        "Optimization research/grid generation 2: Planned: 12 runs",
        "Optimization research/grid generation 2: JobCreated: Job j",
    ]
    assert [r.step for r in lines] == ["Planned", "JobCreated"]
