"""The reconcile state machine step by step, with a file store and a fake cluster (pure logic).

Each tick is :func:`s1mple.kube.reconcile.reconcile` as the kopf timer calls it; the "pods" are the
runner's own :func:`~s1mple_engine.runner.run_chunk` over the stored plan.  That the same steps work
against a real API server, Job controller and MinIO is shown by tests/operator/*_cluster.py.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from s1mple.executors.apiserver import ApiError
from s1mple.executors.kubernetes import JobState
from s1mple.kube import reconcile as rec
from s1mple.kube.research import ResourceRef
from s1mple.kube.state import ReconcileState
from s1mple_engine.runner import run_chunk
from s1mple_engine.store import FileStore, StoreError

ROOT = Path(__file__).resolve().parents[2]


class FakeCluster:
    """The six calls of the reconcile step's :class:`~s1mple.kube.reconcile.Cluster`, in memory."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.config_maps: dict[tuple[str, str], str] = {}
        self.pod_failure: str | None = None

    def ensure_job(self, job: dict[str, Any]) -> bool:
        name = job["metadata"]["name"]
        if name in self.jobs:
            return False
        self.jobs[name] = copy.deepcopy(job)
        return True

    def read_job(self, namespace: str, name: str) -> JobState | None:
        job = self.jobs.get(name)
        return None if job is None else JobState.from_job(job)

    def retire_jobs(self, namespace: str, owner_uid: str, keep: str) -> list[str]:
        retired = [n for n, j in self.jobs.items() if n != keep and _owner(j) == owner_uid]
        for name in retired:
            del self.jobs[name]
        return retired

    def read_config_map_key(self, namespace: str, name: str, key: str) -> str:
        if (name, key) not in self.config_maps:
            raise ApiError(404, "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}", "not found")
        return self.config_maps[(name, key)]

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def pod_creation_failure(self, namespace: str, job_name: str) -> str | None:
        return self.pod_failure

    # -- what the Job controller and the pods do ------------------------------------------------------
    def run_pods(self, store: FileStore, name: str, indexes: list[int] | None = None) -> None:
        """The Job's pods (``indexes``: some of them; default all, and the Job completes) run their
        chunks into the store."""
        job = self.jobs[name]
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        plan_id = args[args.index("--plan") + 1]
        completions = job["spec"]["completions"]
        for index in range(completions) if indexes is None else indexes:
            run_chunk(store, plan_id, index, timeout=60)
        if indexes is None:
            self.set_status(name, {"succeeded": completions, "conditions": [_true("Complete")]})

    def set_status(self, name: str, status: dict[str, Any]) -> None:
        self.jobs[name]["status"] = status


def _owner(job: dict[str, Any]) -> str | None:
    return next((o["uid"] for o in job["metadata"].get("ownerReferences") or []), None)


def _true(kind: str) -> dict[str, str]:
    return {"type": kind, "status": "True"}


def _spec() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "config/resources/optimization-ma-crossover.yaml").read_text())
    spec = doc["spec"]
    del spec["storage"]["credentialsSecretRef"]
    return spec


class Resource:
    """One resource as the API server keeps it: its spec and the status the ticks patch."""

    def __init__(self, tmp_path: Path, cluster: FakeCluster, state: ReconcileState | None = None):
        self.ref = ResourceRef("Optimization", "research", "sweep", "uid-1", 1)
        self.spec, self.status = _spec(), {}
        self.cluster, self.state = cluster, state or ReconcileState()
        self.root = tmp_path / "store"
        self.opened: list[str] = []
        self.ctx = rec.Context(cluster, self.state, self.open_store)

    def open_store(self, ref: ResourceRef, spec: Any, cluster: Any) -> FileStore:
        self.opened.append(spec.storage.uri)
        return FileStore(self.root / ref.namespace / ref.name)

    @property
    def store(self) -> FileStore:
        return FileStore(self.root / self.ref.namespace / self.ref.name)

    def tick(self) -> rec.Outcome:
        outcome = rec.reconcile(self.ref, self.spec, self.status, self.ctx)
        for key, value in (outcome.status or {}).items():  # a JSON merge patch at the top level
            if value is None:
                self.status.pop(key, None)
            else:
                self.status[key] = value
        return outcome

    def reason(self) -> str:
        return self.status["conditions"][0]["reason"]


@pytest.fixture
def resource(tmp_path, monkeypatch) -> Resource:
    monkeypatch.setenv("S1MPLE_CONFIG_ROOT", str(ROOT))
    monkeypatch.setattr(rec, "PROGRESS_EVERY", 0.0)  # every follow tick may patch progress
    return Resource(tmp_path, FakeCluster())


