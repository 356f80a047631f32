"""Kubernetes objects as data: names, labels, the Indexed Job, and the structural schema generator."""

import re
import time

import pytest

from s1mple.kube import jobs, names
from s1mple.kube.schema import structural_schema
from s1mple.kube.spec import (
    ClusterFields,
    CredentialsSecretRef,
    OperationSource,
    RunnerSpec,
    StorageSpec,
    Toleration,
)
from s1mple_engine.config import ConfigError, parse_model

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    "raw",
    ["simple", "Upper_Case Name!", "x" * 300, "--weird--", "ümlaut/slash", "a" * 62 + "B"],
)
def test_dns_labels_and_label_values_are_valid_and_bounded(raw):
    label = names.dns_label(raw)
    assert DNS_LABEL.match(label) and len(label) <= 63
    value = names.label_value(raw)
    assert LABEL_VALUE.match(value) and len(value) <= 63


def test_sanitised_names_do_not_collide():
    assert names.dns_label("My Strategy") != names.dns_label("my-strategy")
    assert names.dns_label("a" * 100 + "1") != names.dns_label("a" * 100 + "2")
    assert names.dns_label("plain-name") == "plain-name"


def test_job_name_is_deterministic_per_generation_and_fits_pod_names():
    a = names.job_name("Optimization", "x" * 200, "uid-1", 3)
    assert a == names.job_name("Optimization", "x" * 200, "uid-1", 3)
    assert a != names.job_name("Optimization", "x" * 200, "uid-1", 4)
    assert a != names.job_name("Optimization", "x" * 200, "uid-2", 3)
    assert len(a) <= names.JOB_NAME_MAX and DNS_LABEL.match(a)
    # '<job>-<index>-<5 random chars>' for a 5-digit index still fits in a 63 character pod name
    assert len(f"{a}-99999-abcde") <= 63


def _plan(**over):
    base = dict(
        name="opt-demo-g1-abcde",
        namespace="research",
        owner={"kind": "Optimization", "name": "demo", "uid": "u-1", "apiVersion": "s1mple.io/v1alpha1"},
        generation=1,
        total_runs=640,
        runs_per_pod=50,
        max_workers=4,
        timeout_per_run=30,
        retries=2,
        store_uri="s3://bucket/research/optimization/demo",
        plan_id="0123456789abcdef",
        storage=StorageSpec(
            uri="s3://bucket/research",
            endpoint="http://127.0.0.1:9000",
            credentials_secret_ref=CredentialsSecretRef(name="minio-creds"),
        ),
        runner=RunnerSpec(
            node_selector={"pool": "research"},
            tolerations=[Toleration(key="spot", operator="Exists", effect="NoSchedule")],
            service_account_name="runner",
        ),
    )
    base.update(over)
    return jobs.JobPlan(**base)


