"""The node agent's container runtime: OCI images unpacked once, containers run in their filesystem.

* :class:`ImageStore` resolves an image reference through a JSON file (reference -> OCI archive built by
  ``tests/cluster/images``; the cluster's ``images.json``, re-read per pod), unpacks each image once per
  manifest digest into ``<rootfs dir>/<digest>/rootfs`` (layers applied in order, whiteouts honoured)
  and reads its config (Entrypoint, Cmd, Env, WorkingDir, User).
* :func:`sandbox_argv` is the command that runs one container: a private mount namespace (``unshare``)
  mounts an overlay whose lower layer is the image's rootfs and whose upper layer is the container's own
  directory (so containers never change the shared rootfs), creates the volumes' mount points in it, then
  ``bwrap`` makes that overlay the root, with /proc, /dev, the volumes, the pod's hostname, the root
  remounted read-only for ``readOnlyRootFilesystem``, and the user of ``runAsUser``/``runAsGroup`` (a user
  namespace entered as that uid with ``setpriv``, so the process never holds root). The network is the
  host's: pods reach the apiserver and MinIO on 127.0.0.1.

Only the standard library; the agent runs as root (CI and dev machines are root).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path


def host_tool(name: str) -> str:
    """Absolute path of a host tool: the container's env (its own PATH) is the wrapper's env too."""
    return shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") or name


class ImagePullError(Exception):
    """The image is not in the store (ErrImagePull, then ImagePullBackOff while it stays missing)."""


@dataclass(frozen=True)
class Image:
    reference: str
    digest: str
    rootfs: Path
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    user: str = ""


class ImageStore:
    """Image references -> unpacked images, each unpacked once per manifest digest (shared by clusters)."""

    def __init__(self, index: Path, rootfs_dir: Path):
        self.index_path = Path(index)
        self.rootfs_dir = Path(rootfs_dir)
        self._lock = threading.Lock()
        self._images: dict[str, Image] = {}

    def archives(self) -> dict[str, str]:
        try:
            return json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return {}

    def has(self, reference: str) -> bool:
        return reference in self.archives()

    def get(self, reference: str) -> Image:
        archive = self.archives().get(reference)
        if archive is None or not Path(archive).exists():
            raise ImagePullError(
                f'image "{reference}" not found: not in {self.index_path} (build it: tests/cluster/images)'
            )
        with self._lock:  # one unpack at a time; pods of the same image wait for it
            key = f"{reference}@{archive}"
            if key not in self._images:
                self._images[key] = self._unpack(reference, Path(archive))
            return self._images[key]

    def _unpack(self, reference: str, archive: Path) -> Image:
        with tarfile.open(archive) as tf:

            def blob(digest: str):
                return tf.extractfile(f"blobs/{digest.replace(':', '/')}")

            index = json.loads(tf.extractfile("index.json").read())
            digest = index["manifests"][0]["digest"]
            manifest = json.loads(blob(digest).read())
            config = json.loads(blob(manifest["config"]["digest"]).read()).get("config") or {}
            target = self.rootfs_dir / digest.replace(":", "-")
            if not (target / "rootfs").is_dir():
                tmp = self.rootfs_dir / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
                shutil.rmtree(tmp, ignore_errors=True)
                (tmp / "rootfs").mkdir(parents=True)
                for layer in manifest["layers"]:
                    with tarfile.open(fileobj=blob(layer["digest"]), mode="r|*") as lt:
                        apply_layer(lt, tmp / "rootfs")
                try:
                    tmp.rename(target)  # atomic: another agent may have unpacked the same digest meanwhile
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
        env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
        return Image(
            reference=reference,
            digest=digest,
            rootfs=target / "rootfs",
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
            env=env,
            working_dir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
        )


def apply_layer(layer: tarfile.TarFile, root: Path) -> None:
    """Extract one OCI layer over ``root``: ``.wh.<name>`` deletes a lower file, ``.wh..wh..opq`` empties
    a directory; nothing is written through a symlink that leaves ``root``."""
    real_root = os.path.realpath(root)
    for member in layer:
        rel = os.path.normpath(member.name.lstrip("/"))
        if rel.startswith(".."):
            raise ValueError(f"layer member {member.name!r} leaves the root")
        parent, base = os.path.split(rel)
        real_parent = os.path.realpath(os.path.join(root, parent))
        if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
            raise ValueError(f"layer member {member.name!r} is written through a symlink out of the root")
        if base == ".wh..wh..opq":
            for child in Path(real_parent).iterdir():
                _remove(child)
            continue
        if base.startswith(".wh."):
            _remove(Path(real_parent) / base[4:])
            continue
        dest = Path(real_parent) / base
        if dest.is_symlink() or (dest.exists() and not (dest.is_dir() and member.isdir())):
            _remove(dest)
        layer.extract(member, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def user_ids(image: Image, run_as_user: int | None, run_as_group: int | None) -> tuple[int, int]:
    """(uid, gid): the pod's securityContext first, else the image's User (numeric or a passwd name)."""
    name, _, group = image.user.partition(":")
    uid, gid = run_as_user, run_as_group
    passwd = _passwd(image.rootfs)
    if uid is None:
        if not name:
            uid = 0
        elif name.isdigit():
            uid = int(name)
        elif name in passwd:
            uid = passwd[name][0]
        else:
            raise ValueError(f'image user "{name}" is not in the image\'s /etc/passwd')
    if gid is None:
        gid = int(group) if group.isdigit() else next((g for u, g in passwd.values() if u == uid), 0)
    return uid, gid


def _passwd(rootfs: Path) -> dict[str, tuple[int, int]]:
    try:
        lines = (rootfs / "etc" / "passwd").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        f = line.split(":")
        if len(f) >= 4 and f[2].isdigit() and f[3].isdigit():
            out[f[0]] = (int(f[2]), int(f[3]))
    return out


def resolve_in_root(rootfs: Path, path: str) -> str:
    """``path`` with the image's symlinks resolved as inside the container (e.g. /var/run -> /run), so
    that creating it never follows an absolute link out to the host."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        here = rootfs.joinpath(*done, part)
        if here.is_symlink() and hops < 40:
            hops += 1
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return "/" + "/".join(done)


