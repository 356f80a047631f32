"""The one REST client for the API server: plain JSON over urllib3, with kopf's credentials.

The s1mple controller makes five kinds of calls (create/read/list/delete a Job, read a ConfigMap or
Secret), the tests and the test cluster's node agent a few more (patch, watch), so none of them needs a
client library: the official one costs ~50 MB of memory and half a second of import for
code we would not use.  Credentials come from kopf's own login functions (service account in a pod,
else the kubeconfig: token or client certificate), the same ones kopf uses for its watches.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import kopf
import urllib3


class ApiError(Exception):
    """A non-2xx answer; ``status`` is the HTTP code (404 missing, 409 exists, 403 forbidden ...), None
    when the API server could not be reached at all."""

    def __init__(self, status: int | None, method: str, path: str, message: str):
        what = f"HTTP {status}" if status is not None else "unreachable"
        super().__init__(f"{method} {path}: {what}: {message}")
        self.status = status
        self.message = message


def login() -> kopf.ConnectionInfo:
    """In a pod its service account, else the current kubeconfig context (as kopf logs in).

    In a pod the API server is where KUBERNETES_SERVICE_HOST/PORT say, as client-go's in-cluster config
    has it: kopf's own service-account login names https://kubernetes.default.svc, which needs the
    cluster's DNS (and port 443). Registered as kopf's login handler too (s1mple.kube.handlers)."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings)
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if info is not None and host and port:
        info = dataclasses.replace(info, server=f"https://{f'[{host}]' if ':' in host else host}:{port}")
    info = info or kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError(
            "no Kubernetes credentials: not in a pod (no service account token) and no kubeconfig "
            "(set KUBECONFIG or create ~/.kube/config)"
        )
    return info


def client_certificate(server: str, ca: str, cert: str, key: str) -> Callable[[], kopf.ConnectionInfo]:
    """A login with a client certificate from files (the test cluster's admin, its node agent)."""
    info = kopf.ConnectionInfo(server=server, ca_path=ca, certificate_path=cert, private_key_path=key)
    return lambda: info


def _pem(data: str | bytes) -> bytes:
    """kubeconfig ``*-data`` fields are base64 of PEM."""
    return base64.b64decode(data)


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if info.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if info.ca_path:
        ctx.load_verify_locations(cafile=os.fspath(info.ca_path))
    elif info.ca_data:
        ctx.load_verify_locations(cadata=_pem(info.ca_data).decode())
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data or info.private_key_data:
        # ssl loads a client certificate only from files: write them privately, load, delete at once
        with tempfile.TemporaryDirectory(prefix="s1mple-tls-") as tmp:
            if info.certificate_data:
                cert = os.path.join(tmp, "client.crt")
                _write_private(cert, _pem(info.certificate_data))
            if info.private_key_data:
                key = os.path.join(tmp, "client.key")
                _write_private(key, _pem(info.private_key_data))
            ctx.load_cert_chain(cert_file(cert), cert_file(key) if key else None)
    elif cert:
        ctx.load_cert_chain(cert_file(cert), cert_file(key) if key else None)
    return ctx


def cert_file(path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> str:
    """A certificate or key file path (kopf's ConnectionInfo allows bytes) as ssl takes it."""
    if path is None:
        raise kopf.LoginError("a client key without a client certificate")
    return os.fsdecode(path)


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


#: Content types of a PATCH: a JSON merge patch, or the API server's strategic merge patch.
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ApiServer:
    """Plain API paths (``/api/v1/namespaces/{ns}/pods``, ``/apis/batch/v1/...``) in, dicts out.

    Thread-safe (one urllib3 pool); logs in again once on 401, since service-account tokens rotate.  The
    one REST client of the project: the s1mple controller's, the tests' (``kube_api``) and the test
    cluster's node agent's."""

    def __init__(
        self,
        login: Callable[[], kopf.ConnectionInfo] = login,
        timeout: float = 30.0,
        user_agent: str = "s1mple-operator",
    ):
        self._login = login
        self._timeout = urllib3.Timeout(connect=5.0, read=timeout)
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._connect()

    def _connect(self) -> None:
        info = self._login()
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username and info.password:
            basic = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        with self._lock:
            self.server = info.server.rstrip("/")
            self._headers = headers
            self._pool = urllib3.PoolManager(
                maxsize=8,  # connections kept per host: one per thread that calls at once (kopf runs 4)
                ssl_context=ssl_context(info),
                retries=urllib3.Retry(total=2, connect=2, read=0, status=0),
            )

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | None,
        content_type: str,
        timeout: urllib3.Timeout,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        url = self.server + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            headers = dict(self._headers)
            if data is not None:
                headers["Content-Type"] = content_type
            try:
                resp = self._pool.request(
                    method, url, body=data, headers=headers, timeout=timeout, preload_content=not stream
                )
            except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out (after retries)
                raise ApiError(None, method, path, f"{type(exc).__name__}: {exc}") from None
            if resp.status == 401 and attempt == 1:
                resp.release_conn()
                self._connect()
                continue
            break
        if resp.status >= 300:
            raise ApiError(resp.status, method, path, _message(resp.data) or resp.reason or "")
        return resp

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One call; ``timeout``: seconds to wait for the answer (default: the client's)."""
        wait = self._timeout if timeout is None else urllib3.Timeout(connect=5.0, read=timeout)
        resp = self._send(method, path, body, params, content_type, wait)
        return json.loads(resp.data) if resp.data else {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """Query parameters as the API spells them, e.g. ``labelSelector="app=x"``."""
        return self.request("GET", path, params=params or None)

    def list(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else {}
        return self.get(path, **params)["items"]

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict[str, Any], content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self.request("PATCH", path, body, content_type=content_type)

    def delete(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        """``body``: DeleteOptions; query parameters as the API spells them (``propagationPolicy``)."""
        return self.request("DELETE", path, body, params=params or None)

    def watch(
        self, path: str, params: dict[str, Any], stop: threading.Event | None = None
    ) -> Iterator[dict[str, Any]]:
        """The events of a watch (``resourceVersion``, ``timeoutSeconds`` ... in ``params``), one dict
        each, until the server ends it (after ``timeoutSeconds``) or ``stop`` is set."""
        quiet = float(params.get("timeoutSeconds") or 60) + 30  # the server ends it before this
        wait = urllib3.Timeout(connect=10.0, read=quiet)
        resp = self._send("GET", path, None, {**params, "watch": "1"}, "application/json", wait, stream=True)
        try:
            for line in resp:
                if stop is not None and stop.is_set():
                    return
                if line.strip():
                    yield json.loads(line)
        except urllib3.exceptions.HTTPError as exc:  # the connection broke mid-watch
            raise ApiError(None, "WATCH", path, f"{type(exc).__name__}: {exc}") from None
        finally:
            resp.release_conn()

    def close(self) -> None:
        self._pool.clear()


def _message(data: bytes) -> str | None:
    """The ``message`` of a Status answer; the text of anything else (e.g. a proxy's error page)."""
    try:
        payload = json.loads(data) if data else None
    except ValueError:
        return data[:500].decode(errors="replace")
    return payload.get("message") if isinstance(payload, dict) else None
