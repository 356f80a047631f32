"""A tiny JSON client for the test cluster's API server, so the tests need no heavy Kubernetes client."""

from __future__ import annotations

import json
from typing import Any

import requests


class KubeRestError(Exception):
    """A non-2xx answer; ``status`` is the HTTP status code (404, 409, 422, ...)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class KubeRest:
    """Plain API paths (``/api/v1/namespaces/{ns}/pods``, ``/apis/batch/v1/...``) in, dicts out."""

    def __init__(self, session: requests.Session, base_url: str, timeout: float = 30):
        self.session = session  # carries the admin client certificate and the cluster's CA
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json", **params: Any
    ) -> dict:
        r = self.session.request(
            method,
            self.base_url + path,
            params=params or None,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": content_type, "Accept": "application/json"},
            timeout=self.timeout,
        )
        if not r.ok:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text
            raise KubeRestError(r.status_code, message)
        return r.json() if r.content else {}

    def get(self, path: str, **params: Any) -> dict:
        return self.request("GET", path, **params)

    def list(self, path: str, label_selector: str | None = None) -> list[dict]:
        params = {"labelSelector": label_selector} if label_selector else {}
        return self.get(path, **params)["items"]

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict, content_type: str = "application/merge-patch+json") -> dict:
        return self.request("PATCH", path, body, content_type)

    def delete(self, path: str, **params: Any) -> dict:
        """Query parameters as the API spells them, e.g. ``propagationPolicy="Background"``."""
        return self.request("DELETE", path, **params)

    def close(self) -> None:
        self.session.close()
