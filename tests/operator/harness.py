"""Running the real operator against the test cluster: a subprocess of `s1mple operator`, killable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GROUP = "s1mple.io"


class OperatorProcess:
    """`s1mple operator --namespace NS` with the cluster's kubeconfig and none of its S3 credentials:
    the operator must get them from the Secret the resource names, as in a real cluster."""

    def __init__(self, cluster: Any, namespace: str, log_path: Path):
        self.cluster = cluster
        self.namespace = namespace
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.extra_env: dict[str, str] = {}
        self.extra_args: list[str] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in self.cluster.process_env().items() if not k.startswith("AWS_")}
        env.update(
            S1MPLE_CONFIG_ROOT=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "s1mple"),
                    "operator",
                    "--namespace",
                    self.namespace,
                    *self.extra_args,
                ],
                env=self.env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node dies."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def kubectl_apply(cluster: Any, doc: dict[str, Any]) -> None:
    proc = subprocess.run(
        [str(cluster.kubectl_path), f"--kubeconfig={cluster.kubeconfig}", "apply", "-f", "-"],
        input=yaml.safe_dump(doc),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {proc.stderr}")


def get_resource(cluster: Any, plural: str, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", f"{plural}.{GROUP}", name, "-n", namespace, "-o", "json")
    return json.loads(out.stdout)


def wait_for_phase(
    cluster: Any,
    plural: str,
    namespace: str,
    name: str,
    phases: tuple[str, ...],
    timeout: float = 300,
    operator: OperatorProcess | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = get_resource(cluster, plural, namespace, name)
        status = last.get("status") or {}
        if (
            status.get("phase") in phases
            and status.get("observedGeneration") == last["metadata"]["generation"]
        ):
            return last
        time.sleep(0.5)
    tail = operator.log()[-4000:] if operator else ""
    raise AssertionError(
        f"{plural}/{name} did not reach {phases} in {timeout}s; status={json.dumps(last.get('status'))}\n"
        f"operator log tail:\n{tail}"
    )


def storage_secret(namespace: str, cluster: Any) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "config/resources/storage-secret.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    doc["stringData"] = {
        "AWS_ACCESS_KEY_ID": cluster.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": cluster.s3_secret_key,
    }
    return doc


def example(path: str, namespace: str, bucket: str, cluster: Any) -> dict[str, Any]:
    """An example resource of config/resources as a user applies it, pointed at the test MinIO."""
    doc = yaml.safe_load((ROOT / path).read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["storage"]["uri"] = f"s3://{bucket}/research"
    doc["spec"]["storage"]["endpoint"] = cluster.s3_endpoint
    return doc


def jobs_of(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "jobs", "-n", namespace, "-o", "json")
    return json.loads(out.stdout)["items"]
