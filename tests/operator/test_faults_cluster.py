"""Faults a real cluster hits, against the real control plane, node agent and MinIO (issue #10).

* runner pods deleted or evicted mid-chunk lose no runs;
* a kube-apiserver restart mid-sweep (a pod finishing while it is down) loses none either;
* a user who may create Optimizations but not read Secrets cannot make the operator (or a pod) hand a
  Secret to a server or image of theirs;
* every hostile spec ends with a clear condition (or a schema rejection), none silent;
* a ~10^9-run space is refused quickly while the operator keeps serving another resource.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.fixtures import wait_for
from tests.operator.harness import (
    ROOT,
    OperatorProcess,
    example,
    get_resource,
    jobs_of,
    kubectl_apply,
    storage_secret,
    wait_for_phase,
)
from tests.operator.test_operator_cluster import same_metrics, stored_result

pytestmark = pytest.mark.cluster

OPT = "config/resources/optimization-ma-crossover.yaml"
TEAM_IMAGE = "registry.example/team-runner:1.0"
PLUGIN_ENV = {"S1MPLE_PLUGINS": "tests.operator.flaky_plugin", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def team_operator(kube_cluster, operator):
    """The operator with the team's plugins (as its image would ship them), allowing the team's image."""
    kube_cluster.node_agent.set_image_map({"registry.example/team-runner:*": {"env": PLUGIN_ENV}})
    operator.stop()
    operator.extra_env = {**PLUGIN_ENV, "S1MPLE_ALLOWED_RUNNER_IMAGES": "registry.example/team-runner"}
    operator.start()
    return operator


def slow_operation(delay: float) -> dict:
    blueprint = {
        "name": "slow",
        "opportunityWorkers": [{"plugin": "slow_crossover", "params": {"delay": delay}}],
        "planningWorkers": {
            "entryPlanning": [{"plugin": "market_entry_immediate"}],
            "exitPlanning": [{"plugin": "opposite_signal_exit"}],
            "sizePlanning": [{"plugin": "fixed_fraction_sizer", "params": {"fraction": 1.0}}],
        },
    }
    return {
        "name": "slow",
        "strategyLinks": [{"blueprint": blueprint}],
        "marketData": {"path": "sample:synthetic_daily"},
        "commission": 0.002,
    }


SLOW_SPACE = [
    {
        "workerCategory": "opportunity_workers",
        "workerPlugin": "slow_crossover",
        "parameters": {"fast": {"values": [5, 10, 15, 20]}, "slow": {"values": [30, 40, 50, 60]}},
    }
]


def slow_doc(namespace: str, bucket: str, cluster, name: str, delay: float) -> dict:
    return {
        "apiVersion": "s1mple.io/v1alpha1",
        "kind": "Optimization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "operation": {"inline": slow_operation(delay)},
            "parameterSpace": SLOW_SPACE,
            # retries 0: a disturbed pod that counted as a failure would fail its index at once
            "parallelConfig": {"maxWorkers": 2, "runsPerPod": 8, "retries": 0, "timeoutPerRun": 60},
            "runner": {"image": TEAM_IMAGE},
            "storage": {
                "uri": f"s3://{bucket}/research",
                "endpoint": cluster.s3_endpoint,
                "credentialsSecretRef": {"name": "s1mple-storage"},
            },
        },
    }


def local_slow_run(delay: float, tmp_path: Path) -> dict:
    """The same sweep through `s1mple optimize`, undisturbed, on this machine."""
    op_path = tmp_path / "slow-operation.yaml"
    op_path.write_text(yaml.safe_dump({"operation": slow_operation(delay)}))
    research = {
        "name": "slow",
        "baseOperation": str(op_path),
        "parameterSpace": SLOW_SPACE,
        "parallelConfig": {"maxWorkers": 2},
    }
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump({"optimization_config": research}))
    out = tmp_path / "local"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "s1mple"), "optimize", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, **PLUGIN_ENV},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "result.json").read_text())


def by_configuration(result: dict) -> dict[str, dict]:
    """Metrics by configuration (an inline operation and the same one in a file can differ in run_id:
    the resolved market-data path is part of it)."""
    return {json.dumps(r["configuration"], sort_keys=True): r["metrics"] for r in result["results"]}


def _pods(kube_cluster, namespace: str) -> list[dict]:
    out = kube_cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    return json.loads(out)["items"]


def _stored_parts(s3_client, bucket: str, prefix: str) -> list[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_deleted_and_evicted_runner_pods_lose_no_runs(
    kube_cluster, kube_api, kube_namespace, s3_bucket, s3_client, team_operator, tmp_path
):
    ns, name, delay = kube_namespace, "disturbed", 1.5
    kubectl_apply(kube_cluster, slow_doc(ns, s3_bucket, kube_cluster, name, delay))
    job = wait_for(lambda: (jobs_of(kube_cluster, ns) or [None])[0], timeout=120, what="the Job")
    plan = job["metadata"]["annotations"]["s1mple.io/plan"]
    results = f"research/{ns}/optimization/{name}/results/{plan}-i"

    disturbed: dict[str, str] = {}  # pod -> how

    def disturb_mid_chunk() -> bool:
        """Each of the two pods, once it has stored part of its chunk: one deleted, one evicted."""
        for pod in _pods(kube_cluster, ns):
            pod_name = pod["metadata"]["name"]
            index = pod["metadata"]["annotations"].get("batch.kubernetes.io/job-completion-index")
            if (
                pod_name in disturbed
                or pod["status"].get("phase") != "Running"
                or index in disturbed.values()
            ):
                continue
            if not _stored_parts(s3_client, s3_bucket, f"{results}{index}-"):
                continue
            if not disturbed:
                kube_cluster.kubectl("delete", "pod", pod_name, "-n", ns, "--wait=false")
            else:  # a drain, a PDB-aware autoscaler, Kueue: the Eviction API
                kube_api.create(
                    f"/api/v1/namespaces/{ns}/pods/{pod_name}/eviction",
                    {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod_name}},
                )
            disturbed[pod_name] = index
        return len(disturbed) == 2

    wait_for(disturb_mid_chunk, timeout=180, interval=0.3, what="two runner pods mid-chunk")
    res = wait_for_phase(
        kube_cluster, "optimizations", ns, name, ("Succeeded", "Failed"), operator=team_operator
    )
    status = res["status"]
    assert status["phase"] == "Succeeded", status
    for pod_name in disturbed:  # each stopped before its chunk was done, and said so
        log = kube_cluster.node_agent.container_log(ns, pod_name, "runner")
        assert "SIGTERM before the chunk was done" in log, log[-2000:]
    local = local_slow_run(delay, tmp_path)
    assert status["counts"]["total"] == local["planned_runs"] == 16
    assert status["counts"]["succeeded"] == local["successful_runs"]
    assert status["counts"]["failed"] == local["failed_runs"]
    assert same_metrics(
        by_configuration(stored_result(s3_client, s3_bucket, status)), by_configuration(local)
    )
    job = jobs_of(kube_cluster, ns)[0]
    assert not job["status"].get("failedIndexes")  # neither disturbance counted against retries: 0


def _pid_alive(pid: int | None) -> bool:
    return pid is not None and Path(f"/proc/{pid}").exists()


def test_an_apiserver_restart_mid_sweep_loses_nothing(
    kube_cluster, kube_namespace, s3_bucket, s3_client, team_operator, tmp_path
):
    """The API server goes away while runner pods work and one finishes during the outage (its final
    status cannot be posted then); once it is back, the sweep ends Succeeded with every run, as if
    nothing had happened."""
    ns, name, delay = kube_namespace, "apiserver-restart", 1.0
    doc = slow_doc(ns, s3_bucket, kube_cluster, name, delay)
    # 4 indexes, 2 pods at a time: the last two start only once the Job controller sees pods finish
    doc["spec"]["parallelConfig"]["runsPerPod"] = 4
    kubectl_apply(kube_cluster, doc)
    agent = kube_cluster.node_agent

    def running_runners() -> dict[str, int]:
        pods = [
            p["metadata"]["name"] for p in _pods(kube_cluster, ns) if p["status"].get("phase") == "Running"
        ]
        pids = {pod: agent.container_pid(ns, pod, "runner") for pod in pods}
        return {pod: pid for pod, pid in pids.items() if _pid_alive(pid)}

    finished_in_outage = False
    for _ in range(3):  # a runner may finish before the API server is down: then the next pods
        working = wait_for(running_runners, timeout=180, what="runner pods at work")
        still = [pid for pid in working.values() if _pid_alive(pid)]  # just before it goes down
        with kube_cluster.cluster.outage("kube-apiserver"):
            # (it stops listening at once: SIGTERM) down until one of those runners is done, so that
            # its pod's final status has nowhere to go yet
            if still:
                wait_for(
                    lambda still=still: any(not _pid_alive(pid) for pid in still),
                    timeout=180,
                    what="a runner finishing while the API server is down",
                )
                finished_in_outage = True
        if finished_in_outage:
            break
    assert finished_in_outage
    res = wait_for_phase(
        kube_cluster, "optimizations", ns, name, ("Succeeded", "Failed"), timeout=300, operator=team_operator
    )
    status = res["status"]
    assert status["phase"] == "Succeeded", status
    local = local_slow_run(delay, tmp_path)
    assert status["counts"]["total"] == local["planned_runs"] == 16
    assert status["counts"]["succeeded"] == local["successful_runs"]
    assert status["counts"]["failed"] == local["failed_runs"] == 0
    assert same_metrics(
        by_configuration(stored_result(s3_client, s3_bucket, status)), by_configuration(local)
    )
    assert len(jobs_of(kube_cluster, ns)) == 1


def test_an_operator_whose_watch_cannot_resume_exits_to_be_restarted(kube_cluster, operator):
    """A watch kopf cannot resume (here: its CRD deleted, as a careless chart upgrade does) must not leave
    the operator running blind (the zombie of nolar/kopf#1276): kopf 1.45 ends the operator, non-zero,
    naming the watch, for its Deployment to restart it (a restarted operator lists everything again).
    Pins that behaviour of the pinned kopf: an upgrade that changed it would fail here."""
    crd = "crd/varianttests.s1mple.io"
    operator.stop()
    operator.extra_args = ["--verbose"]  # kopf says when its watches start
    operator.start()
    started = f"Starting the watch-stream for varianttests.v1alpha1.s1mple.io in '{operator.namespace}'"
    wait_for(lambda: started in operator.log(), timeout=120, what="the watches")
    try:
        kube_cluster.kubectl("delete", crd, "--wait=true", timeout=180)
        wait_for(lambda: operator.proc.poll() is not None, timeout=180, what="the operator to exit")
    finally:
        kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kube_cluster.kubectl("wait", "--for=condition=Established", "--timeout=120s", crd)
    log = operator.log()
    assert operator.proc.returncode != 0, log[-3000:]
    assert f"Watcher for varianttests.v1alpha1.s1mple.io@{operator.namespace} has failed" in log, log[-3000:]


# ---------------------------------------------------------------------------------------- confused deputy
class AttackerS3(http.server.BaseHTTPRequestHandler):
    """A server posing as the attacker's S3 endpoint: records every request it receives."""

    seen: list[str] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(f"{self.command} {self.path}\n{self.headers}\n{body[:4096]!r}")
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _record

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def attacker_s3():
    AttackerS3.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AttackerS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", AttackerS3.seen
    server.shutdown()


def _role_for_research_only(kube_api, ns: str, user: str) -> None:
    """A Role allowing Optimizations and VariantTests, and nothing about Secrets."""
    kube_api.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
        {
            "metadata": {"name": "researcher"},
            "rules": [
                {
                    "apiGroups": ["s1mple.io"],
                    "resources": ["optimizations", "varianttests"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
            ],
        },
    )
    kube_api.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
        {
            "metadata": {"name": "researcher"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "researcher"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


def _condition(cluster, ns: str, name: str) -> dict | None:
    status = get_resource(cluster, "optimizations", ns, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Succeeded"), None)


def _events(cluster, ns: str, name: str) -> list[dict]:
    out = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return json.loads(out)["items"]


def test_a_user_who_cannot_read_secrets_cannot_exfiltrate_one(
    kube_cluster, kube_api, kube_namespace, s3_bucket, operator, attacker_s3
):
    ns, user = kube_namespace, "mallory"
    endpoint, seen = attacker_s3
    # team B's credentials: opted in for s1mple, bound to the real MinIO
    victim = storage_secret(ns, kube_cluster)
    victim["metadata"]["name"] = "team-b-s3"
    kubectl_apply(kube_cluster, victim)
    # an ordinary Secret of team C, never opted in
    kubectl_apply(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "team-c-s3", "namespace": ns},
            "stringData": {"AWS_ACCESS_KEY_ID": "TEAMCKEYID", "AWS_SECRET_ACCESS_KEY": "team-c-secret"},
        },
    )
    _role_for_research_only(kube_api, ns, user)
    can = kube_cluster.kubectl("auth", "can-i", "get", "secrets", "-n", ns, f"--as={user}", check=False)
    assert can.stdout.strip() == "no"

    def attack(name: str, **storage_and_runner) -> dict:
        doc = example(OPT, ns, s3_bucket, kube_cluster)
        doc["metadata"]["name"] = name
        doc["spec"]["storage"].update(storage_and_runner.get("storage", {}))
        if "runner" in storage_and_runner:
            doc["spec"]["runner"] = storage_and_runner["runner"]
        return doc

    # 1. the victim's Secret, sent to the attacker's endpoint
    to_attacker = attack(
        "to-attacker", storage={"endpoint": endpoint, "credentialsSecretRef": {"name": "team-b-s3"}}
    )
    # 2. the victim's Secret, at the right endpoint, into the attacker's image
    into_image = attack(
        "into-image",
        storage={"credentialsSecretRef": {"name": "team-b-s3"}},
        runner={"image": "attacker.example/exfil:1"},
    )
    # 3. a Secret nobody opted in, to the attacker's endpoint
    not_opted_in = attack(
        "not-opted-in", storage={"endpoint": endpoint, "credentialsSecretRef": {"name": "team-c-s3"}}
    )
    for doc in (to_attacker, into_image, not_opted_in):
        proc = kubectl_apply(kube_cluster, doc, f"--as={user}", check=False)
        assert proc.returncode == 0, proc.stderr  # mallory may create Optimizations
    # 4. choosing which keys of a Secret to read is no longer expressible
    custom_keys = attack(
        "custom-keys", storage={"credentialsSecretRef": {"name": "team-c-s3", "accessKeyIdKey": "x"}}
    )
    proc = kubectl_apply(kube_cluster, custom_keys, f"--as={user}", check=False)
    assert proc.returncode != 0 and "accessKeyIdKey" in proc.stderr

    res = wait_for_phase(kube_cluster, "optimizations", ns, "to-attacker", ("Invalid",), operator=operator)
    cond = res["status"]["conditions"][0]
    assert cond["message"].startswith("storage.endpoint: must be the endpoint Secret 'team-b-s3' is bound to")
    res = wait_for_phase(kube_cluster, "optimizations", ns, "into-image", ("Invalid",), operator=operator)
    message = res["status"]["conditions"][0]["message"]
    assert "runner.image: 'attacker.example/exfil:1' may not receive the storage credentials" in message
    assert "--allowed-runner-images" in message
    cond = wait_for(
        lambda: (
            (c := _condition(kube_cluster, ns, "not-opted-in"))
            and c["reason"] == "CredentialsNotUsable"
            and c
        ),
        timeout=120,
        what="CredentialsNotUsable",
    )
    assert "s1mple.io/storage-credentials=true" in cond["message"]
    assert "TEAMC" not in json.dumps(cond) and "AWS_" not in cond["message"].split("needs the keys")[0]
    assert any(e["reason"] == "CredentialsNotUsable" for e in _events(kube_cluster, ns, "not-opted-in"))

    # nothing reached the attacker's server carrying a key, and no Job runs the attacker's image
    leaked = [r for r in seen if kube_cluster.s3_access_key in r or "TEAMCKEYID" in r]
    assert leaked == [], leaked
    images = [
        c["image"] for j in jobs_of(kube_cluster, ns) for c in j["spec"]["template"]["spec"]["containers"]
    ]
    assert "attacker.example/exfil:1" not in images
    assert jobs_of(kube_cluster, ns) == []


def test_a_secret_opted_in_later_recovers_at_once_with_an_event(
    kube_cluster, kube_namespace, s3_bucket, operator
):
    ns = kube_namespace
    secret = storage_secret(ns, kube_cluster)
    del secret["metadata"]["labels"]  # not opted in yet
    kubectl_apply(kube_cluster, secret)
    doc = example(OPT, ns, s3_bucket, kube_cluster)
    name = doc["metadata"]["name"]
    kubectl_apply(kube_cluster, doc)
    wait_for(
        lambda: (c := _condition(kube_cluster, ns, name)) and c["reason"] == "CredentialsNotUsable",
        timeout=120,
        what="CredentialsNotUsable",
    )
    kube_cluster.kubectl("label", "secret", "s1mple-storage", "-n", ns, "s1mple.io/storage-credentials=true")
    res = wait_for_phase(kube_cluster, "optimizations", ns, name, ("Succeeded",), operator=operator)
    assert res["metadata"]["generation"] == 1  # no spec change needed
    reasons = [e["reason"] for e in _events(kube_cluster, ns, name)]
    assert "Recovered" in reasons and "JobCreated" in reasons


# ---------------------------------------------------------------------------------------- hostile specs
@pytest.fixture(scope="module")
def hostile(kube_cluster, kube_api, crds, tmp_path_factory, s3_client):
    """One namespace, bucket and operator for every hostile spec (they run side by side, as in real life)."""
    ns = f"hostile-{int(time.time()) % 100000}"
    kube_api.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    wait_for(lambda: kube_api.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"), timeout=60)
    bucket = ns
    s3_client.create_bucket(Bucket=bucket)
    kubectl_apply(kube_cluster, storage_secret(ns, kube_cluster))
    kubectl_apply(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "broken-operation", "namespace": ns},
            "data": {
                "operation.yaml": "operation:\n  name: x\n  password: hunter2: oops\n",
                "other-key": "1",
            },
        },
    )
    op = OperatorProcess(kube_cluster, ns, tmp_path_factory.mktemp("hostile") / "operator.log")
    op.start()
    yield ns, bucket, op
    op.stop()
    kube_api.delete(f"/api/v1/namespaces/{ns}", propagationPolicy="Background")


def _set(doc: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = doc["spec"]
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = value


_DELETE = object()
#: (id, edits, expected): "schema:<field>" = the API server refuses it naming the field; else
#: (condition reason, text the message must hold, texts it must NOT hold).
HOSTILE = [
    ("image-empty", {"runner.image": ""}, "schema:spec.runner.image"),
    (
        "memory-lots",
        {"runner.resources": {"limits": {"memory": "lots"}}},
        "schema:spec.runner.resources.limits",
    ),
    (
        "cpu-negative",
        {"runner.resources": {"requests": {"cpu": "-1"}}},
        "schema:spec.runner.resources.requests",
    ),
    ("endpoint-not-url", {"storage.endpoint": "not a url"}, "schema:spec.storage.endpoint"),
    ("max-combinations-2e9", {"maxCombinations": 2_000_000_000}, "schema:spec.maxCombinations"),
    (
        "node-selector-key",
        {"runner.nodeSelector": {"bad key!": "x"}},
        ("InvalidSpec", "nodeSelector key", ()),
    ),
    (
        "toleration-exists-value",
        {"runner.tolerations": [{"key": "spot", "operator": "Exists", "value": "yes"}]},
        ("InvalidSpec", "operator Exists matches any value", ()),
    ),
    ("base-operation-dir", {"baseOperation": "config/operations"}, ("InvalidSpec", "is not a file", ())),
    ("base-operation-empty", {"baseOperation": ""}, ("InvalidSpec", "baseOperation", ())),
    (
        "base-operation-absolute",
        {"baseOperation": "/etc/passwd"},
        ("InvalidSpec", "relative path", ("root:",)),
    ),
    (
        "base-operation-dotdot",
        {"baseOperation": "../../../etc/hosts"},
        ("InvalidSpec", "no '..'", ("localhost",)),
    ),
    ("market-data-absolute", {"marketData": "/etc/hostname"}, ("InvalidSpec", "marketData", ())),
    (
        "storage-uri-dotdot",
        {"storage.uri": "s3://BUCKET/../../other"},
        ("InvalidSpec", "'.' and '..' are not allowed", ()),
    ),
    (
        "limits-below-requests",
        {"runner.resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        ("InvalidSpec", "the API server rejected the Job", ()),
    ),
    (
        "service-account-missing",
        {"runner.serviceAccountName": "no-such-account"},
        ("PodsNotCreated", "no-such-account", ()),
    ),
    (
        "market-data-missing",
        {"marketData": "s3://BUCKET/nowhere/GOOG.csv"},
        ("MarketDataMissing", "s3://BUCKET/nowhere/GOOG.csv does not exist", ()),
    ),
    (
        "config-map-broken-yaml",
        {"baseOperation": _DELETE, "operation": {"configMapRef": {"name": "broken-operation"}}},
        ("InvalidSpec", "invalid YAML at line", ("hunter2", "other-key")),
    ),
    (
        "config-map-missing-key",
        {
            "baseOperation": _DELETE,
            "operation": {"configMapRef": {"name": "broken-operation", "key": "nope"}},
        },
        ("InvalidSpec", "no key 'nope'", ("other-key", "operation.yaml")),
    ),
    (
        "inline-blueprint-outside",
        {
            "baseOperation": _DELETE,
            "operation": {
                "inline": {
                    "name": "x",
                    "strategyLinks": [{"blueprint": "/etc/passwd"}],
                    "marketData": {"path": "sample:synthetic_daily"},
                }
            },
        },
        ("InvalidSpec", "strategyLinks.0.blueprint", ("root:",)),
    ),
    (
        "huge-space",
        {
            "parameterSpace": [
                {
                    "workerCategory": "opportunity_workers",
                    "workerPlugin": "ma_crossover",
                    "parameters": {"fast": {"start": 1, "end": 1000}, "slow": {"start": 1001, "end": 2000}},
                },
                {
                    "workerCategory": "planning_workers",
                    "workerPhase": "size_planning",
                    "workerPlugin": "fixed_fraction_sizer",
                    "parameters": {"fraction": {"start": 0.001, "end": 1.0, "step": 0.001}},
                },
            ],
            "parameterConstraints": [],
        },
        ("InvalidSpec", "expands to 1,000,000,000 runs, above the cap", ()),
    ),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_spec_gets_a_clear_answer(kube_cluster, hostile, case):
    ns, bucket, op = hostile
    case_id, edits, expected = case
    doc = example(OPT, ns, bucket, kube_cluster)
    doc["metadata"]["name"] = case_id
    for path, value in edits.items():
        if isinstance(value, str):
            value = value.replace("BUCKET", bucket)
        _set(doc, path, value)
    proc = kubectl_apply(kube_cluster, doc, check=False)
    if isinstance(expected, str):
        assert proc.returncode != 0, f"the API server accepted {case_id}"
        assert expected.split(":", 1)[1] in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    reason, needle, never = expected
    needle = needle.replace("BUCKET", bucket)
    try:
        cond = wait_for(
            lambda: (c := _condition(kube_cluster, ns, case_id)) and c["reason"] == reason and c,
            timeout=120,
            what=f"condition {reason}",
        )
    except TimeoutError:
        raise AssertionError(
            f"{case_id}: {_condition(kube_cluster, ns, case_id)}\n{op.log()[-3000:]}"
        ) from None
    assert needle in cond["message"], cond
    for text in never:
        assert text not in cond["message"], cond
    events = _events(kube_cluster, ns, case_id)
    assert any(e["reason"] == reason and needle in e["message"] for e in events), events
    assert "Traceback" not in op.log()


def test_a_huge_space_is_refused_while_another_resource_runs(
    kube_cluster, kube_namespace, s3_bucket, operator
):
    ns = kube_namespace
    huge = example(OPT, ns, s3_bucket, kube_cluster)
    huge["metadata"]["name"] = "huge"
    huge["spec"]["maxCombinations"] = 200_000  # the most a cluster allows
    huge["spec"].update(next(edits for case_id, edits, _ in HOSTILE if case_id == "huge-space"))
    normal = example(OPT, ns, s3_bucket, kube_cluster)
    kubectl_apply(kube_cluster, huge)
    kubectl_apply(kube_cluster, normal)
    res = wait_for_phase(
        kube_cluster, "optimizations", ns, "huge", ("Invalid",), timeout=120, operator=operator
    )
    assert (
        "expands to 1,000,000,000 runs, above the cap of 200,000" in res["status"]["conditions"][0]["message"]
    )
    done = wait_for_phase(
        kube_cluster, "optimizations", ns, normal["metadata"]["name"], ("Succeeded",), operator=operator
    )
    assert done["status"]["counts"]["succeeded"] > 0
    peak_kb = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{operator.proc.pid}/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )
    )
    assert peak_kb < 600 * 1024, f"operator peaked at {peak_kb // 1024} MB"


def test_a_253_character_name_runs(kube_cluster, kube_namespace, s3_bucket, operator):
    """The API server allows names up to 253 characters; so does the operator."""
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    name = ("a" * 60 + ".") * 4 + "b" * 9
    assert len(name) == 253
    doc["metadata"]["name"] = name
    kubectl_apply(kube_cluster, doc)
    res = wait_for_phase(
        kube_cluster, "optimizations", kube_namespace, name, ("Succeeded",), operator=operator
    )
    assert res["status"]["counts"]["succeeded"] > 0