def test_indexed_job_shape():
    job = jobs.indexed_job(_plan())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == 13  # ceil(640 / 50)
    assert spec["parallelism"] == 4
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["ttlSecondsAfterFinished"] > 0
    owner = job["metadata"]["ownerReferences"][0]
    assert owner == {
        "apiVersion": "s1mple.io/v1alpha1",
        "kind": "Optimization",
        "name": "demo",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailIndex" and rules[0]["onExitCodes"]["values"] == [jobs.EXIT_BAD_MANIFEST]
    # stopped by SIGTERM mid-chunk, or evicted: retried without counting against backoffLimitPerIndex
    assert rules[1] == {
        "action": "Ignore",
        "onExitCodes": {"containerName": "runner", "operator": "In", "values": [4, 143]},
    }
    assert rules[2] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["activeDeadlineSeconds"] == 50 * 30 + jobs.POD_SLACK_SECONDS
    assert pod["nodeSelector"] == {"pool": "research"}
    assert pod["tolerations"] == [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["serviceAccountName"] == "runner"


def test_job_is_restricted():
    pod = jobs.indexed_job(_plan())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_job_env_takes_credentials_from_the_secret_only():
    env = jobs.indexed_job(_plan())["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "minio-creds",
        "key": "AWS_ACCESS_KEY_ID",
    }
    assert "value" not in by_name["AWS_SECRET_ACCESS_KEY"]
    assert by_name["AWS_ENDPOINT_URL"]["value"] == "http://127.0.0.1:9000"


def test_job_labels_are_ours_only():
    job = jobs.indexed_job(_plan())
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert not any(k.startswith(names.TRACKING_LABEL_PREFIXES) for k in labels)
        assert labels["app.kubernetes.io/managed-by"] == "s1mple-operator"
        assert all(LABEL_VALUE.match(v) for v in labels.values())


def test_parallelism_never_exceeds_completions():
    job = jobs.indexed_job(_plan(total_runs=3, runs_per_pod=50, max_workers=8))
    assert job["spec"]["completions"] == 1 and job["spec"]["parallelism"] == 1


def test_runs_per_pod_default_amortises_pod_start():
    assert jobs.runs_per_pod_for(10_000, 2, None) == 5000  # one wave of pods
    assert jobs.runs_per_pod_for(100_000, 2, None) == 50_000  # the default space cap: still one wave
    assert jobs.runs_per_pod_for(1_000_000, 2, None) == jobs.MAX_RUNS_PER_POD
    assert jobs.runs_per_pod_for(3, 8, None) == 1
    assert jobs.runs_per_pod_for(100, 2, 7) == 7


def test_operation_source_needs_exactly_one():
    with pytest.raises(ConfigError, match="exactly one"):
        parse_model({"path": "a.yaml", "configMapRef": {"name": "ops"}}, OperationSource)
    src = parse_model({"configMapRef": {"name": "ops"}}, OperationSource)
    assert src.config_map_ref.key == "operation.yaml"


def test_storage_uri_is_validated():
    with pytest.raises(ConfigError, match="storage.uri"):
        parse_model({"storage": {"uri": "http://not-s3"}}, ClusterFields)


def _walk(schema, path="$"):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def test_structural_schema_rules():
    schema = structural_schema(ClusterFields)
    forbidden = {"$ref", "anyOf", "oneOf", "allOf", "$defs", "title", "default", "const"}
    for path, node in _walk(schema):
        if node.get("x-kubernetes-int-or-string"):  # the one anyOf a structural schema allows
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}] and "type" not in node, path
            node = {k: v for k, v in node.items() if k != "anyOf"}
        assert not forbidden & set(node), (path, forbidden & set(node))
        open_or_int_or_string = {"x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string"}
        assert "type" in node or set(node) & open_or_int_or_string, path
        assert not ("properties" in node and "additionalProperties" in node), path
    props = schema["properties"]
    assert props["storage"]["properties"]["credentialsSecretRef"]["properties"]["name"]["type"] == "string"
    assert props["runner"]["properties"]["nodeSelector"]["additionalProperties"] == {"type": "string"}
    assert schema["required"] == ["storage"]
    # inline operations keep their typed fields; exclusive bounds become OpenAPI v3.0 booleans
    cash = props["operation"]["properties"]["inline"]["properties"]["cash"]
    assert cash["type"] == "number" and cash["minimum"] == 0 and cash["exclusiveMinimum"] is True