# Where each container's root is mounted inside its own private mount namespace (the host sees an empty
# directory): reachable by any uid, unlike the container's dir under the pod dir.
MOUNT_POINT = Path("/tmp/.s1mple-container-root")


@dataclass
class Mount:
    """A host directory (or file) mounted at ``path`` in the container."""

    source: Path
    path: str
    read_only: bool = False


def sandbox_argv(
    image: Image,
    argv: list[str],
    container_dir: Path,
    mounts: list[Mount],
    uid: int,
    gid: int,
    read_only_root: bool,
    working_dir: str,
    hostname: str,
) -> list[str]:
    """The host command that runs ``argv`` inside ``image`` (see the module docstring)."""
    upper, work = container_dir / "upper", container_dir / "work"
    for d in (upper, work):
        d.mkdir(parents=True, exist_ok=True)
    bwrap = [
        host_tool("bwrap"),
        "--die-with-parent",
        "--unshare-uts",
        "--unshare-ipc",
        "--hostname",
        hostname,
    ]
    if uid != 0:
        bwrap += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
    bwrap += ["--bind", str(MOUNT_POINT), "/", "--proc", "/proc", "--dev", "/dev"]
    if read_only_root:
        bwrap += ["--remount-ro", "/"]
    bwrap += ["--chdir", working_dir or "/", "--", *argv]
    if uid != 0:  # enter the user namespace as that uid: no moment with root's powers in the container
        bwrap = [host_tool("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *bwrap]
    # As root in the private mount namespace: the overlay on MOUNT_POINT (a path any uid can reach; the
    # container's own dir may sit below a 0700 dir such as pytest's), then each volume bound at its mount
    # point in it (created in the upper layer: neither a read-only root nor an unprivileged uid could);
    # bwrap's binds are recursive, so its bind of the root carries the volumes along.
    MOUNT_POINT.mkdir(mode=0o755, exist_ok=True)
    mount, mkdir = host_tool("mount"), host_tool("mkdir")
    script = (
        f'{mount} -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && root="$4" && shift 4 '
        f'&& while [ "$1" != -- ]; do {mkdir} -p "$root$2" && {mount} --bind "$1" "$root$2" '
        f'&& {{ [ "$3" = rw ] || {mount} -o remount,bind,ro "$root$2"; }} && shift 3 || exit 125; done '
        '&& shift && exec "$@"'
    )
    volumes = []
    for m in mounts:
        volumes += [str(m.source), resolve_in_root(image.rootfs, m.path), "ro" if m.read_only else "rw"]
    unshare = [host_tool("unshare"), "--mount", "--propagation", "private", "--"]
    layers = [str(image.rootfs), str(upper), str(work), str(MOUNT_POINT)]
    return [*unshare, host_tool("sh"), "-c", script, "sandbox", *layers, *volumes, "--", *bwrap]