def test_plan_start_follow_finish(resource):
    cluster = resource.cluster
    started = resource.tick()  # plan: validate, write the plan to the store, create the Job
    assert resource.status["phase"] == "Running"
    assert [e.reason for e in started.events] == ["Planned", "JobCreated"]
    job_name = resource.status["jobName"]
    assert list(cluster.jobs) == [job_name]
    assert resource.status["counts"]["total"] == 12 and resource.status["progress"] == "0/12"
    assert resource.store.exists(resource.status["results"]["manifest"].split("/sweep/", 1)[1])
    assert resource.opened == ["s3://s1mple-results/research"]  # the injected store, nothing else

    cluster.set_status(job_name, {"active": 2})
    resource.tick()  # follow: two pods run
    assert resource.status["counts"]["running"] == 2 and resource.status["progress"] == "0/12"
    assert resource.tick().status is None  # nothing new in storage or in the Job: nothing to patch
    assert cluster.jobs[job_name]["spec"]["completions"] == 3  # 4 runs a pod
    cluster.run_pods(resource.store, job_name, [0])
    cluster.set_status(job_name, {"active": 2, "succeeded": 1})
    resource.tick()
    assert resource.status["phase"] == "Running" and resource.status["progress"] == "4/12"

    cluster.run_pods(resource.store, job_name)  # the rest: the Job completes
    finished = resource.tick()
    assert resource.status["phase"] == "Succeeded"
    assert resource.status["counts"]["succeeded"] + resource.status["counts"]["failed"] == 12
    assert resource.status["bestConfiguration"]["configuration"]["ma_crossover"]
    assert [e.reason for e in finished.events][0] == "Completed"
    assert resource.store.exists("results.parquet") and resource.store.exists("result.json")
    assert resource.tick() == rec.Outcome()  # terminal: no more work for this generation
    # what a generation kept is gone once it finished (the part cache of its store included)
    assert not resource.state.followed and not resource.state.tallies and not resource.state.parts
    resource.state.forget_resource(resource.ref.uid)
    assert resource.state.size() == 0


def test_the_report_is_built_once_the_records_are_dropped_and_the_reruns_leave_nothing(resource, monkeypatch):
    """A long-lived controller must not creep from sweep to sweep: the report (page, runs table, re-run
    curves) is built once nothing holds the generation's records or part cache, and the market data and
    features its re-runs loaded are not kept after it."""
    import gc

    from s1mple.kube.research import StoredRecords
    from s1mple.meta.service import Sweep
    from s1mple_engine import data, features

    at_report = []
    write_report = Sweep.write_report

    def spy(self: Sweep, frame: Any = None) -> str | None:
        gc.collect()
        records = [o for o in gc.get_objects() if isinstance(o, StoredRecords)]
        at_report.append((len(records), len(resource.state.parts), len(resource.state.followed)))
        return write_report(self, frame)

    monkeypatch.setattr(Sweep, "write_report", spy)
    resource.tick()
    job_name = resource.status["jobName"]
    resource.cluster.run_pods(resource.store, job_name, [0])
    resource.tick()  # progress: the part cache holds what the first pod wrote
    assert resource.state.parts and resource.state.followed
    resource.cluster.run_pods(resource.store, job_name)  # the pods ran here: the engine caches are full
    assert data._CACHE and features._MEMO
    resource.tick()
    assert resource.status["phase"] == "Succeeded" and resource.status["results"]["report"]
    assert at_report == [(0, 0, 0)]  # one report, built with no record and no part cache held
    assert not data._CACHE and not features._MEMO


def test_a_deleted_job_is_recreated_and_a_new_generation_supersedes_the_old_one(resource):
    cluster = resource.cluster
    resource.tick()
    first = resource.status["jobName"]
    del cluster.jobs[first]  # deleted behind the controller's back
    out = resource.tick()
    assert [e.reason for e in out.events] == ["JobRecreated"] and list(cluster.jobs) == [first]

    resource.spec["parameterSpace"][0]["parameters"]["fast"]["values"] = [5, 10, 15, 20, 25]
    resource.ref = ResourceRef(**{**resource.ref.__dict__, "generation": 2})
    out = resource.tick()
    assert [e.reason for e in out.events] == ["Superseded", "Planned", "JobCreated"]
    assert list(cluster.jobs) == [resource.status["jobName"]] != [first]
    assert resource.status["observedGeneration"] == 2 and resource.status["counts"]["total"] == 15


