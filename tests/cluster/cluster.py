"""A real Kubernetes control plane plus MinIO on loopback, for the test suite.

etcd, kube-apiserver, kube-controller-manager (built from source by
``tests/cluster/build``) and MinIO run as local processes; ``node_agent.py``
stands in for a kubelet and runs pods' containers as local processes.

Used three ways, all through :class:`Cluster`:

* ``tests/cluster/up`` / ``tests/cluster/down`` (``python cluster.py up|down``),
* the pytest session fixture in ``tests/cluster/fixtures.py``,
* ``python cluster.py env`` prints the ``export`` lines of a running cluster.

Only the standard library, ``cryptography`` and ``requests`` are needed, and
this file imports nothing from its package, so it also runs as a script.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from s1mple.executors.apiserver import ApiServer

HERE = Path(__file__).resolve().parent
# Pinned versions; keep in sync with tests/cluster/build.
K8S_VERSION = os.environ.get("S1MPLE_K8S_VERSION", "v1.35.4")
MINIO_VERSION = os.environ.get("S1MPLE_MINIO_VERSION", "v0.0.0-20260212201848-7aac2a2c5b7c")
DEFAULT_STATE_DIR = "/tmp/s1mple-cluster"
NODE_NAME = "s1mple-node"
# Controllers of kube-controller-manager that make sense without a kubelet
# network, a scheduler or cloud: workloads, garbage collection, namespaces,
# service accounts, TTL of finished Jobs.
CONTROLLERS = [
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "replicaset-controller",
    "deployment-controller",
    "pod-garbage-collector-controller",
    "resourcequota-controller",
]


# Images that run as processes of this venv (process mode: the tests' own scripts, no image to build);
# every other image runs from its OCI archive (images.json in the state dir: tests/cluster/images), or
# waits in ErrImagePull. Tests add patterns with kube_cluster.node_agent.set_image_map (merged with these).
PROCESS_IMAGES = {"s1mple-test:*": ""}


class ClusterError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("S1MPLE_CACHE") or Path.home() / ".cache" / "s1mple")


def binaries() -> dict[str, Path]:
    kbin = cache_dir() / "bin" / f"kubernetes-{K8S_VERSION}"
    return {
        "etcd": kbin / "etcd",
        "kube-apiserver": kbin / "kube-apiserver",
        "kube-controller-manager": kbin / "kube-controller-manager",
        "kubectl": kbin / "kubectl",
        "minio": cache_dir() / "bin" / f"minio-{MINIO_VERSION}" / "minio",
    }


def version() -> str:
    """s1mple's version (pyproject.toml): the tag of the images tests/cluster/images builds."""
    import tomllib

    return tomllib.loads((HERE.parents[1] / "pyproject.toml").read_text())["project"]["version"]


def image_archives() -> dict[str, str]:
    """reference -> OCI archive of this checkout's images, named by tests/cluster/images from the content
    of their inputs (the archive exists once `make images` has built it)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("s1mple_images", str(HERE / "images"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    images = importlib.util.module_from_spec(spec)
    loader.exec_module(images)
    return {ref: str(archive) for ref, archive in map(images.archive_of, images.INPUTS)}


def missing_binaries() -> list[str]:
    return [str(p) for p in binaries().values() if not os.access(p, os.X_OK)]


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# --------------------------------------------------------------------------- PKI


def _write_pki(pki: Path) -> None:
    """CA, apiserver serving cert, admin client cert, service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=3650)

    def key_pem(key) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("s1mple-test-ca"))
        .issuer_name(name("s1mple-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(cn: str, org: str | None, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn, org))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if server:
            dns = [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]
            ips = ["127.0.0.1", "::1", "10.0.0.1"]
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
                ),
                critical=False,
            )
        cert = b.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (pki / "ca.key").write_bytes(key_pem(ca_key))
    for base, cn, org, server in [
        ("apiserver", "kube-apiserver", None, True),
        ("admin", "s1mple-admin", "system:masters", False),
    ]:
        crt, key = issue(cn, org, server)
        (pki / f"{base}.crt").write_bytes(crt)
        (pki / f"{base}.key").write_bytes(key)
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "sa.key").write_bytes(key_pem(sa))
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for p in pki.iterdir():
        if p.name.endswith(".key"):
            p.chmod(0o600)


