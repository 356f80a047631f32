"""The node agent: pods as local processes with kubelet-like statuses."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

from s1mple.executors.apiserver import ApiError, ApiServer
from tests.cluster.fixtures import wait_for
from tests.cluster.test_jobs import (
    IMAGE,
    conditions,
    job_manifest,
    jobs,
    pid_alive,
    pods,
    py,
)

pytestmark = pytest.mark.cluster


def pod_manifest(name: str, script: str | None = None, **spec) -> dict:
    container = {"name": "main", "image": IMAGE, **spec.pop("container", {})}
    if script is not None:
        container["command"] = py(script)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **spec.pop("metadata", {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def wait_phase(api: ApiServer, ns, name, phases=("Succeeded", "Failed"), timeout=120) -> dict:
    return wait_for(
        lambda: (p := api.get(f"{pods(ns)}/{name}"))["status"].get("phase") in phases and p,
        timeout=timeout,
        interval=0.1,
        what=f"pod {ns}/{name} in {phases}",
    )


def wait_gone(api: ApiServer, ns, name, timeout=120) -> None:
    def gone():
        try:
            api.get(f"{pods(ns)}/{name}")
        except ApiError as e:
            return e.status == 404
        return False

    wait_for(gone, timeout=timeout, what=f"pod {ns}/{name} to be deleted")


def test_env_sources_and_isolation(kube_cluster, kube_api, kube_namespace, tmp_path):
    api, ns = kube_api, kube_namespace
    api.create(
        f"/api/v1/namespaces/{ns}/configmaps",
        {"metadata": {"name": "cm"}, "data": {"color": "blue", "size": "7"}},
    )
    api.create(
        f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "sec"}, "stringData": {"TOKEN": "s3cr3t"}}
    )
    script = """
        import json, os, sys
        print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "exe": sys.executable}))
    """
    workdir = tmp_path / "work"
    manifest = pod_manifest(
        "envy",
        script,
        metadata={"labels": {"team": "quant"}, "annotations": {"note": "hi"}},
        container={
            "workingDir": str(workdir),
            "envFrom": [
                {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                {"secretRef": {"name": "sec"}},
                {"configMapRef": {"name": "absent", "optional": True}},
            ],
            "env": [
                {"name": "GREETING", "value": "hello $(CM_color) $$(CM_color) $(UNKNOWN)"},
                {"name": "SIZE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "size"}}},
                {"name": "TOKEN2", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "TOKEN"}}},
                {
                    "name": "OPT",
                    "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}},
                },
                {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
                {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            ],
            "resources": {"limits": {"cpu": "1500m", "memory": "256Mi"}},
        },
    )
    t0 = time.monotonic()
    created = api.create(pods(ns), manifest)
    pod = wait_phase(api, ns, "envy")
    elapsed = time.monotonic() - t0
    out = kube_cluster.node_agent.container_log(ns, "envy")
    assert pod["status"]["phase"] == "Succeeded", out
    info = json.loads(out.strip().splitlines()[-1])
    env = info["env"]
    assert env["CM_color"] == "blue" and env["CM_size"] == "7"
    assert env["TOKEN"] == "s3cr3t" and env["TOKEN2"] == "s3cr3t"
    assert env["GREETING"] == "hello blue $(CM_color) $(UNKNOWN)"
    assert env["SIZE"] == "7"
    assert "OPT" not in env
    assert env["POD_UID"] == created["metadata"]["uid"]
    assert env["TEAM"] == "quant" and env["NOTE"] == "hi"
    assert env["NODE"] == kube_cluster.node_agent.node_name
    assert env["CPU_LIMIT"] == "2"  # ceil(1.5 cores), like the kubelet
    assert env["HOSTNAME"] == "envy"
    assert info["cwd"] == str(workdir)
    # The "image" is the current venv; nothing of the test's environment leaks in.
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert Path(info["exe"]).parent == Path(sys.executable).parent
    assert not [k for k in env if k.startswith("AWS_") or k in ("KUBECONFIG", "S1MPLE_CLUSTER_DIR")]
    assert Path(env["HOME"]).is_dir() and Path(env["HOME"]) != Path.home()
    # Status as a kubelet reports it.
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term.get("reason") == "Completed"
    assert term.get("startedAt") and term.get("finishedAt")
    conds = {c["type"]: c for c in conditions(pod)}
    assert conds["Ready"]["status"] == "False" and conds["Ready"].get("reason") == "PodCompleted"
    assert conds["PodScheduled"]["status"] == "True"
    assert pod["spec"].get("nodeName") == kube_cluster.node_agent.node_name
    assert elapsed < 30, f"pod took {elapsed:.1f}s from creation to completion"


def test_missing_secret_waits_until_created(kube_cluster, kube_api, kube_namespace):
    api, ns = kube_api, kube_namespace
    manifest = pod_manifest(
        "patient",
        "import os; print(os.environ['PW'])",
        container={"env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "later", "key": "pw"}}}]},
    )
    api.create(pods(ns), manifest)

    def config_error():
        p = api.get(f"{pods(ns)}/patient")
        cs = p["status"].get("containerStatuses") or []
        waiting = cs and cs[0]["state"].get("waiting")
        return waiting and waiting.get("reason") == "CreateContainerConfigError" and p

    pod = wait_for(config_error, timeout=60, what="CreateContainerConfigError")
    assert pod["status"]["phase"] == "Pending"
    api.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {"metadata": {"name": "later"}, "stringData": {"pw": "open sesame"}},
    )
    pod = wait_phase(api, ns, "patient")
    assert pod["status"]["phase"] == "Succeeded"
    assert kube_cluster.node_agent.container_log(ns, "patient").strip() == "open sesame"


def test_failed_container_reports_exit_code_and_start_error(kube_cluster, kube_api, kube_namespace):
    api, ns = kube_api, kube_namespace
    api.create(pods(ns), pod_manifest("seven", "import sys; sys.exit(7)"))
    api.create(pods(ns), pod_manifest("nocmd", container={"command": ["no-such-binary-s1mple"]}))
    pod = wait_phase(api, ns, "seven")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], term["exitCode"], term.get("reason")) == ("Failed", 7, "Error")
    pod = wait_phase(api, ns, "nocmd")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], term.get("reason")) == ("Failed", "StartError")
    assert "no-such-binary-s1mple" in kube_cluster.node_agent.container_log(ns, "nocmd")


def test_deleting_pod_kills_its_process_group(kube_cluster, kube_api, kube_namespace):
    api, ns = kube_api, kube_namespace
    agent = kube_cluster.node_agent
    # The main process ignores SIGTERM and has a child: the grace period ends
    # with SIGKILL to the whole process group.
    script = """
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        print("pids", os.getpid(), child.pid, flush=True)
        time.sleep(3600)
    """
    api.create(pods(ns), pod_manifest("stubborn", script, terminationGracePeriodSeconds=2))

    def pids():
        for line in agent.container_log(ns, "stubborn").splitlines():
            if line.startswith("pids "):
                return [int(x) for x in line.split()[1:]]
        return None

    main_pid, child_pid = wait_for(pids, timeout=60, what="the pod's pids")
    assert agent.container_pid(ns, "stubborn") == main_pid
    assert pid_alive(main_pid) and pid_alive(child_pid)
    t0 = time.monotonic()
    api.delete(f"{pods(ns)}/stubborn")
    wait_gone(api, ns, "stubborn")
    assert time.monotonic() - t0 >= 1.5  # it waited for the grace period
    assert not pid_alive(main_pid)
    wait_for(lambda: not pid_alive(child_pid), timeout=10, what="the child process to die")


def test_active_deadline_seconds(kube_cluster, kube_api, kube_namespace):
    api, ns = kube_api, kube_namespace
    api.create(
        pods(ns),
        pod_manifest(
            "slowpoke",
            "import os, time; print('pid', os.getpid(), flush=True); time.sleep(3600)",
            activeDeadlineSeconds=2,
        ),
    )
    pod = wait_phase(api, ns, "slowpoke", timeout=60)
    assert (pod["status"]["phase"], pod["status"].get("reason")) == ("Failed", "DeadlineExceeded")
    pid = kube_cluster.node_agent.container_pid(ns, "slowpoke")
    assert pid and not pid_alive(pid)


def test_on_failure_restarts_in_place(kube_cluster, kube_api, kube_namespace, tmp_path):
    api, ns = kube_api, kube_namespace
    script = f"""
        import pathlib, sys
        m = pathlib.Path({str(tmp_path / "m")!r})
        if not m.exists():
            m.write_text("x")
            sys.exit(3)
    """
    api.create(pods(ns), pod_manifest("phoenix", script, restartPolicy="OnFailure"))
    pod = wait_phase(api, ns, "phoenix", phases=("Succeeded",), timeout=60)
    cs = pod["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 1
    assert cs["lastState"]["terminated"]["exitCode"] == 3


def test_init_containers_and_image_map(kube_cluster, kube_api, kube_namespace, tmp_path):
    api, ns = kube_api, kube_namespace
    agent = kube_cluster.node_agent
    bindir = tmp_path / "image-bin"
    bindir.mkdir()
    tool = bindir / "hello-tool"
    tool.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            echo "tool says $GREETING; init wrote $(cat "$HOME/init.txt")"
            """
        )
    )
    tool.chmod(0o755)
    old = agent.image_map_path.read_text()
    agent.set_image_map(
        {
            "registry.example/hello:*": {
                "path": str(bindir),
                "command": ["hello-tool"],
                "env": {"GREETING": "hi"},
            }
        }
    )
    try:
        manifest = pod_manifest("mapped", container={"image": "registry.example/hello:1.0"})
        manifest["spec"]["initContainers"] = [
            {
                "name": "init",
                "image": IMAGE,
                "command": ["sh", "-c", 'echo from-init > "$HOME/init.txt"'],
            }
        ]
        api.create(pods(ns), manifest)
        pod = wait_phase(api, ns, "mapped")
    finally:
        agent.image_map_path.write_text(old)
    assert pod["status"]["phase"] == "Succeeded", agent.container_log(ns, "mapped")
    assert agent.container_log(ns, "mapped").strip() == "tool says hi; init wrote from-init"
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_eviction_is_a_disruption_for_pod_failure_policy(kube_cluster, kube_api, kube_namespace):
    """The Eviction API's DisruptionTarget condition survives the agent's status
    updates, so podFailurePolicy's Ignore rule does not count the evicted pod."""
    api, ns = kube_api, kube_namespace
    script = "import time; time.sleep(3600)"
    manifest = job_manifest(
        "evictee",
        script,
        backoffLimit=0,
        podFailurePolicy={"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
    )
    api.create(jobs(ns), manifest)

    def running_pod():
        evictees = api.list(pods(ns), label_selector="job-name=evictee")
        return len(evictees) == 1 and evictees[0]["status"].get("phase") == "Running" and evictees[0]

    first = wait_for(running_pod, timeout=60, what="the Job's pod to run")
    first_name = first["metadata"]["name"]
    api.create(
        f"{pods(ns)}/{first_name}/eviction",
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": first_name, "namespace": ns}},
    )
    # The Job ignores the disruption (backoffLimit 0 would fail it otherwise)
    # and creates a replacement pod.
    second = wait_for(
        lambda: (p := running_pod()) and p["metadata"]["uid"] != first["metadata"]["uid"] and p,
        timeout=120,
        what="a replacement pod",
    )
    job = api.get(f"{jobs(ns)}/evictee")
    assert not job["status"].get("failed")
    assert not [c for c in conditions(job) if c["type"] == "Failed" and c["status"] == "True"]
    assert second["metadata"]["name"] != first_name
    api.delete(f"{jobs(ns)}/evictee", propagationPolicy="Background")


def test_ttl_after_finished_deletes_job(kube_cluster, kube_api, kube_namespace):
    """ttlSecondsAfterFinished: the ttl-after-finished controller deletes the Job once it finished.
    With a 1 s TTL a loaded machine may delete it before a poll sees it finished: either is progress."""
    api, ns = kube_api, kube_namespace
    api.create(jobs(ns), job_manifest("brief", "print('done')", ttlSecondsAfterFinished=1))

    def finished_or_gone():
        try:
            job = api.get(f"{jobs(ns)}/brief")
        except ApiError as e:
            return "gone" if e.status == 404 else None
        done = any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions(job))
        return "finished" if done else None

    wait_for(finished_or_gone, timeout=120, interval=0.2, what="the Job to finish (or be deleted already)")
    wait_for(
        lambda: finished_or_gone() == "gone", timeout=120, what="the finished Job to be deleted by its TTL"
    )