def test_an_invalid_spec_is_invalid_naming_the_field_and_gets_no_job(resource):
    resource.spec["parallelConfig"]["maxWorkers"] = "many"
    out = resource.tick()
    assert resource.status["phase"] == "Invalid" and resource.reason() == "InvalidSpec"
    assert "parallelConfig.maxWorkers" in resource.status["conditions"][0]["message"]
    assert [e.reason for e in out.events] == ["InvalidSpec"] and not resource.cluster.jobs
    assert resource.tick() == rec.Outcome()  # until the spec changes


def test_a_config_error_found_while_following_is_invalid_not_storage_trouble(resource):
    """The spec's ConfigMap disappears after the Job started: the spec's fault, not StorageUnavailable."""
    operation = (ROOT / "config/operations/ma_crossover.yaml").read_text()
    resource.cluster.config_maps[("ops", "operation")] = operation
    del resource.spec["baseOperation"]
    resource.spec["operation"] = {"configMapRef": {"name": "ops", "key": "operation"}}
    resource.tick()
    assert resource.status["phase"] == "Running"
    resource.state.followed.clear()  # as after a restart: the plan is rebuilt from the spec
    resource.cluster.config_maps.clear()
    resource.tick()
    assert resource.status["phase"] == "Invalid"
    assert "configMapRef: cannot read ConfigMap 'ops'" in resource.status["conditions"][0]["message"]


def test_storage_trouble_is_storage_unavailable_with_back_off_and_recovery(resource, monkeypatch):
    def unreachable(ref, spec, cluster):
        raise StoreError("cannot reach s3://s1mple-results/research at endpoint http://127.0.0.1:9")

    resource.ctx = rec.Context(resource.cluster, resource.state, unreachable)
    out = resource.tick()
    assert resource.reason() == "StorageUnavailable" and out.storage_trouble
    assert resource.tick() == rec.Outcome()  # backing off: the next tick does not even plan
    assert not resource.cluster.jobs
    resource.state.failures.clear()  # the back-off is over, the storage is back
    resource.ctx = rec.Context(resource.cluster, resource.state, resource.open_store)
    out = resource.tick()
    assert resource.status["phase"] == "Running" and resource.reason() == "Running"


def test_an_unreachable_api_server_is_a_transient_condition(resource):
    resource.tick()

    def down(namespace, name):
        raise ApiError(0, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", "connection refused")

    resource.cluster.read_job = down
    out = resource.tick()
    assert resource.reason() == "ApiServerUnavailable" and resource.status["phase"] == "Running"
    assert [e.reason for e in out.events] == ["ApiServerUnavailable"]


def test_a_programming_error_is_logged_with_its_traceback_and_a_reconcile_error(resource, caplog):
    resource.tick()
    resource.cluster.read_job = lambda namespace, name: None.active  # a bug, not trouble outside
    with caplog.at_level(logging.ERROR, logger="s1mple.kube.reconcile"):
        out = resource.tick()
    assert resource.reason() == "ReconcileError" and out.storage_trouble
    assert "AttributeError" in resource.status["conditions"][0]["message"]
    assert [r.exc_info is not None for r in caplog.records] == [True]
    assert resource.tick() == rec.Outcome()  # back-off, as for any trouble

    resource.state.failures.clear()
    resource.cluster.read_job = FakeCluster.read_job.__get__(resource.cluster)  # fixed
    stale = resource.tick()
    assert resource.reason() == "Running" and [e.reason for e in stale.events] == ["Recovered"]


def test_pods_that_cannot_be_created_are_said_within_a_tick(resource):
    resource.tick()
    resource.cluster.pod_failure = 'serviceaccount "nope" not found'
    resource.tick()
    assert resource.reason() == "PodsNotCreated" and "nope" in resource.status["conditions"][0]["message"]


def test_a_deleted_resource_leaves_nothing_behind(resource):
    resource.tick()
    resource.tick()  # following: the plan and its tally are remembered
    assert resource.state.followed and resource.state.size() > 0
    resource.state.forget_resource(resource.ref.uid)
    assert resource.state.size() == 0


def test_a_queued_job_waits_for_admission_then_runs(resource):
    resource.spec["runner"] = {"queueName": "research"}
    out = resource.tick()
    job_name = resource.status["jobName"]
    assert resource.status["phase"] == "Queued"
    assert [e.reason for e in out.events] == ["Planned", "JobCreated"]
    assert resource.cluster.jobs[job_name]["spec"]["suspend"] is True
    assert resource.tick() == rec.Outcome()  # suspended: nothing runs, storage is not even read
    resource.cluster.jobs[job_name]["spec"]["suspend"] = False  # Kueue admits it
    out = resource.tick()
    assert resource.status["phase"] == "Running" and [e.reason for e in out.events] == ["Admitted"]