def _kubeconfig(server: str, pki: Path) -> dict:
    def b64(p: str) -> str:
        return base64.b64encode((pki / p).read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "s1mple", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}
        ],
        "users": [
            {
                "name": "s1mple-admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [{"name": "s1mple", "context": {"cluster": "s1mple", "user": "s1mple-admin"}}],
        "current-context": "s1mple",
    }


# --------------------------------------------------------------------- processes


def _proc_start_time(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL when its parent dies (pytest killed hard)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Proc:
    name: str
    pid: int
    start_time: str
    popen: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _proc_start_time(self.pid) == self.start_time

    def signal(self, sig: int) -> None:
        if not self.alive():
            return
        # Every component runs in its own session; signal the whole group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            self.signal(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        # Leftovers of the group (e.g. pod processes of a killed agent).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(Exception):
                self.popen.wait(timeout=1)


class Cluster:
    """One test cluster whose state lives in ``state_dir``.

    ``owned=True`` (pytest): child processes die with this Python process.
    ``owned=False`` (``up``): they outlive it and are stopped via pid files.
    """

    ORDER = ["etcd", "minio", "kube-apiserver", "kube-controller-manager", "node-agent"]

    def __init__(self, state_dir: str | os.PathLike, owned: bool = True):
        self.dir = Path(state_dir).resolve()
        self.owned = owned
        self.procs: dict[str, Proc] = {}
        self.state: dict = {}
        self.timings: dict[str, float] = {}

    # paths --------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def pod_log_dir(self) -> Path:
        """Container logs: ``<pod_log_dir>/<namespace>/<pod>/<container>.log``."""
        return self.dir / "pod-logs"

    @property
    def image_map_path(self) -> Path:
        """JSON image -> local PATH prefix map, re-read by the node agent per pod."""
        return self.dir / "image-map.json"

    @property
    def image_index(self) -> Path:
        """reference -> OCI archive: the node agent's image store (this checkout's built images)."""
        return self.dir / "images.json"

    @property
    def kubectl(self) -> Path:
        return binaries()["kubectl"]

    @property
    def api_url(self) -> str:
        return self.state["api_url"]

    @property
    def s3_endpoint(self) -> str:
        return self.state["s3_endpoint"]

    @property
    def s3_access_key(self) -> str:
        return self.state["s3_access_key"]

    @property
    def s3_secret_key(self) -> str:
        return self.state["s3_secret_key"]

    @property
    def node_name(self) -> str:
        return self.state.get("node_name", NODE_NAME)

    # state ----------------------------------------------------------------------
    def _save(self) -> None:
        self.state["procs"] = {n: {"pid": p.pid, "start_time": p.start_time} for n, p in self.procs.items()}
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.dir / "state.json")

    def load(self) -> bool:
        """Attach to the cluster recorded in state_dir; False if there is none."""
        try:
            self.state = json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return False
        self.procs = {n: Proc(n, v["pid"], v["start_time"]) for n, v in self.state.get("procs", {}).items()}
        return True

    def running(self) -> bool:
        return bool(self.procs) and all(self.procs.get(n) and self.procs[n].alive() for n in self.ORDER)

    def env(self) -> dict[str, str]:
        """Variables for kubectl, the operator and boto3 (which reads AWS_* itself)."""
        path = os.environ.get("PATH", "")
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "S1MPLE_CLUSTER_DIR": str(self.dir),
            "PATH": f"{self.kubectl.parent}:{path}",
        }

    def exports(self) -> str:
        import shlex

        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env().items())

    # http -----------------------------------------------------------------------
    def rest(self) -> ApiServer:
        """The project's REST client (s1mple.executors.apiserver.ApiServer) as the cluster's admin."""
        from s1mple.executors.apiserver import ApiServer, client_certificate

        pki = self.pki
        ca, cert, key = (str(pki / f) for f in ("ca.crt", "admin.crt", "admin.key"))
        return ApiServer(login=client_certificate(self.api_url, ca, cert, key), user_agent="s1mple-tests")

    def api(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # no REQUESTS_CA_BUNDLE or proxies from the environment
        s.verify = str(self.pki / "ca.crt")
        s.cert = (str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return s

    # lifecycle ------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - child keeps the fd
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env if env is not None else self._base_env(),
                start_new_session=True,
                preexec_fn=_pdeathsig if self.owned else None,  # noqa: PLW1509
            )
        finally:
            logf.close()
        st = None
        for _ in range(100):
            st = _proc_start_time(popen.pid)
            if st is not None or popen.poll() is not None:
                break
            time.sleep(0.01)
        proc = Proc(name, popen.pid, st or "?", popen)
        self.procs[name] = proc
        (self.dir / "run").mkdir(exist_ok=True)
        (self.dir / "run" / f"{name}.pid").write_text(f"{popen.pid}\n")
        self._save()
        return proc

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG", "MINIO_"))}
        env.setdefault("HOME", str(self.dir))
        return env

    def _check_alive(self, *names: str) -> None:
        for n in names:
            p = self.procs.get(n)
            if p is not None and not p.alive():
                tail = ""
                with contextlib.suppress(OSError):
                    tail = (self.log_dir / f"{n}.log").read_text(errors="replace")[-3000:]
                raise ClusterError(f"{n} exited early; log tail:\n{tail}")

    def _wait(self, what: str, check, timeout: float, procs: tuple[str, ...]) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        delay = 0.05
        last_err: object = None
        while True:
            self._check_alive(*procs)
            try:
                if check():
                    self.timings[what] = round(time.monotonic() - t0, 2)
                    return
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last_err = e
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}: {last_err!r}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def start(self, timeout: float = 240.0) -> Cluster:
        missing = missing_binaries()
        if missing:
            raise ClusterError(f"missing binaries {missing}; run tests/cluster/build")
        t0 = time.monotonic()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        bins = binaries()
        try:
            _write_pki(self.pki)
            etcd_port, etcd_peer, api_port, s3_port, s3_console = free_ports(5)
            self.state = {
                "k8s_version": K8S_VERSION,
                "minio_version": MINIO_VERSION,
                "api_url": f"https://127.0.0.1:{api_port}",
                "etcd_url": f"http://127.0.0.1:{etcd_port}",
                "s3_endpoint": f"http://127.0.0.1:{s3_port}",
                "s3_access_key": "s1mple-" + secrets.token_hex(6),
                "s3_secret_key": secrets.token_urlsafe(24),
                "node_name": NODE_NAME,
                "owned": self.owned,
            }
            self.kubeconfig.write_text(json.dumps(_kubeconfig(self.api_url, self.pki), indent=2))
            self.kubeconfig.chmod(0o600)
            if not self.image_map_path.exists():
                self.image_map_path.write_text(json.dumps(PROCESS_IMAGES) + "\n")
            self.image_index.write_text(json.dumps(image_archives(), indent=2) + "\n")
            self._save()

            self._spawn(
                "etcd",
                [
                    str(bins["etcd"]),
                    "--name=s1mple",
                    f"--data-dir={self.dir / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-cluster=s1mple=http://127.0.0.1:{etcd_peer}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                    "--quota-backend-bytes=2147483648",
                ],
            )
            menv = self._base_env()
            menv.update(
                MINIO_ROOT_USER=self.s3_access_key,
                MINIO_ROOT_PASSWORD=self.s3_secret_key,
                MINIO_BROWSER="off",
                MINIO_UPDATE="off",
                MINIO_CI_CD="on",
            )
            self._spawn(
                "minio",
                [
                    str(bins["minio"]),
                    "server",
                    "--quiet",
                    "--address",
                    f"127.0.0.1:{s3_port}",
                    "--console-address",
                    f"127.0.0.1:{s3_console}",
                    str(self.dir / "minio"),
                ],
                env=menv,
            )
            self._wait(
                "etcd",
                lambda: (
                    requests.get(f"http://127.0.0.1:{etcd_port}/health", timeout=2).json()["health"] == "true"
                ),
                60,
                ("etcd",),
            )
            pki = self.pki
            self._spawn(
                "kube-apiserver",
                [
                    str(bins["kube-apiserver"]),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--api-audiences=https://kubernetes.default.svc.cluster.local",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--authorization-mode=RBAC",
                    "--endpoint-reconciler-type=none",
                    "--allow-privileged=true",
                    "--profiling=false",
                    "--event-ttl=30m",
                    # 2 cores shared with the tests: plain in-flight limits.
                    "--enable-priority-and-fairness=false",
                    "--max-requests-inflight=800",
                    "--max-mutating-requests-inflight=400",
                    f"--cert-dir={self.dir / 'apiserver-certs'}",
                    "--v=1",
                ],
            )
            s = self.api()
            self._wait(
                "kube-apiserver",
                lambda: s.get(f"{self.api_url}/readyz", timeout=5).status_code == 200,
                120,
                ("etcd", "kube-apiserver"),
            )
            self._spawn(
                "kube-controller-manager",
                [
                    str(bins["kube-controller-manager"]),
                    f"--kubeconfig={self.kubeconfig}",
                    "--secure-port=0",
                    "--leader-elect=false",
                    f"--controllers={','.join(CONTROLLERS)}",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    "--kube-api-qps=200",
                    "--kube-api-burst=400",
                    "--concurrent-job-syncs=10",
                    "--concurrent-gc-syncs=20",
                    "--concurrent-namespace-syncs=10",
                    "--v=1",
                ],
            )
            self._spawn(
                "node-agent",
                [
                    sys.executable,
                    str(HERE / "node_agent.py"),
                    f"--server={self.api_url}",
                    f"--ca={pki / 'ca.crt'}",
                    f"--cert={pki / 'admin.crt'}",
                    f"--key={pki / 'admin.key'}",
                    f"--node-name={self.node_name}",
                    f"--pod-log-dir={self.pod_log_dir}",
                    f"--pod-dir={self.dir / 'pods'}",
                    f"--image-map={self.image_map_path}",
                    f"--images={self.image_index}",
                    f"--rootfs-dir={cache_dir() / 'rootfs'}",
                    f"--kubelet-version={K8S_VERSION}",
                ],
            )
            all_procs = tuple(self.ORDER)
            self._wait("node Ready", lambda: self._node_ready(s), 60, all_procs)
            self._wait(
                "controller-manager (default ServiceAccount)",
                lambda: (
                    s.get(
                        f"{self.api_url}/api/v1/namespaces/default/serviceaccounts/default", timeout=5
                    ).status_code
                    == 200
                ),
                90,
                all_procs,
            )
            self._wait(
                "minio",
                lambda: requests.get(f"{self.s3_endpoint}/minio/health/ready", timeout=2).status_code == 200,
                60,
                all_procs,
            )
            self.timings["total"] = round(time.monotonic() - t0, 2)
            self.state["timings"] = self.timings
            self._save()
            (self.dir / "env.sh").write_text(self.exports())
            return self
        except BaseException:
            self.stop()
            raise

    @contextlib.contextmanager
    def outage(self, name: str, timeout: float = 120.0):
        """One component down for the ``with`` block, then started again with the same command line,
        environment, certificates and data (etcd's, MinIO's): an outage, as a control-plane upgrade or a
        crashed MinIO makes one.  Leaves the block once it serves again (kube-apiserver: /readyz; MinIO:
        its health check).  Works on a cluster started here or attached to (load())."""
        proc = self.procs[name]
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="surrogateescape")
        env = dict(kv.split("=", 1) for kv in environ.split("\0") if "=" in kv)
        proc.stop()
        try:
            yield
        finally:
            self._spawn(name, [a.decode(errors="surrogateescape") for a in argv], env=env)
            session = self.api()
            ready = {
                "kube-apiserver": lambda: session.get(f"{self.api_url}/readyz", timeout=5).status_code == 200,
                "minio": lambda: (
                    requests.get(f"{self.s3_endpoint}/minio/health/ready", timeout=2).status_code == 200
                ),
            }.get(name, lambda: True)
            self._wait(f"{name} restarted", ready, timeout, (name,))

    def _node_ready(self, s: requests.Session) -> bool:
        r = s.get(f"{self.api_url}/api/v1/nodes/{self.node_name}", timeout=5)
        if r.status_code != 200:
            return False
        conds = r.json().get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def stop(self) -> None:
        """Stop every process this cluster started, in reverse order, by pid."""
        for name in reversed(self.ORDER):
            p = self.procs.get(name)
            if p is not None:
                # The agent kills its pods' process groups on SIGTERM.
                p.stop(timeout=15 if name == "node-agent" else 10)
        for f in (self.dir / "run").glob("*.pid") if (self.dir / "run").is_dir() else []:
            f.unlink(missing_ok=True)
        if self.state:
            self.state["stopped"] = True
            with contextlib.suppress(OSError):
                self._save()


