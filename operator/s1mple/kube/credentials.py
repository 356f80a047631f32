"""Whose storage credentials a resource may use: the guard against the controller as a confused deputy.

The controller can read every Secret in the namespaces it watches; a user who may only create Optimizations
must not be able to borrow that power (docs/security.md).  So a Secret named by
``storage.credentialsSecretRef`` is used only if whoever may write Secrets opted it in:

* the label ``s1mple.io/storage-credentials: "true"`` (no label: the Secret is not used at all);
* fixed key names, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (a resource cannot pick other keys
  of the Secret to read);
* the annotation ``s1mple.io/storage-endpoint``: the only endpoint requests signed with the Secret go to
  (the resource's ``storage.endpoint`` must be it);
* pods that receive the credentials run an image the controller's admin allows (``--allowed-runner-images``
  / ``S1MPLE_ALLOWED_RUNNER_IMAGES``; default: the default runner image's repository).

Nothing of a Secret (its keys, labels, values, even whether it exists) is echoed into status or Events.
"""

from __future__ import annotations

import base64
import os
from typing import Any
from urllib.parse import urlsplit

from s1mple.kube.spec import DEFAULT_RUNNER_IMAGE, ClusterFields
from s1mple_engine.config import ConfigError
from s1mple_engine.store import StoreError

OPT_IN_LABEL = "s1mple.io/storage-credentials"
ENDPOINT_ANNOTATION = "s1mple.io/storage-endpoint"
ACCESS_KEY_ID_KEY = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_KEY = "AWS_SECRET_ACCESS_KEY"
ALLOWED_IMAGES_ENV = "S1MPLE_ALLOWED_RUNNER_IMAGES"


class CredentialsNotUsable(StoreError):
    """The named Secret is missing, not opted in, or lacks a key: an admin's fix, so retried with back-off
    (labelling the Secret later recovers the resource without a spec change)."""

    reason = "CredentialsNotUsable"


def default_allowed_images() -> tuple[str, ...]:
    """The default runner image's repository (any tag or digest of it)."""
    return (DEFAULT_RUNNER_IMAGE.rsplit(":", 1)[0],)


def allowed_runner_images() -> tuple[str, ...]:
    value = os.environ.get(ALLOWED_IMAGES_ENV, "")
    given = tuple(p.strip() for p in value.split(",") if p.strip())
    return given or default_allowed_images()


def image_allowed(image: str, prefixes: tuple[str, ...]) -> bool:
    """``repo`` allows ``repo``, ``repo:tag`` and ``repo@digest``; ``registry/org/`` allows every
    repository under it.  Plain string prefixes would let ``repo-evil`` pass for ``repo``."""
    for prefix in prefixes:
        if prefix.endswith("/") and image.startswith(prefix):
            return True
        if image == prefix or (image.startswith(prefix) and image[len(prefix)] in ":@"):
            return True
    return False


def check_runner_image(spec: ClusterFields) -> None:
    """Pods that get the storage credentials must run an allowed image (else the image could send them
    anywhere)."""
    if spec.storage.credentials_secret_ref is None:
        return
    allowed = allowed_runner_images()
    if not image_allowed(spec.runner.image, allowed):
        raise ConfigError(
            f"runner.image: {spec.runner.image!r} may not receive the storage credentials of "
            f"storage.credentialsSecretRef; the controller allows images under {', '.join(allowed)} "
            f"(its --allowed-runner-images setting, {ALLOWED_IMAGES_ENV}): use one of those, or ask the "
            "controller's admin to allow this image"
        )


def same_endpoint(a: str, b: str) -> bool:
    """Endpoints compare by scheme, host and port (case-insensitive) and path without a trailing '/'."""

    def norm(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url.strip())
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")

    return norm(a) == norm(b)


def usable_credentials(secret: dict[str, Any] | None, name: str, endpoint: str | None) -> tuple[str, str]:
    """(access key id, secret access key) of an opted-in Secret bound to ``endpoint``.

    Raises CredentialsNotUsable (missing, not opted in, keys missing: the same message for the first two,
    so the answer does not tell whether a Secret exists) or ConfigError (the resource's endpoint is not
    the one the Secret is bound to: the spec's fault)."""

    field = "storage.credentialsSecretRef"
    meta = (secret or {}).get("metadata") or {}
    if secret is None or (meta.get("labels") or {}).get(OPT_IN_LABEL) != "true":
        raise CredentialsNotUsable(
            f"{field}: Secret {name!r} is not usable for s1mple storage: it must exist and carry the label "
            f"{OPT_IN_LABEL}=true, set by someone who may manage Secrets in this namespace (docs/security.md)"
        )
    bound = (meta.get("annotations") or {}).get(ENDPOINT_ANNOTATION)
    if not bound:
        raise CredentialsNotUsable(
            f"{field}: Secret {name!r} names no endpoint: annotate it with {ENDPOINT_ANNOTATION}=<the S3 "
            "endpoint URL it is for>"
        )
    if not endpoint or not same_endpoint(endpoint, bound):
        raise ConfigError(
            f"storage.endpoint: must be the endpoint Secret {name!r} is bound to (its annotation "
            f"{ENDPOINT_ANNOTATION}); credentials are never sent anywhere else"
        )
    data = secret.get("data") or {}
    if ACCESS_KEY_ID_KEY not in data or SECRET_ACCESS_KEY_KEY not in data:
        raise CredentialsNotUsable(
            f"{field}: Secret {name!r} needs the keys {ACCESS_KEY_ID_KEY} and {SECRET_ACCESS_KEY_KEY}"
        )
    return (
        base64.b64decode(data[ACCESS_KEY_ID_KEY]).decode(),
        base64.b64decode(data[SECRET_ACCESS_KEY_KEY]).decode(),
    )