def test_status_stays_small_whatever_the_number_of_runs():
    """Worst case: every top entry carries a huge configuration and metrics; status stays <= 32 KiB."""
    import json

    from s1mple.kube.status import TOP_RESULTS, ResearchStatus, RunSummary, bounded, status_patch

    huge = {f"plugin_{i}": {f"param_{j}": "x" * 50 for j in range(20)} for i in range(20)}
    metrics = {f"metric_{i}": 1.234567890123 for i in range(200)}
    entry = RunSummary(run_id="f" * 16, name="v" * 100, configuration=bounded(huge), metrics=bounded(metrics))
    status = ResearchStatus(
        phase="Succeeded",
        observed_generation=7,
        conditions=[
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Completed",
                "message": "m" * 1024,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        progress="100000/100000",
        counts={"total": 100_000, "succeeded": 99_000, "failed": 1_000},
        best="sharpe_ratio=2.45",
        best_configuration=entry,
        top_results=[entry] * TOP_RESULTS,
        comparative_analysis={f"k{i}": "v" * 100 for i in range(5)},
        results={"manifest": "s3://b/" + "p" * 500, "table": "s3://b/t", "summary": "s3://b/s"},
    )
    assert len(json.dumps(status_patch(status))) <= 32 * 1024
    assert bounded(huge).get("_truncated") is True


def test_only_resources_in_flight_get_ticks():
    from s1mple.kube.reconcile import in_flight

    assert in_flight({}, 1)  # never planned
    assert in_flight({"observedGeneration": 1, "phase": "Running"}, 1)
    assert not in_flight({"observedGeneration": 1, "phase": "Succeeded"}, 1)
    assert not in_flight({"observedGeneration": 2, "phase": "Invalid"}, 2)
    assert in_flight({"observedGeneration": 1, "phase": "Succeeded"}, 2)  # spec edited: plan again


def test_progress_tally_counts_each_run_once_by_the_aggregators_rule():
    from s1mple.kube.research import Tally
    from s1mple.meta.aggregation import latest_by_run_id

    records = [
        ("a", "failed"),
        ("b", "ok"),
        ("a", "ok"),  # a retry that succeeded: a is ok now
        ("b", "timeout"),  # a later failure never replaces a success
        ("c", "timeout"),
        ("c", "failed"),
        ("x", "ok"),  # not in this plan
    ]
    tally = Tally({"a", "b", "c"})
    for rid, status in records:
        tally.add(rid, status)
    latest = latest_by_run_id({"run_id": r, "status": s} for r, s in records if r != "x")
    assert tally.status == {r: rec["status"] for r, rec in latest.items()}
    assert (len(tally.status), tally.ok) == (3, 2)


def test_a_broken_stored_manifest_is_storage_trouble_naming_the_way_out(tmp_path):
    from s1mple.kube.research import stored_layout
    from s1mple_engine.store import FileStore, StoreError

    store = FileStore(tmp_path)
    store.put_bytes("plans/p1/manifest.json", b"{not json")
    with pytest.raises(StoreError, match=r"manifest.json: unreadable.*delete .*plans/p1/ to have this plan"):
        stored_layout(store, "p1")


def test_storage_trouble_backs_off_instead_of_planning_every_tick():
    from s1mple.kube import reconcile as rec
    from s1mple.kube.research import ResourceRef
    from s1mple.kube.state import ReconcileState
    from s1mple.kube.status import ResearchStatus

    ref = ResourceRef("Optimization", "ns", "backoff", "uid-backoff", 1)
    state = ReconcileState()
    first = rec._retry_later(ref, ResearchStatus(), state, "StorageUnavailable", "cannot reach s3://b at http://x")
    assert first.storage_trouble and first.status["conditions"][0]["reason"] == "StorageUnavailable"
    # inside the backoff the tick does nothing at all: no planning, no cluster call (None would raise)
    assert rec.reconcile(ref, {}, {}, rec.Context(cluster=None, state=state)) == rec.Outcome()
    waits = []
    for _ in range(8):
        rec._retry_later(ref, ResearchStatus(), state, "StorageUnavailable", "again")
        failures, retry_at = state.failures[(ref.uid, ref.generation)]
        waits.append(round(retry_at - time.monotonic()))
    assert waits[:5] == [2, 5, 10, 30, 60] and waits[-1] == 60  # grows, then stays at a minute


def test_overfit_risk_condition_follows_the_validation_verdict():
    from s1mple.kube.status import overfit_condition, validation_summary

    risky = validation_summary(
        {
            "deflated_sharpe": {"dsr": 0.31},
            "pbo": {"pbo": 0.62},
            "overfit_risk": True,
            "verdict": "Overfit risk: PBO 0.62",
        }
    )
    assert (risky.pbo, risky.dsr, risky.overfit_risk) == (0.62, 0.31, True)
    cond = overfit_condition(risky, 3, [])
    assert (cond.type, cond.status, cond.reason, cond.message) == (
        "OverfitRisk",
        "True",
        "OverfitRisk",
        "Overfit risk: PBO 0.62",
    )
    old = [{"type": "OverfitRisk", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    assert overfit_condition(risky, 4, old).last_transition_time == "2026-01-01T00:00:00Z"
    fine = validation_summary({"deflated_sharpe": {"dsr": 0.99}, "pbo": {"pbo": None}, "overfit_risk": False})
    assert overfit_condition(fine, 4, old).status == "False"
    assert overfit_condition(fine, 4, old).last_transition_time != "2026-01-01T00:00:00Z"
    assert validation_summary(None) is None


def test_finishing_with_overfit_risk_sets_the_condition_and_warns(monkeypatch):
    """_finish over an aggregate whose validation says overfit risk: status.validation, the OverfitRisk
    condition next to Succeeded, and a Warning Event (the aggregation itself is tested in tests/meta)."""
    from types import SimpleNamespace

    from s1mple.kube import reconcile as rec
    from s1mple.kube.research import Aggregate, ResourceRef
    from s1mple.kube.status import ResearchStatus, validation_summary

    verdict = (
        "Overfit risk: PBO 0.70: the in-sample best ranked in the bottom half out of sample in 70% of splits."
    )
    validation = validation_summary(
        {"deflated_sharpe": {"dsr": 0.8}, "pbo": {"pbo": 0.7}, "overfit_risk": True, "verdict": verdict}
    )
    result = Aggregate(
        12, 0, 0, None, "sharpe_ratio=1.2", [], None, "s3://b/t", "s3://b/s", validation=validation
    )
    monkeypatch.setattr(rec, "aggregate", lambda planned: result)  # it forgets the plan's state itself
    ref = ResourceRef("Optimization", "ns", "sweep", "uid-overfit", 2)
    planned = SimpleNamespace(total=12)
    outcome = rec._finish(ref, ResearchStatus(), planned, rec.NO_JOB)
    status = outcome.status
    assert status["phase"] == "Succeeded"
    assert status["validation"] == {"pbo": 0.7, "dsr": 0.8, "overfitRisk": True, "verdict": verdict}
    types = [c["type"] for c in status["conditions"]]
    assert types[-1] == "OverfitRisk" and "Succeeded" in types  # next to the kstatus conditions
    risk = status["conditions"][-1]
    assert risk["status"] == "True" and risk["observedGeneration"] == 2
    assert [(e.type, e.reason) for e in outcome.events] == [
        ("Normal", "Completed"),
        ("Warning", "OverfitRisk"),
    ]
    assert outcome.events[1].message == verdict