# ----------------------------------------------------------------------------- CLI


def _state_dir(args_dir: str | None) -> Path:
    return Path(args_dir or os.environ.get("S1MPLE_CLUSTER_DIR") or DEFAULT_STATE_DIR)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["up", "down", "env", "status"])
    ap.add_argument("--dir", help=f"state dir (default $S1MPLE_CLUSTER_DIR or {DEFAULT_STATE_DIR})")
    args = ap.parse_args(argv)
    c = Cluster(_state_dir(args.dir), owned=False)
    if args.command == "up":
        if c.load() and c.running():
            log(f"already running in {c.dir}")
        else:
            if c.load():
                c.stop()  # leftovers of a half-dead cluster
            c = Cluster(c.dir, owned=False)
            t0 = time.monotonic()
            try:
                c.start()
            except ClusterError as e:
                log(f"failed: {e}")
                return 1
            log(f"up in {time.monotonic() - t0:.1f}s ({c.timings}); state in {c.dir}")
            log(f"pod logs in {c.pod_log_dir}; stop with tests/cluster/down")
        sys.stdout.write(c.exports())
        return 0
    if args.command == "down":
        if not c.load():
            log(f"no cluster in {c.dir}")
            return 0
        c.stop()
        log(f"stopped cluster in {c.dir}")
        return 0
    if args.command == "env":
        if not c.load():
            log(f"no cluster in {c.dir}")
            return 1
        sys.stdout.write(c.exports())
        return 0
    if args.command == "status":
        ok = c.load() and c.running()
        for n, p in c.procs.items():
            print(f"{n:26} pid {p.pid:<8} {'running' if p.alive() else 'stopped'}")
        return 0 if ok else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
