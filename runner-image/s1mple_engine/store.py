"""One storage interface for run results, used by the local sweep and by the Kubernetes runner pod.

``open_store(uri)`` gives a :class:`Store` rooted at

* ``file:///abs/dir``, ``file://rel/dir`` or a plain path: a local folder; every write is atomic
  (temporary file in the same folder + ``os.replace``), so a killed process never leaves half a file;
* ``s3://bucket/prefix``: S3-compatible storage through boto3.  The endpoint is the explicit
  ``endpoint_url`` or ``$AWS_ENDPOINT_URL``/``$S1MPLE_S3_ENDPOINT`` (unset: AWS), credentials come from the
  environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles, IRSA...). A PUT is atomic by
  nature.

Keys are relative, '/'-separated; parts built from user input go through :func:`safe_name`.  Call
:meth:`Store.probe` before any work: it checks the store is reachable and writable and raises
:class:`StoreError` naming the endpoint and the env vars to check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL", "S1MPLE_S3_ENDPOINT")
CREDENTIAL_ENV_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
MAX_KEY_PART = 100
MAX_KEY = 900  # S3 allows 1024 bytes; leave room for a prefix


class StoreError(RuntimeError):
    """The store cannot be used (unreachable, no permission, bad URI); the message says what to check."""


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, max_len: int = MAX_KEY_PART) -> str:
    """A file/key-safe version of user text: [A-Za-z0-9._-] only, no leading dots, bounded length.

    Runs of other characters become one ``_``; when the text had to be shortened, a short hash of the
    original keeps it unique (``unique_names`` handles names that only differ in dropped characters).
    """
    cleaned = _UNSAFE.sub("_", str(text).strip()).strip("._-") or "unnamed"
    if len(cleaned) > max_len:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        cleaned = cleaned[: max_len - 9].rstrip("._-") + "-" + digest
    return cleaned


def unique_names(names: list[str], max_len: int = MAX_KEY_PART) -> dict[str, str]:
    """``safe_name`` of each name, with a hash suffix where two names would collide."""
    safe = {n: safe_name(n, max_len) for n in names}
    counts: dict[str, int] = {}
    for s in safe.values():
        counts[s.lower()] = counts.get(s.lower(), 0) + 1
    for n, s in safe.items():
        if counts[s.lower()] > 1:
            safe[n] = safe_name(s, max_len - 9) + "-" + hashlib.sha256(n.encode()).hexdigest()[:8]
    return safe


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or len(key) > MAX_KEY:
        raise ValueError(f"invalid store key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid store key {key!r}: empty, '.' or '..' part")
    return key


class Store:
    """Interface of a result store; keys are relative '/'-separated paths."""

    uri: str

    def put_bytes(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` if there is none."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (a folder like ``results/`` or any key prefix), sorted."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def probe(self) -> None:
        """Raise :class:`StoreError` unless the store is reachable and writable."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.uri

    def url(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"

    # conveniences -------------------------------------------------------------------------------------

    def put_json(self, key: str, value: Any, indent: int | None = None) -> None:
        """Compact by default (the C encoder: ``indent`` makes json use its slow pure-Python path)."""
        self.put_bytes(key, json.dumps(value, indent=indent, default=str).encode())

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def put_jsonl(self, key: str, rows: list[Any]) -> None:
        self.put_bytes(key, "".join(json.dumps(r, default=str) + "\n" for r in rows).encode())

    def put_lines(self, key: str, lines: Iterable[str]) -> None:
        """Write a (possibly huge) text object from an iterator of lines without holding the lines."""
        with tempfile.TemporaryFile() as fh:
            for line in lines:
                fh.write(line.encode())
            fh.seek(0)
            self.put_bytes(key, fh.read())

    def iter_jsonl(self, key: str) -> Iterator[Any]:
        """Rows of a JSON-lines object; a torn last line (cannot happen with atomic writes) is skipped.

        Parsed as one JSON array: the decoder then shares each key string across all rows (10,000 run
        records: 21 MB instead of 41 MB, and faster); line by line only if some line is broken."""
        lines = [line for line in self.get_bytes(key).decode().splitlines() if line.strip()]
        try:
            yield from json.loads("[" + ",".join(lines) + "]")
            return
        except json.JSONDecodeError:
            pass
        for line in lines:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


class FileStore(Store):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.uri = "file://" + str(self.root.resolve())

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    @contextmanager
    def _replacing(self, key: str) -> Iterator[BinaryIO]:
        """A temporary file beside the key's path that replaces it only once the block succeeded:
        readers never see a half-written object."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._replacing(key) as fh:
            fh.write(data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self.root
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / folder if folder else base
        if not start.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(start):
            for f in files:
                if f.startswith(".tmp-"):
                    continue
                key = Path(dirpath, f).relative_to(base).as_posix()
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def delete(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self._path(key).unlink()

    def put_lines(self, key: str, lines: Iterable[str]) -> None:
        with self._replacing(key) as fh:
            for line in lines:
                fh.write(line.encode())

    def probe(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-probe-", dir=self.root)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def local_path(self, key: str) -> Path:
        return self._path(key)


def endpoint_from_env() -> str | None:
    for var in ENDPOINT_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def _sequential_upload() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(use_threads=False)


def _s3_failures() -> tuple[type[Exception], ...]:
    """What boto3 and botocore raise when storage is unreachable, refuses or fails (with the socket
    errors under them): storage trouble, a StoreError naming the endpoint.  Anything else (a TypeError, a
    KeyError in our own code) is a bug and propagates as itself.  Evaluated only when something was
    raised, so boto3 is still imported on first use only."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, Boto3Error, OSError)


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client: Any = None):
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket or ""):
            raise StoreError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = "/".join(p for p in prefix.strip("/").split("/") if p)
        if self.prefix:
            _check_key(self.prefix)
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            cfg = Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            )
            # a fresh session: boto3's default one caches the credentials it resolved first
            self._client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=cfg)
        return self._client

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def describe(self) -> str:
        return f"{self.uri} (endpoint {self.endpoint_url or 'AWS default'})"

    def _error(self, action: str, exc: Exception) -> StoreError:
        env = ", ".join(f"{v}={'set' if os.environ.get(v) else 'unset'}" for v in ENDPOINT_ENV_VARS)
        creds = ", ".join(f"{v}={'set' if os.environ.get(v) else 'unset'}" for v in CREDENTIAL_ENV_VARS)
        return StoreError(
            f"cannot {action} s3://{self.bucket}/{self.prefix} at endpoint "
            f"{self.endpoint_url or '(AWS default)'}: {type(exc).__name__}: {exc}. "
            f"Check the endpoint ({env}) and the credentials ({creds}), and that the bucket exists."
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except _s3_failures() as exc:
            raise self._error(f"write {key} to", exc) from None

    def get_bytes(self, key: str) -> bytes:
        full = self._key(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=full)
            return obj["Body"].read()
        except _s3_failures() as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise self._error(f"read {key} from", exc) from None

    def exists(self, key: str) -> bool:
        full = self._key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=full)
            return True
        except _s3_failures() as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._error(f"check {key} in", exc) from None

    def list_keys(self, prefix: str = "") -> list[str]:
        if prefix.strip("/"):
            _check_key(prefix.rstrip("/"))
        base = self.prefix + "/" if self.prefix else ""
        full = base + prefix
        out = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    out.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        except _s3_failures() as exc:
            raise self._error("list", exc) from None
        return sorted(out)

    def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except _s3_failures() as exc:
            raise self._error(f"delete {key} from", exc) from None

    def put_lines(self, key: str, lines: Iterable[str]) -> None:
        full = self._key(key)
        with tempfile.TemporaryFile() as fh:
            for line in lines:
                fh.write(line.encode())
            fh.seek(0)
            try:
                # one part at a time: boto3's default (10 threads x 8 MB parts) holds ~80 MB of a big
                # result.json in memory at once
                self.client.upload_fileobj(fh, self.bucket, full, Config=_sequential_upload())
            except _s3_failures() as exc:
                raise self._error(f"write {key} to", exc) from None

    def probe(self) -> None:
        """Head the bucket, then write and delete a tiny object: reachable, authorised and writable."""
        key = f".probe-{os.getpid()}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=b"ok")
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except _s3_failures() as exc:
            raise self._error("reach", exc) from None


def open_store(uri: str | Path, endpoint_url: str | None = None) -> Store:
    """A store for ``file://...``, a plain path, or ``s3://bucket/prefix``."""
    text = str(uri)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        return S3Store(parsed.netloc, parsed.path, endpoint_url=endpoint_url)
    if text.startswith("file://"):
        text = text[len("file://") :]
        if not text:
            raise StoreError("file:// needs a path, e.g. file://./runs/x or file:///tmp/x")
    elif "://" in text:
        raise StoreError(f"unsupported store URI {text!r}: use a path, file://PATH or s3://BUCKET/PREFIX")
    return FileStore(text)


def default_location(name: str, base: str | Path = "runs") -> str:
    """Where a sweep writes by default: ``./runs/<sanitised name>``."""
    return str(Path(base) / safe_name(name))
