"""The chart installed by the real helm into the real test cluster, in both modes; the operator pod then
reconciles an example resource with only the rights the chart gave its ServiceAccount, and
`s1mple results` brings the results to this machine.

How a pod gets its credentials is the one thing left to the node agent: today it runs containers as
local processes without mounting the ServiceAccount token, so the operator gets a kubeconfig (through
the chart's `env` value) whose client certificate carries the ServiceAccount's identity
(CN=system:serviceaccount:NS:NAME): RBAC sees exactly the ServiceAccount. A runtime that mounts the
token serves the pod the same identity, since a pod's token comes before the kubeconfig.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from s1mple.executors.apiserver import ApiError
from tests.cluster.cluster import free_ports
from tests.cluster.fixtures import _dns_name, wait_for
from tests.operator.chart import CHART, ROOT, helm
from tests.operator.harness import example, kubectl_apply, storage_secret, wait_for_phase

pytestmark = pytest.mark.cluster

OPT = "config/resources/optimization-ma-crossover.yaml"
VT = "config/resources/varianttest-ma-crossover.yaml"
TERMINAL = ("Succeeded", "Failed", "Invalid")


def service_account_kubeconfig(cluster, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig whose client certificate (signed by the cluster's CA) names the ServiceAccount."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki = cluster.state_dir / "pki"
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:serviceaccount:{namespace}:{name}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:serviceaccounts"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"system:serviceaccounts:{namespace}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": cluster.api_url,
                    "certificate-authority-data": b64((pki / "ca.crt").read_bytes()),
                },
            }
        ],
        "users": [
            {
                "name": "sa",
                "user": {
                    "client-certificate-data": b64(cert.public_bytes(serialization.Encoding.PEM)),
                    "client-key-data": b64(pem_key),
                },
            }
        ],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": namespace}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class Release:
    """One `helm install` of the chart, uninstalled afterwards."""

    def __init__(self, cluster, name: str, namespace: str, tmp: Path, *sets: str):
        self.cluster, self.name, self.namespace = cluster, name, namespace
        self.service_account = f"{name}-s1mple" if "s1mple" not in name else name
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "HELM_CACHE_HOME": str(tmp / "helm-cache"),
            "HELM_CONFIG_HOME": str(tmp / "helm-config"),
            "HELM_DATA_HOME": str(tmp / "helm-data"),
        }
        kubeconfig = service_account_kubeconfig(
            cluster, namespace, self.service_account, tmp / f"{name}.kubeconfig"
        )
        # pods share the host's network under the node agent: each release its own health port
        port = free_ports(1)[0]
        self.sets = ("env[0].name=KUBECONFIG", f"env[0].value={kubeconfig}", f"healthPort={port}", *sets)

    def install(self) -> subprocess.CompletedProcess:
        args = ["install", self.name, str(CHART), "--namespace", self.namespace, "--create-namespace"]
        for s in self.sets:
            args += ["--set", s]
        return helm(*args, env=self.env)

    def uninstall(self) -> None:
        helm("uninstall", self.name, "--namespace", self.namespace, "--wait", env=self.env, check=False)

    def operator_pod(self) -> dict:
        out = self.cluster.kubectl(
            "get",
            "pods",
            "-n",
            self.namespace,
            "-o",
            "json",
            "-l",
            f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=s1mple",
        )
        pods = json.loads(out.stdout)["items"]
        return pods[0] if pods else {}

    def wait_running(self) -> dict:
        def running():
            pod = self.operator_pod()
            return pod if (pod.get("status") or {}).get("phase") == "Running" else None

        return wait_for(running, timeout=120, what=f"operator pod of release {self.name}")

    def log(self) -> str:
        pod = self.operator_pod()
        if not pod:
            return "(no operator pod)"
        path = self.cluster.pod_log_dir / self.namespace / pod["metadata"]["name"] / "operator.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else f"(no log at {path})"

    def can_i(self, *args: str) -> subprocess.CompletedProcess:
        return self.cluster.kubectl(
            "auth",
            "can-i",
            *args,
            f"--as=system:serviceaccount:{self.namespace}:{self.service_account}",
            check=False,
        )


@pytest.fixture
def namespaces(kube_api):
    """Short namespace names (``ns(n)``): a ServiceAccount's user name must fit a certificate's 64-character
    common name. Deleted afterwards."""
    made: list[str] = []

    def make() -> str:
        name = _dns_name("c", "")
        kube_api.create("/api/v1/namespaces", {"metadata": {"name": name}})
        wait_for(lambda: kube_api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"), timeout=60)
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(ApiError):
            kube_api.delete(f"/api/v1/namespaces/{name}", propagationPolicy="Background")


@pytest.fixture
def operator_image(kube_cluster):
    """What the operator image sets itself (its config root; see operator/Dockerfile), for a node agent
    that runs the image's command from the dev environment."""
    old = kube_cluster.node_agent.image_map_path.read_text()
    kube_cluster.node_agent.set_image_map(
        {
            **json.loads(old or "{}"),
            "ghcr.io/s1mple/s1mple-operator:*": {"env": {"S1MPLE_CONFIG_ROOT": str(ROOT)}},
        }
    )
    yield
    kube_cluster.node_agent.set_image_map(json.loads(old or "{}"))


