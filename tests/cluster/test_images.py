"""Pods run from the images that ship: the node agent's image mode on the built s1mple images, and the
one version every place names."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.cluster.cluster import cache_dir
from tests.cluster.fixtures import wait_for
from tests.cluster.test_jobs import pods
from tests.cluster.test_node_agent import wait_phase

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
RUNNER = f"ghcr.io/s1mple/s1mple-runner:{VERSION}"


def image_pod(name: str, image: str = RUNNER, restart: str = "Never", **container) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": image, **container}],
        },
    }


def python(code: str) -> list[str]:
    return ["python3", "-c", code]


def container_status(pod: dict) -> dict:
    return pod["status"]["containerStatuses"][0]


def test_one_version_names_images_chart_and_deploy():
    """pyproject's version is the images' tag, the chart's appVersion, the operator's default runner
    image, config/deploy's image and the engine distribution's version."""
    from s1mple.kube.spec import DEFAULT_RUNNER_IMAGE

    chart = yaml.safe_load((ROOT / "charts/s1mple/Chart.yaml").read_text())
    deploy = list(yaml.safe_load_all((ROOT / "config/deploy/operator.yaml").read_text()))
    images = [
        c["image"]
        for d in deploy
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    engine = tomllib.loads((ROOT / "runner-image/pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == VERSION
    assert images == [f"ghcr.io/s1mple/s1mple-operator:{VERSION}"]
    assert DEFAULT_RUNNER_IMAGE == RUNNER
    assert engine == VERSION


def test_runner_distribution_has_no_operator_dependencies():
    """The runner image installs s1mple-engine only: no kopf, no optuna, no operator code."""
    engine = tomllib.loads((ROOT / "runner-image/pyproject.toml").read_text())["project"]
    names = {re.split(r"[=<>~!\[ ]", d, maxsplit=1)[0].lower() for d in engine["dependencies"]}
    assert not names & {"kopf", "optuna", "s1mple", "urllib3"}, names
    dockerfile = (ROOT / "runner-image/Dockerfile").read_text().splitlines()
    copies = [ln for ln in dockerfile if ln.startswith("COPY")]
    assert not [ln for ln in copies if "operator/" in ln or "pyproject.toml ./" in ln], copies


@pytest.mark.cluster
def test_image_entrypoint_env_workdir_and_user(kube_cluster, kube_api, kube_namespace, runner_image):
    """No command: the image's Entrypoint runs (s1mple-runner, with the pod's args); with a command the
    image's Env and WorkingDir still apply, the process runs as the image's user 65532, not root, and
    the root is the image's (its /app/config), not the host's."""
    ns = kube_namespace
    kube_api.create(pods(ns), image_pod("entry", args=["--help"]))
    probe = (
        "import os, json; print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'cwd': os.getcwd(), "
        "'root': os.environ.get('S1MPLE_CONFIG_ROOT'), 'app': sorted(os.listdir('/app')), "
        "'venv': os.path.exists('/opt/s1mple/bin/s1mple-runner'), 'host': os.path.exists('"
        + str(ROOT)
        + "'), "
        "'kopf': __import__('importlib.util').util.find_spec('kopf') is not None, "
        "'s1mple': __import__('importlib.util').util.find_spec('s1mple') is not None}))"
    )
    kube_api.create(pods(ns), image_pod("who", command=python(probe)))
    entry = wait_phase(kube_api, ns, "entry", timeout=300)
    assert entry["status"]["phase"] == "Succeeded", kube_cluster.node_agent.container_log(ns, "entry")
    assert "usage: s1mple-runner" in kube_cluster.node_agent.container_log(ns, "entry")
    who = wait_phase(kube_api, ns, "who", timeout=300)
    log = kube_cluster.node_agent.container_log(ns, "who")
    assert who["status"]["phase"] == "Succeeded", log
    seen = json.loads(log.strip().splitlines()[-1])
    assert seen == {
        "uid": 65532,
        "gid": 65532,
        "cwd": "/app",
        "root": "/app",
        "app": ["config"],
        "venv": True,
        "host": False,
        "kopf": False,
        "s1mple": False,
    }
    assert container_status(who)["imageID"].startswith("sha256:")


@pytest.mark.cluster
def test_read_only_root_filesystem(kube_cluster, kube_api, kube_namespace, runner_image):
    """readOnlyRootFilesystem: writing to / fails, an emptyDir stays writable; without it (as root) the
    same write succeeds, and never reaches the image's shared filesystem."""
    ns = kube_namespace
    write = python(
        "import sys\n"
        "open('/tmp/scratch/ok', 'w').write('x')\n"
        "try:\n    open('/probe', 'w').write('x')\nexcept OSError as e:\n    print('ERR', e); sys.exit(3)\n"
        "print('WROTE')"
    )
    volumes = {"volumeMounts": [{"name": "scratch", "mountPath": "/tmp/scratch"}]}
    for name, ctx in (
        ("ro", {"readOnlyRootFilesystem": True}),
        ("rw", {"runAsUser": 0, "runAsGroup": 0}),
    ):
        body = image_pod(name, command=write, securityContext=ctx, **volumes)
        body["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        kube_api.create(pods(ns), body)
    ro = wait_phase(kube_api, ns, "ro", timeout=300)
    log = kube_cluster.node_agent.container_log(ns, "ro")
    assert ro["status"]["phase"] == "Failed" and container_status(ro)["state"]["terminated"]["exitCode"] == 3
    assert "Read-only file system" in log, log
    rw = wait_phase(kube_api, ns, "rw", timeout=300)
    assert rw["status"]["phase"] == "Succeeded", kube_cluster.node_agent.container_log(ns, "rw")
    assert "WROTE" in kube_cluster.node_agent.container_log(ns, "rw")
    # the write went to the container's own layer, never to the image's shared filesystem
    assert not list((cache_dir() / "rootfs").glob("*/rootfs/probe"))


@pytest.mark.cluster
def test_service_account_token_is_projected(kube_cluster, kube_api, kube_namespace, runner_image):
    """The ServiceAccount admission's kube-api-access volume: a TokenRequest token, ca.crt and the
    namespace, with which the pod authenticates to the apiserver as its ServiceAccount."""
    ns = kube_namespace
    code = (
        "import os, ssl, json, urllib.request, urllib.error\n"
        "d = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ns = open(d + '/namespace').read()\n"
        "ctx = ssl.create_default_context(cafile=d + '/ca.crt')\n"
        "url = 'https://%s:%s/api/v1/namespaces/%s/pods' % (os.environ['KUBERNETES_SERVICE_HOST'], "
        "os.environ['KUBERNETES_SERVICE_PORT'], ns)\n"
        "auth = {'Authorization': 'Bearer ' + open(d + '/token').read()}\n"
        "req = urllib.request.Request(url, headers=auth)\n"
        "try:\n    urllib.request.urlopen(req, context=ctx)\nexcept urllib.error.HTTPError as e:\n"
        "    print(json.loads(e.read())['message'])\n"
    )
    kube_api.create(pods(ns), image_pod("sa", command=python(code)))
    pod = wait_phase(kube_api, ns, "sa", timeout=300)
    log = kube_cluster.node_agent.container_log(ns, "sa")
    assert pod["status"]["phase"] == "Succeeded", log
    # authenticated as the pod's ServiceAccount (which has no RBAC grant: 403, not 401)
    assert f'User "system:serviceaccount:{ns}:default" cannot list resource "pods"' in log, log


@pytest.mark.cluster
def test_unknown_image_waits_in_image_pull_back_off(kube_cluster, kube_api, kube_namespace, runner_image):
    ns = kube_namespace
    kube_api.create(pods(ns), image_pod("nope", image="registry.example/nothing:1.0"))

    def backoff():
        p = kube_api.get(f"{pods(ns)}/nope")
        w = (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting", {})
        return p if w.get("reason") == "ImagePullBackOff" else None

    pod = wait_for(backoff, timeout=120, what="ImagePullBackOff")
    assert pod["status"]["phase"] == "Pending"
    assert "registry.example/nothing:1.0" in container_status(pod)["state"]["waiting"]["message"]
    assert kube_cluster.node_agent.alive()


@pytest.mark.cluster
def test_restart_always_backs_off_instead_of_failing(kube_cluster, kube_api, kube_namespace, runner_image):
    """restartPolicy Always: a container that exits (or cannot start) is restarted with back-off
    (CrashLoopBackOff), the pod stays Running, never Failed (a ReplicaSet would replace it in a loop)."""
    ns = kube_namespace
    kube_api.create(pods(ns), image_pod("crash", restart="Always", command=python("raise SystemExit(3)")))
    kube_api.create(pods(ns), image_pod("nocmd", restart="Always", command=["/no/such/binary"]))
    for name in ("crash", "nocmd"):
        pod = wait_for(
            lambda n=name: (
                (p := kube_api.get(f"{pods(ns)}/{n}"))
                and container_status(p).get("restartCount", 0) >= 2
                and p
            ),
            timeout=180,
            what=f"{name} restarted twice",
        )
        assert pod["status"]["phase"] == "Running", pod["status"]
        cs = container_status(pod)
        assert cs["lastState"]["terminated"]["exitCode"] != 0


def _layer(tmp_path: Path, name: str, entries: dict[str, str | None]) -> Path:
    """A layer tarball: path -> file content, or None for a directory."""
    import io
    import tarfile

    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tf:
        for member, text in entries.items():
            info = tarfile.TarInfo(member)
            if text is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                data = text.encode()
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def test_layers_apply_in_order_with_whiteouts(tmp_path):
    """A later layer's file replaces a lower one, `.wh.x` deletes x, `.wh..wh..opq` empties a directory,
    and a member written through a symlink out of the root is refused."""
    import tarfile

    from tests.cluster import oci

    root = tmp_path / "rootfs"
    root.mkdir()
    lower = {"etc": None, "etc/a": "1", "etc/b": "1", "opt": None, "opt/old": "1", "app": None, "app/x": "1"}
    upper = {"etc/a": "2", "etc/.wh.b": "", "opt/.wh..wh..opq": "", "opt/new": "2"}
    for name, entries in (("l1.tar.gz", lower), ("l2.tar.gz", upper)):
        with tarfile.open(_layer(tmp_path, name, entries)) as lt:
            oci.apply_layer(lt, root)
    assert (root / "etc/a").read_text() == "2"
    assert not (root / "etc/b").exists()
    assert sorted(p.name for p in (root / "opt").iterdir()) == ["new"]
    assert (root / "app/x").read_text() == "1"
    (root / "out").symlink_to(tmp_path)  # an absolute link: writing through it would leave the root
    with tarfile.open(_layer(tmp_path, "l3.tar.gz", {"out/escaped": "x"})) as lt, pytest.raises(ValueError):
        oci.apply_layer(lt, root)
    assert not (tmp_path / "escaped").exists()
    (root / "var").mkdir()
    (root / "run").mkdir()
    (root / "var/run").symlink_to("/run")
    assert oci.resolve_in_root(root, "/var/run/secrets/x") == "/run/secrets/x"
