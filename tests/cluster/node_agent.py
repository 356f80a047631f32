#!/usr/bin/env python3
"""Node agent: a minimal kubelet stand-in that runs pods as local processes.

There is no container runtime on the test machines, so this agent is the one
stand-in of the test cluster (everything else is the real control plane).  It

* registers a Ready Node and renews its Lease (kube-node-lease),
* binds pending pods (spec.nodeName empty, default scheduler, no scheduling
  gates, nodeSelector matching the node's labels) via pods/binding,
* runs each bound pod's init containers, then its containers, as local
  processes (``command`` + ``args``, ``env`` with valueFrom fieldRef /
  secretKeyRef / configMapKeyRef / resourceFieldRef, ``envFrom``,
  ``workingDir``), each in its own process group,
* reports phase Pending -> Running -> Succeeded/Failed with container states
  (exitCode, reason, startedAt, finishedAt) and pod conditions, so the Job
  controller's podFailurePolicy and backoffLimitPerIndex act on real statuses,
* kills a pod's process groups (SIGTERM, then SIGKILL after the grace period)
  when it gets a deletionTimestamp, reports the terminal status and confirms
  the deletion with a grace-period-0 delete, as a kubelet does; enforces
  activeDeadlineSeconds (phase Failed, reason DeadlineExceeded),
* writes container output to ``<pod-log-dir>/<namespace>/<pod>/<container>.log``
  and the current pid to ``<container>.pid`` beside it.

Images map to the local environment: every container runs with the bin dir of
the Python environment running this agent first on PATH (so ``python``,
``pytest`` or ``s1mple-runner`` resolve to the project's venv), plus an optional
per-image entry of the JSON image map (``--image-map`` file, re-read for every
pod, or ``$S1MPLE_IMAGE_MAP``): ``{"<fnmatch pattern of the image>": "<dir>:<dir>"}``
or ``{"<pattern>": {"path": "<dirs>", "command": [...], "env": {...},
"workingDir": "..."}}``; ``command`` is the image's entrypoint, used when the
container has none.  A container gets only the environment its spec gives
it, plus PATH, PYTHONPATH, VIRTUAL_ENV, LANG, HOSTNAME and a HOME (a fresh
per-pod dir, also the default working dir): no AWS_* or KUBECONFIG of the
agent leaks into pods.

Talks to the apiserver through the project's one REST client
(:class:`s1mple.executors.apiserver.ApiServer`): one list+watch of all pods,
strategic-merge patches of pods/status.  Run as a script (with the project's
virtualenv) or import :class:`NodeAgent`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import fnmatch
import json
import logging
import math
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from s1mple.executors.apiserver import STRATEGIC_MERGE_PATCH, ApiError, ApiServer, client_certificate

try:  # run as a script (tests/cluster on sys.path) or imported as tests.cluster.node_agent
    import oci
except ImportError:  # pragma: no cover
    from tests.cluster import oci

log = logging.getLogger("node-agent")

TERMINAL = ("Succeeded", "Failed")
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
PASSTHROUGH_ENV = ("PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------ env


_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(s: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known refs replaced, $$ escapes, the rest kept."""

    def rep(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(rep, s)


class ConfigError(Exception):
    """A referenced Secret/ConfigMap (key) is missing: CreateContainerConfigError."""


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_quantity(q: str) -> float:
    m = _QUANTITY.match(str(q))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"bad quantity {q!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


class NodeAgent:
    def __init__(
        self,
        kube: ApiServer,
        node_name: str,
        pod_log_dir: Path,
        pod_dir: Path,
        image_map: str | None = None,
        kubelet_version: str = "v0.0.0",
        cpu: str | None = None,
        memory: str | None = None,
        max_pods: int = 250,
        images: oci.ImageStore | None = None,
    ):
        self.kube = kube
        self.images = images  # None: every image runs in process mode (the agent's old behaviour)
        self.node_name = node_name
        self.pod_log_dir = Path(pod_log_dir)
        self.pod_dir = Path(pod_dir)
        self.image_map_src = image_map
        self.kubelet_version = kubelet_version
        self.cpu = cpu or str(os.cpu_count() or 2)
        if memory is None:
            try:
                meminfo = Path("/proc/meminfo").read_text().splitlines()
                kb = int(next(ln for ln in meminfo if ln.startswith("MemTotal")).split()[1])
                memory = f"{kb}Ki"
            except (OSError, StopIteration, ValueError):
                memory = "8Gi"
        self.memory = memory
        self.max_pods = max_pods
        self.labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                platform.machine(), platform.machine()
            ),
            "node.kubernetes.io/s1mple-local": "true",
        }
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.runners: dict[str, PodRunner] = {}
        self.confirmed: set[str] = set()  # uids whose deletion we confirmed
        self.bound: set[str] = set()
        self.threads: list[threading.Thread] = []
        # The environment every "image" runs in: this Python's bin dir first.
        self.base_path = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")]
        )

    # ------------------------------------------------------------- node + lease
    def node_status(self) -> dict:
        res = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.max_pods),
            "ephemeral-storage": "100Gi",
        }
        t = now()
        conds = [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "s1mple node agent is posting ready status",
            },
        ]
        for c in conds:
            c.update(lastHeartbeatTime=t, lastTransitionTime=self._started_at)
        return {
            "capacity": res,
            "allocatable": res,
            "conditions": conds,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "s1mple local processes",
                "containerRuntimeVersion": "s1mple-local://1",
                "kubeletVersion": self.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": self.labels["kubernetes.io/arch"],
            },
        }

    def register(self) -> None:
        self._started_at = now()
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": self.labels},
            "spec": {},
            "status": self.node_status(),
        }
        try:
            self.kube.create("/api/v1/nodes", node)
        except ApiError as e:
            if e.status != 409:
                raise
            self.kube.patch(f"/api/v1/nodes/{self.node_name}", {"metadata": {"labels": self.labels}})
        self.kube.patch(
            f"/api/v1/nodes/{self.node_name}/status", {"status": self.node_status()}, STRATEGIC_MERGE_PATCH
        )
        self.node_uid = self.kube.get(f"/api/v1/nodes/{self.node_name}")["metadata"]["uid"]
        self.renew_lease()

    def renew_lease(self) -> None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        try:
            self.kube.patch(f"{path}/{self.node_name}", {"spec": spec})
        except ApiError as e:
            if e.status != 404:
                raise
            self.kube.create(
                path,
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": self.node_name,
                        "ownerReferences": [
                            {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": self.node_uid}
                        ],
                    },
                    "spec": spec,
                },
            )

    def heartbeat_loop(self) -> None:
        n = 0
        while not self.stop_event.wait(10):
            n += 1
            try:
                self.renew_lease()
                if n % 3 == 0:
                    self.kube.patch(
                        f"/api/v1/nodes/{self.node_name}/status",
                        {"status": {"conditions": self.node_status()["conditions"]}},
                        STRATEGIC_MERGE_PATCH,
                    )
            except Exception as e:  # noqa: BLE001 - keep beating
                log.warning("heartbeat failed: %s", e)

    # --------------------------------------------------------------- image map
    def image_map(self) -> dict:
        src = self.image_map_src or os.environ.get("S1MPLE_IMAGE_MAP")
        if not src:
            return {}
        try:
            if src.lstrip().startswith("{"):
                return json.loads(src)
            return json.loads(Path(src).read_text() or "{}")
        except (OSError, ValueError) as e:
            log.warning("bad image map %s: %s", src, e)
            return {}

    def image_entry(self, image: str) -> dict | None:
        """The image map's entry for a process-mode image; None: the image runs from the image store."""
        for pattern, v in self.image_map().items():
            if fnmatch.fnmatchcase(image or "", pattern):
                return {"path": v} if isinstance(v, str) else dict(v)
        return None if self.images is not None else {}

    # ------------------------------------------------------------- pod events
    def run(self) -> None:
        self.register()
        log.info("node %s registered", self.node_name)
        for target in (self.heartbeat_loop, self.watch_loop):
            t = threading.Thread(target=target, name=target.__name__, daemon=True)
            t.start()
            self.threads.append(t)

    def watch_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                lst = self.kube.request("GET", "/api/v1/pods", timeout=60)
                rv = lst["metadata"]["resourceVersion"]
                seen = set()
                for pod in lst.get("items", []):
                    seen.add(pod["metadata"]["uid"])
                    self.handle("ADDED", pod)
                with self.lock:
                    gone = [r for uid, r in self.runners.items() if uid not in seen]
                for r in gone:
                    self.handle("DELETED", r.pod)
                while not self.stop_event.is_set():
                    params = {"resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "60"}
                    for ev in self.kube.watch("/api/v1/pods", params, self.stop_event):
                        typ, obj = ev["type"], ev["object"]
                        if typ == "ERROR":
                            raise ApiError(obj.get("code", 500), "WATCH", "/api/v1/pods", json.dumps(obj))
                        rv = obj["metadata"]["resourceVersion"]
                        if typ != "BOOKMARK":
                            self.handle(typ, obj)
            except Exception as e:  # noqa: BLE001 - relist and go on
                if self.stop_event.is_set():
                    return
                if not (isinstance(e, ApiError) and e.status == 410):
                    log.warning("pod watch failed, relisting: %r", e)
                self.stop_event.wait(0.2)

    def handle(self, typ: str, pod: dict) -> None:
        try:
            self._handle(typ, pod)
        except Exception:
            log.exception(
                "handling %s %s/%s", typ, pod["metadata"].get("namespace"), pod["metadata"].get("name")
            )

    def _handle(self, typ: str, pod: dict) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        uid = meta["uid"]
        with self.lock:
            runner = self.runners.get(uid)
        if typ == "DELETED":
            with self.lock:
                self.runners.pop(uid, None)
                self.confirmed.discard(uid)
                self.bound.discard(uid)
            if runner is not None:
                runner.update(pod, gone=True)
            return
        node = spec.get("nodeName")
        if not node:
            if (
                not meta.get("deletionTimestamp")
                and status.get("phase", "Pending") == "Pending"
                and self.schedulable(pod)
            ):
                self.bind(pod)
            return
        if node != self.node_name:
            return
        if runner is not None:
            runner.update(pod)
            return
        phase = status.get("phase", "Pending")
        if meta.get("deletionTimestamp"):
            self.confirm_deletion(pod)
            return
        if phase in TERMINAL:
            return
        if phase != "Pending":
            # Was running under an earlier agent whose processes are gone.
            self.patch_status(
                pod,
                {
                    "phase": "Failed",
                    "reason": "NodeAgentRestarted",
                    "message": "the node agent restarted while the pod ran",
                },
            )
            return
        runner = PodRunner(self, pod)
        with self.lock:
            self.runners[uid] = runner
        runner.start()

    def schedulable(self, pod: dict) -> bool:
        spec = pod.get("spec", {})
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return False
        if spec.get("schedulingGates"):
            return False
        sel = spec.get("nodeSelector") or {}
        return all(self.labels.get(k) == v for k, v in sel.items())

    def bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        with self.lock:
            if meta["uid"] in self.bound:
                return
            self.bound.add(meta["uid"])
        try:
            self.kube.create(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding",
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": meta["name"], "uid": meta["uid"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
                },
            )
        except ApiError as e:
            if e.status not in (404, 409):
                with self.lock:
                    self.bound.discard(meta["uid"])
                raise

    def pod_path(self, pod: dict) -> str:
        m = pod["metadata"]
        return f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}"

    def patch_status(self, pod: dict, status: dict) -> None:
        try:
            self.kube.patch(
                self.pod_path(pod) + "/status",
                {"metadata": {"uid": pod["metadata"]["uid"]}, "status": status},
                STRATEGIC_MERGE_PATCH,
            )
        except ApiError as e:
            if e.status not in (404, 409):
                raise

    def confirm_deletion(self, pod: dict) -> None:
        """What a kubelet does once a deleted pod's processes are gone."""
        uid = pod["metadata"]["uid"]
        with self.lock:
            if uid in self.confirmed:
                return
            self.confirmed.add(uid)
        try:
            self.kube.delete(
                self.pod_path(pod),
                {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": uid},
                },
            )
        except ApiError as e:
            if e.status not in (404, 409):
                with self.lock:
                    self.confirmed.discard(uid)
                raise

    def shutdown(self) -> None:
        self.stop_event.set()
        with self.lock:
            runners = list(self.runners.values())
        for r in runners:
            r.kill_all(signal.SIGKILL)
        for r in runners:
            r.join(timeout=5)