def labelled_storage_secret(namespace: str, cluster) -> dict:
    doc = storage_secret(namespace, cluster)
    doc["metadata"]["labels"] = {"s1mple.io/storage-credentials": "true"}
    return doc


def allowed(listing: str) -> set[str]:
    """The resources in `kubectl auth can-i --list`, less the self-reviews every user may create."""
    names = {line.split()[0] for line in listing.splitlines()[1:] if line[:1].strip()}
    return {n for n in names if not n.startswith("selfsubject")}


def run_results(
    cluster, *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({"KUBECONFIG": str(cluster.kubeconfig), **(env or {})})
    return subprocess.run(
        [str(Path(sys.executable).parent / "s1mple"), "results", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd,
        timeout=120,
    )


def test_namespaced_release_reconciles_with_a_role_only(
    kube_cluster, namespaces, s3_bucket, operator_image, tmp_path
):
    """watchNamespace: a Role in the watched namespace, nothing cluster-wide, and the operator works:
    an Optimization is reconciled to Succeeded, and `s1mple results` fetches and prints its table."""
    kube_namespace, watched = namespaces(), namespaces()
    release = Release(kube_cluster, "team", kube_namespace, tmp_path, f"watchNamespace={watched}")
    try:
        notes = release.install().stdout
        assert f"watches namespace {watched} only" in notes and "kubectl" in notes
        # what the ServiceAccount may do: its rules in the watched namespace, nothing elsewhere
        assert release.can_i("create", "jobs", "-n", watched).stdout.strip() == "yes"
        for ns in ("kube-system", kube_namespace, "default"):
            assert release.can_i("get", "secrets", "-n", ns).stdout.strip() == "no"
            assert release.can_i("create", "jobs", "-n", ns).stdout.strip() == "no"
            assert not allowed(release.can_i("--list", "-n", ns).stdout), ns
        assert release.can_i("list", "namespaces").stdout.strip() == "no"
        assert release.can_i("list", "customresourcedefinitions.apiextensions.k8s.io").stdout.strip() == "no"
        assert not kube_cluster.kubectl(
            "get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/instance=team", "-o", "name"
        ).stdout.strip()

        release.wait_running()
        kubectl_apply(kube_cluster, labelled_storage_secret(watched, kube_cluster))
        doc = example(OPT, watched, s3_bucket, kube_cluster)
        kubectl_apply(kube_cluster, doc)
        name = doc["metadata"]["name"]
        try:
            res = wait_for_phase(kube_cluster, "optimizations", watched, name, TERMINAL, timeout=300)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator pod log:\n{release.log()}") from None
        status = res["status"]
        assert status["phase"] == "Succeeded", status
        assert "Forbidden" not in release.log()

        # s1mple results with the admin kubeconfig and no AWS_* variables: credentials from the Secret
        proc = run_results(
            kube_cluster,
            f"optimization/{name}",
            "-n",
            watched,
            "--out",
            "out",
            "--format",
            "csv",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        import pandas as pd

        table = pd.read_csv(tmp_path / "out" / "results.csv")
        assert len(table) == status["counts"]["total"] == 12
        best = table.sort_values("rank").iloc[0]
        assert best["run_id"] == status["bestConfiguration"]["runId"]
        lines = proc.stdout.splitlines()
        assert lines[0].startswith(f"Optimization {watched}/{name}: Succeeded, 12/12 runs")
        header = lines[1].split()
        assert header[:1] == ["rank"] and "sharpe_ratio" in header
        assert lines[2].split()[0] == "1"
        assert f"{best['sharpe_ratio']:.4g}" in lines[2].split()
        assert (
            json.loads((tmp_path / "out" / "result.json").read_text())["best_configuration"]["run_id"]
            == (status["bestConfiguration"]["runId"])
        )
        # --report without a report in status: said, not an error
        proc = run_results(kube_cluster, f"opt/{name}", "-n", watched, "--report", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        if not status["results"].get("report"):
            assert "has no report" in proc.stdout
    finally:
        release.uninstall()


def test_results_uses_only_what_the_user_may_read(kube_cluster, namespaces, s3_bucket, tmp_path):
    """A user who may read the resource but not its Secret gets a clear error, not the operator's rights;
    with credentials of their own in the environment it works without the Secret."""
    # the kinds, as `helm install` puts them (no operator runs in this test)
    kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    kube_cluster.kubectl("wait", "--for=condition=Established", "crd/optimizations.s1mple.io")
    kube_namespace = namespaces()
    doc = example(OPT, kube_namespace, s3_bucket, kube_cluster)
    doc["spec"]["storage"]["externalEndpoint"] = kube_cluster.s3_endpoint
    doc["spec"]["storage"]["endpoint"] = "http://minio.minio.svc:9000"  # unreachable from here
    kubectl_apply(kube_cluster, doc)
    name = doc["metadata"]["name"]
    # a finished status as the operator writes it, pointing at a table stored in MinIO
    import boto3
    import pandas as pd

    s3 = boto3.client(
        "s3",
        endpoint_url=kube_cluster.s3_endpoint,
        aws_access_key_id=kube_cluster.s3_access_key,
        aws_secret_access_key=kube_cluster.s3_secret_key,
        region_name="us-east-1",
    )
    frame = pd.DataFrame({"rank": [2, 1], "run_id": ["b", "a"], "sharpe_ratio": [0.5, 1.5]})
    s3.put_object(Bucket=s3_bucket, Key="t/results.parquet", Body=frame.to_parquet(index=False))
    s3.put_object(Bucket=s3_bucket, Key="t/result.json", Body=b'{"best_configuration": {"run_id": "a"}}')
    kube_cluster.kubectl(
        "patch",
        "optimization",
        name,
        "-n",
        kube_namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "phase": "Succeeded",
                    "primaryMetric": "sharpe_ratio",
                    "results": {
                        "table": f"s3://{s3_bucket}/t/results.parquet",
                        "summary": f"s3://{s3_bucket}/t/result.json",
                    },
                }
            }
        ),
    )
    reader = "results-reader"
    kube_cluster.kubectl("create", "serviceaccount", reader, "-n", kube_namespace)
    kube_cluster.kubectl(
        "create",
        "role",
        "read-opt",
        "-n",
        kube_namespace,
        "--verb=get",
        "--resource=optimizations.s1mple.io",
    )
    kube_cluster.kubectl(
        "create",
        "rolebinding",
        "read-opt",
        "-n",
        kube_namespace,
        "--role=read-opt",
        f"--serviceaccount={kube_namespace}:{reader}",
    )
    kubeconfig = service_account_kubeconfig(kube_cluster, kube_namespace, reader, tmp_path / "reader")
    proc = run_results(
        kube_cluster,
        f"optimization/{name}",
        "--out",
        "out",
        env={"KUBECONFIG": str(kubeconfig)},
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout
    assert f"cannot read Secret {kube_namespace}/s1mple-storage" in proc.stderr
    assert "HTTP 403" in proc.stderr and "AWS_ACCESS_KEY_ID" in proc.stderr
    proc = run_results(
        kube_cluster,
        f"optimization/{name}",
        "--out",
        "out",
        cwd=tmp_path,
        env={
            "KUBECONFIG": str(kubeconfig),
            "AWS_ACCESS_KEY_ID": kube_cluster.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": kube_cluster.s3_secret_key,
        },
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[2:4]]
    assert [r[:2] for r in rows] == [["1", "1.5"], ["2", "0.5"]]
    assert f"from {kube_cluster.s3_endpoint}" in proc.stdout
    assert pd.read_parquet(tmp_path / "out" / "results.parquet")["run_id"].tolist() == ["b", "a"]


def test_cluster_release_and_a_second_release(kube_cluster, namespaces, s3_bucket, operator_image, tmp_path):
    """Cluster mode (no watchNamespace): a ClusterRole with the generated rules, and the operator runs a
    VariantTest in a namespace it was not told about. A second release (namespaced) installs beside it."""
    kube_namespace, other_namespace = namespaces(), namespaces()
    first = Release(kube_cluster, "wide", kube_namespace, tmp_path)
    second = Release(
        kube_cluster, "narrow-s1mple", other_namespace, tmp_path, f"watchNamespace={other_namespace}"
    )
    try:
        first.install()
        second.install()
        assert first.can_i("create", "jobs", "-n", other_namespace).stdout.strip() == "yes"
        assert first.can_i("list", "pods", "-n", "kube-system").stdout.strip() == "no"
        assert first.can_i("list", "secrets", "-n", "kube-system").stdout.strip() == "no"
        assert first.can_i("list", "namespaces").stdout.strip() == "no"
        first.wait_running()
        second.wait_running()
        kubectl_apply(kube_cluster, labelled_storage_secret(kube_namespace, kube_cluster))
        doc = example(VT, kube_namespace, s3_bucket, kube_cluster)
        kubectl_apply(kube_cluster, doc)
        try:
            res = wait_for_phase(
                kube_cluster, "varianttests", kube_namespace, doc["metadata"]["name"], TERMINAL, timeout=300
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator pod log:\n{first.log()}") from None
        assert res["status"]["phase"] == "Succeeded", res["status"]
        name = doc["metadata"]["name"]
        proc = run_results(kube_cluster, f"vt/{name}", "-n", kube_namespace, "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        rows = json.loads((tmp_path / "results" / kube_namespace / name / "results.json").read_text())
        variants = [v["name"] for v in doc["spec"]["variants"]]
        assert sorted(r["variant_name"] for r in rows) == sorted(variants)
        table = proc.stdout.splitlines()[1:]
        assert table[0].split()[:2] == ["variant", "status"]
        assert sorted(line.split()[0] for line in table[1 : 1 + len(variants)]) == sorted(variants)
    finally:
        second.uninstall()
        first.uninstall()