class Container:
    def __init__(self, spec: dict, init: bool):
        self.spec = spec
        self.name = spec["name"]
        self.init = init
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict = {}
        self.started_at: str | None = None
        self.exit_code: int | None = None
        self.exited = False  # terminated (or failed to start) and not yet handled by the restart policy
        self.image_id = ""  # the manifest digest of the image it runs (image mode)

    def status(self) -> dict:
        running = "running" in self.state
        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": self.image_id,
            "containerID": f"local://{self.proc.pid}" if self.proc else "",
            "state": self.state,
            "lastState": self.last_state,
            "ready": running and not self.init,
            "started": running,
            "restartCount": self.restarts,
        }


class PodRunner(threading.Thread):
    """Runs one pod to completion; owns its processes."""

    def __init__(self, agent: NodeAgent, pod: dict):
        m = pod["metadata"]
        super().__init__(name=f"pod-{m['namespace']}/{m['name']}", daemon=True)
        self.agent, self.kube = agent, agent.kube
        self.pod = pod
        self.ns, self.pod_name, self.uid = m["namespace"], m["name"], m["uid"]
        self.wake = threading.Event()
        self.deleted = False  # deletionTimestamp seen
        self.gone = False  # object removed from the apiserver
        self.start_time: str | None = None
        self.started_mono: float | None = None
        self.cond_times: dict[str, tuple[str, str]] = {}
        self.log_dir = agent.pod_log_dir / self.ns / self.pod_name
        self.home = agent.pod_dir / f"{self.ns}_{self.pod_name}_{self.uid[:8]}"
        spec = pod["spec"]
        self.init_containers = [Container(c, True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c, False) for c in spec.get("containers") or []]
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.phase = "Pending"
        self.status_stale = False  # the last status did not reach the API server
        self.reason: str | None = None
        self.message: str | None = None
        self.secrets: dict[str, dict | None] = {}
        self.configmaps: dict[str, dict | None] = {}

    # ---------------------------------------------------------------- events
    def update(self, pod: dict, gone: bool = False) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleted = True
        if gone:
            self.deleted = self.gone = True
        if self.deleted and not self.is_alive() and not self.gone:
            # Finished before: only the deletion is left to confirm.
            self.agent.confirm_deletion(pod)
        self.wake.set()

    # --------------------------------------------------------------- status
    def _cond(self, ctype: str, ok: bool, reason: str | None = None) -> dict:
        st = "True" if ok else "False"
        prev = self.cond_times.get(ctype)
        if prev is None or prev[0] != st:
            self.cond_times[ctype] = (st, now())
        c = {
            "type": ctype,
            "status": st,
            "lastProbeTime": None,
            "lastTransitionTime": self.cond_times[ctype][1],
        }
        if reason and not ok:
            c["reason"] = reason
        return c

    def post_status(self) -> None:
        init_done = all("terminated" in c.state and c.exit_code == 0 for c in self.init_containers)
        all_running = bool(self.containers) and all("running" in c.state for c in self.containers)
        terminal = self.phase in TERMINAL
        not_ready = "PodCompleted" if terminal else "ContainersNotReady"
        status = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": [
                self._cond("PodReadyToStartContainers", True),
                self._cond("Initialized", init_done, "ContainersNotInitialized"),
                self._cond("ContainersReady", all_running and not terminal, not_ready),
                self._cond("Ready", all_running and not terminal, not_ready),
            ],
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        if self.reason:
            status["reason"] = self.reason
            status["message"] = self.message or ""
        try:
            self.agent.patch_status(self.pod, status)
            self.status_stale = False
        except Exception as e:  # noqa: BLE001 - posted again until it lands (see _post_final_status)
            # an outage (no connection, 429, 5xx) passes; a status the API server refuses would not
            code = getattr(e, "status", None)
            self.status_stale = code is None or code == 429 or code >= 500
            log.warning("status of %s/%s: %s", self.ns, self.pod_name, e)

    def _post_final_status(self) -> None:
        """Post the terminal status until the API server has it, as a kubelet's status manager keeps
        syncing: once the containers have exited nothing else would post it again, and a pod left
        Running in the API keeps its Job (and whoever follows the Job) waiting forever."""
        pause = 0.5
        self.post_status()
        while self.status_stale and not self.gone and not self.agent.stop_event.is_set():
            self.wake.wait(pause)
            self.wake.clear()
            pause = min(pause * 2, 5.0)
            self.post_status()

    # ------------------------------------------------------------------ env
    def _obj(self, kind: str, name: str) -> dict | None:
        cache = self.secrets if kind == "secrets" else self.configmaps
        if name not in cache:
            try:
                cache[name] = self.kube.get(f"/api/v1/namespaces/{self.ns}/{kind}/{name}")
            except ApiError as e:
                if e.status != 404:
                    raise
                cache[name] = None
        return cache[name]

    def _data(self, kind: str, name: str) -> dict[str, str] | None:
        obj = self._obj(kind, name)
        if obj is None:
            return None
        if kind == "secrets":
            data = obj.get("data") or {}
            return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
        data = dict(obj.get("data") or {})
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v).decode("utf-8", "replace")
        return data

    def _key_ref(self, kind: str, ref: dict) -> str | None:
        data = self._data(kind, ref.get("name", ""))
        optional = ref.get("optional", False)
        if data is None:
            if optional:
                return None
            raise ConfigError(f'{kind[:-1]} "{ref.get("name")}" not found')
        if ref["key"] not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {ref['key']} in {kind[:-1]} {self.ns}/{ref.get('name')}")
        return data[ref["key"]]

    def _field_ref(self, path: str) -> str:
        meta, spec, status = self.pod["metadata"], self.pod["spec"], self.pod.get("status", {})
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return (meta.get(m.group(1)) or {}).get(m.group(2), "")
        simple = {
            "metadata.name": meta.get("name"),
            "metadata.namespace": meta.get("namespace"),
            "metadata.uid": meta.get("uid"),
            "spec.nodeName": spec.get("nodeName") or self.agent.node_name,
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.hostIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
            "status.podIP": "127.0.0.1",
            "status.podIPs": "127.0.0.1",
        }
        if path in simple:
            return simple[path] or ""
        if path in ("metadata.labels", "metadata.annotations"):
            d = meta.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
        if status and path.startswith("status."):
            return str(status.get(path.split(".", 1)[1], ""))
        raise ConfigError(f"unsupported fieldRef {path}")

    def _resource_ref(self, c: dict, ref: dict) -> str:
        kind, name = ref["resource"].split(".", 1)  # e.g. limits.cpu, requests.memory
        if ref.get("containerName"):
            cs = self.pod["spec"].get("containers", [])
            c = next((x for x in cs if x["name"] == ref["containerName"]), c)
        val = ((c.get("resources") or {}).get(kind) or {}).get(name)
        if val is None:  # like a kubelet: unset limits default to the node's allocatable
            val = {"cpu": self.agent.cpu, "memory": self.agent.memory}.get(name, "0")
        divisor = parse_quantity(ref.get("divisor") or "1") or 1.0  # the API defaults it to "0"
        n = math.ceil(parse_quantity(val) / divisor)
        return str(max(1, n) if name == "cpu" else n)

    def spec_env(self, c: dict) -> dict[str, str]:
        """The container's env and envFrom as the pod spec gives them (may raise ConfigError)."""
        self.secrets.clear()
        self.configmaps.clear()
        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix", "")
            for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                if key not in src:
                    continue
                ref = src[key]
                data = self._data(kind, ref.get("name", ""))
                if data is None:
                    if ref.get("optional", False):
                        continue
                    raise ConfigError(f'{kind[:-1]} "{ref.get("name")}" not found')
                for k, v in data.items():
                    env[prefix + k] = v
        for e in c.get("env") or []:
            name = e["name"]
            if "valueFrom" not in e:
                env[name] = expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[name] = self._field_ref(vf["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in vf:
                v = self._key_ref("secrets", vf["secretKeyRef"])
                if v is not None:
                    env[name] = v
            elif "configMapKeyRef" in vf:
                v = self._key_ref("configmaps", vf["configMapKeyRef"])
                if v is not None:
                    env[name] = v
            elif "resourceFieldRef" in vf:
                env[name] = self._resource_ref(c, vf["resourceFieldRef"])
        return env

    def build_env(self, c: dict, entry: dict) -> dict[str, str]:
        """Process mode: the spec's env over this venv's PATH, a per-pod HOME and the image map's env."""
        env = self.spec_env(c)
        base = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        base.setdefault("LANG", "C.UTF-8")
        path = self.agent.base_path
        if entry.get("path"):
            path = f"{entry['path']}{os.pathsep}{path}"
        base.update(PATH=path, HOME=str(self.home), HOSTNAME=self.pod_name)
        base.update({k: str(v) for k, v in (entry.get("env") or {}).items()})
        base.update(env)
        return base

    # ------------------------------------------------------------ container start
    def container_start(self, c: Container) -> tuple[list[str], dict[str, str], str]:
        """(argv, env, cwd) of the host process that runs container c.

        Process mode (the image matches the image map, or the agent has no image store): argv runs
        as-is with this venv first on PATH. Image mode: the image is unpacked from the store and argv
        runs inside its filesystem (oci.sandbox_argv) with Kubernetes' rules for the image's
        Entrypoint/Cmd/Env/WorkingDir/User, the pod's securityContext and its volumes.
        Raises ConfigError (CreateContainerConfigError), oci.ImagePullError, OSError (StartError)."""
        spec = c.spec
        entry = self.agent.image_entry(spec.get("image", ""))
        if entry is not None:
            env = self.build_env(spec, entry)
            command = list(spec.get("command") or entry.get("command") or [])
            args = list(spec.get("args") or ([] if spec.get("command") else entry.get("args") or []))
            argv = [expand(a, env) for a in command + args]
            cwd = spec.get("workingDir") or entry.get("workingDir") or str(self.home)
            if not argv:
                raise OSError(
                    f"container {c.name} has no command and its image {spec.get('image')!r} "
                    "has no entrypoint in the image map"
                )
            Path(cwd).mkdir(parents=True, exist_ok=True)
            return argv, env, cwd
        image = self.agent.images.get(spec.get("image", ""))
        c.image_id = image.digest
        env = {**image.env, **self.service_env(), "HOSTNAME": self.pod_name, **self.spec_env(spec)}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if spec.get("command"):
            command, args = spec["command"], spec.get("args") or []
        else:
            command, args = image.entrypoint, spec.get("args") or image.cmd
        argv = [expand(a, env) for a in [*command, *args]]
        if not argv:
            raise OSError(f"container {c.name}: no command and image {image.reference} has no entrypoint")
        ctx = {**(self.pod["spec"].get("securityContext") or {}), **(spec.get("securityContext") or {})}
        uid, gid = oci.user_ids(image, ctx.get("runAsUser"), ctx.get("runAsGroup"))
        if ctx.get("runAsNonRoot") and uid == 0:
            raise ConfigError(f"container {c.name} has runAsNonRoot and image will run as root")
        argv = oci.sandbox_argv(
            image,
            argv,
            container_dir=self.home / "containers" / f"{c.name}-{c.restarts}",
            mounts=self.mounts(spec),
            uid=uid,
            gid=gid,
            read_only_root=bool(ctx.get("readOnlyRootFilesystem")),
            working_dir=spec.get("workingDir") or image.working_dir or "/",
            hostname=self.pod_name[:63],
        )
        return argv, env, str(self.home)

    def service_env(self) -> dict[str, str]:
        """KUBERNETES_SERVICE_HOST/PORT: the apiserver, reached on the host's loopback like everything."""
        host, _, port = self.kube.server.split("://", 1)[-1].partition(":")
        return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port or "443"}

    def mounts(self, spec: dict) -> list[oci.Mount]:
        """The container's volumeMounts over the pod's volumes, written out under the pod's dir."""
        volumes = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
        out = []
        for vm in spec.get("volumeMounts") or []:
            vol = volumes.get(vm["name"])
            if vol is None:
                raise OSError(f"volumeMount {vm['name']!r}: no such volume in the pod")
            src = self.volume_dir(vol)
            if vm.get("subPath"):
                src = src / vm["subPath"]
                src.mkdir(parents=True, exist_ok=True)
            out.append(oci.Mount(src, vm["mountPath"], bool(vm.get("readOnly"))))
        return out

    def volume_dir(self, vol: dict) -> Path:
        """emptyDir (kept across restarts), or the files of projected/secret/configMap/downwardAPI."""
        d = self.home / "volumes" / vol["name"]
        if "emptyDir" in vol:
            if not d.exists():
                d.mkdir(parents=True)
                d.chmod(0o777)  # like the kubelet's: writable by whatever uid the containers run as
            return d
        kinds = ("projected", "secret", "configMap", "downwardAPI")
        kind = next((k for k in kinds if k in vol), None)
        if kind is None:
            raise OSError(f"volume {vol['name']!r}: type {sorted(vol)} is not supported by the node agent")
        sources = vol["projected"].get("sources") or [] if kind == "projected" else [{kind: vol[kind]}]
        files: dict[str, str] = {}
        for src in sources:
            files.update(self.projection(src))
        d.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            f = d / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            f.chmod(0o644)
        return d

    def projection(self, src: dict) -> dict[str, str]:
        """The files one volume source projects (path -> content)."""
        if "serviceAccountToken" in src:
            sat = src["serviceAccountToken"]
            req = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "audiences": [sat["audience"]] if sat.get("audience") else [],
                    "expirationSeconds": int(sat.get("expirationSeconds") or 3607),
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": self.pod_name,
                        "uid": self.uid,
                    },
                },
            }
            sa = self.pod["spec"].get("serviceAccountName") or "default"
            tr = self.kube.create(f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token", req)
            return {sat.get("path", "token"): tr["status"]["token"]}
        if "downwardAPI" in src:
            items = src["downwardAPI"]["items"]
            return {i["path"]: self._field_ref(i["fieldRef"]["fieldPath"]) for i in items}
        kind, key = ("secrets", "secret") if "secret" in src else ("configmaps", "configMap")
        ref = src[key]
        name = ref.get("name") or ref.get("secretName", "")
        data = self._data(kind, name)
        if data is None:
            if ref.get("optional"):
                return {}
            raise ConfigError(f'{kind[:-1]} "{name}" not found')
        items = ref.get("items") or [{"key": k, "path": k} for k in data]
        return {i["path"]: data[i["key"]] for i in items if i["key"] in data}

    # ------------------------------------------------------------ processes
    def launch(self, c: Container) -> None:
        """Start c's process; on failure c ends terminated with StartError."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logpath = self.log_dir / f"{c.name}.log"
        started = now()
        try:
            argv, env, cwd = self.container_start(c)  # may raise ConfigError or ImagePullError
            with open(logpath, "ab") as logf:
                c.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_pdeathsig,  # noqa: PLW1509
                )
        except (OSError, ValueError) as e:
            with open(logpath, "a") as f:
                f.write(f"s1mple node agent: failed to start container {c.name}: {e}\n")
            c.proc = None
            c.exit_code = 128
            c.exited = True
            c.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": str(e),
                    "startedAt": started,
                    "finishedAt": now(),
                }
            }
            return
        (self.log_dir / f"{c.name}.pid").write_text(f"{c.proc.pid}\n")
        c.started_at = started
        c.exit_code = None
        c.state = {"running": {"startedAt": started}}
        proc = c.proc
        threading.Thread(target=self._reap, args=(proc,), daemon=True, name=f"reap-{proc.pid}").start()

    def _reap(self, proc: subprocess.Popen) -> None:
        proc.wait()
        # Whatever the main process left in its group goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.wake.set()

    def collect(self, c: Container, reason_override: str | None = None) -> bool:
        """If c's process has exited, record its terminated state; True if it has."""
        if c.proc is None or "running" not in c.state:
            return "terminated" in c.state
        rc = c.proc.poll()
        if rc is None:
            return False
        code = rc if rc >= 0 else 128 - rc
        c.exit_code = code
        c.exited = True
        c.state = {
            "terminated": {
                "exitCode": code,
                "reason": reason_override or ("Completed" if code == 0 else "Error"),
                "startedAt": c.started_at,
                "finishedAt": now(),
                "containerID": f"local://{c.proc.pid}",
            }
        }
        return True

    def kill_all(self, sig: int) -> None:
        for c in self.init_containers + self.containers:
            if c.proc is not None and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(c.proc.pid, sig)

    def running(self) -> list[Container]:
        cs = self.init_containers + self.containers
        return [c for c in cs if c.proc is not None and c.proc.poll() is None]

    def terminate(self, grace: float) -> None:
        """SIGTERM the process groups, SIGKILL after the grace period."""
        self.kill_all(signal.SIGTERM)
        deadline = time.monotonic() + max(0.0, grace)
        while self.running() and time.monotonic() < deadline:
            self.wake.wait(0.2)
            self.wake.clear()
        self.kill_all(signal.SIGKILL)
        for c in self.init_containers + self.containers:
            if c.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=10)

    def deadline_passed(self) -> bool:
        ads = self.pod["spec"].get("activeDeadlineSeconds")
        return (
            ads is not None
            and self.started_mono is not None
            and (time.monotonic() - self.started_mono >= int(ads))
        )

    def wait_time(self) -> float:
        ads = self.pod["spec"].get("activeDeadlineSeconds")
        if ads is None or self.started_mono is None:
            return 5.0
        return max(0.01, min(5.0, self.started_mono + int(ads) - time.monotonic()))

    def grace(self) -> float:
        g = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if g is None:
            g = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        return float(g)

    # ---------------------------------------------------------------- main
    def run(self) -> None:
        try:
            self._run()
        except Exception as e:
            log.exception("pod %s/%s", self.ns, self.pod_name)
            self.kill_all(signal.SIGKILL)
            with contextlib.suppress(Exception):
                self._finish("Failed", "NodeAgentError", f"s1mple node agent: {e!r}")
        finally:
            if self.deleted and not self.gone:
                with contextlib.suppress(Exception):
                    self.agent.confirm_deletion(self.pod)

    def _start_with_config(self, c: Container) -> bool:
        """Launch c, waiting while its Secrets/ConfigMaps are missing; False if stopped."""
        while True:
            if self.deleted or self.agent.stop_event.is_set():
                return False
            pause = 1.0
            try:
                self.launch(c)
                return True
            except ConfigError as e:
                if c.state.get("waiting", {}).get("message") != str(e):
                    c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}}
                    self.post_status()
            except oci.ImagePullError as e:
                # like a kubelet: ErrImagePull once, then ImagePullBackOff while it stays missing
                pulls = c.state.get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
                reason = "ImagePullBackOff" if pulls else "ErrImagePull"
                if c.state.get("waiting", {}).get("reason") != reason:
                    c.state = {"waiting": {"reason": reason, "message": str(e)}}
                    self.post_status()
                pause = 5.0 if pulls else 1.0
            self.wake.wait(pause)
            self.wake.clear()
            if self.deadline_passed():
                return False

    def _finish(self, phase: str, reason: str | None = None, message: str | None = None) -> None:
        self.phase, self.reason, self.message = phase, reason, message
        for c in self.init_containers + self.containers:
            if "running" in c.state and c.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=5)
                self.collect(c)
            if "waiting" in c.state:
                c.state = {
                    "terminated": {
                        "exitCode": 137 if reason else 0,
                        "reason": "ContainerStatusUnknown" if reason else "Completed",
                        "finishedAt": now(),
                    }
                }
        self._post_final_status()

    def _stop_for(self) -> tuple[str, str] | None:
        """Why the pod must stop now, if it must."""
        if self.deleted or self.agent.stop_event.is_set():
            return ("Killed", "")
        if self.deadline_passed():
            return ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
        return None

    def _terminate_and_finish(self, why: tuple[str, str]) -> None:
        reason, message = why
        grace = 0.0 if reason == "DeadlineExceeded" else self.grace()
        if self.agent.stop_event.is_set():
            grace = min(grace, 2.0)
        self.terminate(grace)
        for c in self.init_containers + self.containers:
            self.collect(c)
        if self.gone:
            return
        if reason == "DeadlineExceeded":
            self._finish("Failed", reason, message)
        else:
            ok = all("terminated" in c.state and c.exit_code == 0 for c in self.containers)
            self._finish("Succeeded" if ok else "Failed")

    def _run(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.start_time = now()
        self.started_mono = time.monotonic()
        self.post_status()  # Pending, ContainerCreating

        # Init containers, one after the other.
        for c in self.init_containers:
            while True:
                if not self._start_with_config(c):
                    self._terminate_and_finish(self._stop_for() or ("Killed", ""))
                    return
                while not self.collect(c):
                    why = self._stop_for()
                    if why:
                        self._terminate_and_finish(why)
                        return
                    self.wake.wait(self.wait_time())
                    self.wake.clear()
                if c.exit_code == 0:
                    break
                if self.restart_policy == "Never":
                    self._finish("Failed")
                    return
                c.restarts += 1
                c.last_state, c.state = c.state, {"waiting": {"reason": "CrashLoopBackOff"}}
                self.post_status()
                self.wake.wait(min(10.0, 0.5 * 2 ** min(c.restarts, 5)))
                self.wake.clear()

        for c in self.containers:
            if not self._start_with_config(c):
                self._terminate_and_finish(self._stop_for() or ("Killed", ""))
                return
        self.phase = "Running"
        self.post_status()

        restart_at: dict[str, float] = {}
        while True:
            changed = False
            for c in self.containers:
                if "running" in c.state:
                    self.collect(c)
                if c.exited:  # exited, or could not start (StartError): the restart policy decides
                    c.exited = False
                    changed = True
                    ec = c.exit_code
                    if self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and ec != 0):
                        restart_at[c.name] = time.monotonic() + min(10.0, 0.5 * 2 ** min(c.restarts, 5))
            why = self._stop_for()
            if why:
                self._terminate_and_finish(why)
                return
            for c in self.containers:
                t = restart_at.get(c.name)
                if t is not None and time.monotonic() >= t:
                    del restart_at[c.name]
                    c.restarts += 1
                    if "terminated" in c.state:
                        c.last_state = c.state
                    if not self._start_with_config(c):
                        continue
                    changed = True
            if all("terminated" in c.state for c in self.containers) and not restart_at:
                ok = all(c.exit_code == 0 for c in self.containers)
                self._finish("Succeeded" if ok else "Failed")
                return
            if changed or self.status_stale:
                if self.phase == "Running" and restart_at:
                    for c in self.containers:
                        if c.name in restart_at and "terminated" in c.state:
                            c.last_state = c.state
                            msg = f"back-off restarting failed container {c.name}"
                            c.state = {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
                self.post_status()
            timeout = self.wait_time()
            if restart_at:
                timeout = max(0.01, min(timeout, min(restart_at.values()) - time.monotonic()))
            self.wake.wait(timeout)
            self.wake.clear()


def _pdeathsig() -> None:
    """preexec_fn: the process gets SIGKILL if the thread that started it dies."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="s1mple test-cluster node agent")
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--node-name", default="s1mple-node")
    ap.add_argument("--pod-log-dir", required=True)
    ap.add_argument("--pod-dir", required=True)
    ap.add_argument("--image-map", default=None)
    ap.add_argument("--kubelet-version", default="v0.0.0")
    ap.add_argument("--cpu", default=None)
    ap.add_argument("--memory", default=None)
    ap.add_argument("--max-pods", type=int, default=250)
    ap.add_argument("--images", default=None, help="JSON: image reference -> OCI archive")
    ap.add_argument("--rootfs-dir", default=None, help="where images are unpacked, once per digest")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    agent = NodeAgent(
        ApiServer(login=client_certificate(a.server, a.ca, a.cert, a.key), user_agent="s1mple-node-agent"),
        a.node_name,
        Path(a.pod_log_dir),
        Path(a.pod_dir),
        a.image_map,
        a.kubelet_version,
        a.cpu,
        a.memory,
        a.max_pods,
        oci.ImageStore(Path(a.images), Path(a.rootfs_dir or Path(a.images).parent / "rootfs"))
        if a.images
        else None,
    )
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deadline = time.monotonic() + 120
    while True:
        try:
            agent.run()
            break
        except Exception as e:  # noqa: BLE001 - apiserver still starting
            if time.monotonic() > deadline or done.is_set():
                raise
            log.info("registering node: %s", e)
            time.sleep(0.3)
    done.wait()
    log.info("stopping: killing %d pods", len(agent.runners))
    agent.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
