"""Kubernetes names and labels built from user input: sanitised, bounded, deterministic.

A resource name, a strategy name or a variant name can hold anything a quant types; the objects the
operator creates must still be valid DNS-1123 names (<= 63 characters, pod names of Indexed Jobs add a
suffix) and label values, and two different inputs must not collide after sanitising, so every
shortened name carries a hash of the original.
"""

from __future__ import annotations

import hashlib
import re

GROUP = "s1mple.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Job names stay short enough that '<job>-<index>-<5 random>' pod names fit in 63 characters.
JOB_NAME_MAX = 51
#: Labels a GitOps tool uses to track what it owns: never copied onto the children we create,
#: or Argo CD would prune (or claim) our Jobs.
TRACKING_LABEL_PREFIXES = ("argocd.argoproj.io/", "app.kubernetes.io/instance")


def short_hash(*parts: object, length: int = 6) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


def dns_label(value: str, max_len: int = 63) -> str:
    """A DNS-1123 label from any string: lowercase alphanumerics and '-', bounded, hash-suffixed if cut."""
    clean = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    clean = re.sub(r"-{2,}", "-", clean) or "x"
    if clean == value and len(clean) <= max_len:
        return clean
    suffix = short_hash(value)
    head = clean[: max_len - len(suffix) - 1].rstrip("-") or "x"
    return f"{head}-{suffix}"


def label_value(value: str) -> str:
    """A valid label value (<= 63, alphanumeric ends, [-_.A-Za-z0-9] inside)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-_.")
    if clean == value and len(clean) <= 63:
        return clean
    suffix = short_hash(value)
    head = clean[: 63 - len(suffix) - 1].strip("-_.") or "x"
    return f"{head}-{suffix}"


def job_name(kind: str, name: str, uid: str, generation: int) -> str:
    """One deterministic Job name per resource generation (restarts find it instead of making another)."""
    tag = f"-g{generation}-{short_hash(kind, uid, generation, length=5)}"
    prefix = "opt" if kind == "Optimization" else "vt"
    base = dns_label(f"{prefix}-{name}", JOB_NAME_MAX - len(tag))
    return f"{base}{tag}"


#: Label of every object the controller creates (its Jobs are listed by it).
MANAGED_BY = ("app.kubernetes.io/managed-by", "s1mple-operator")


def child_labels(kind: str, name: str, generation: int) -> dict[str, str]:
    """Labels of every child object: ours only; the parent's labels (and GitOps tracking) stay off."""
    return {
        "app.kubernetes.io/name": "s1mple-runner",
        MANAGED_BY[0]: MANAGED_BY[1],
        f"{GROUP}/kind": label_value(kind.lower()),
        f"{GROUP}/name": label_value(name),
        f"{GROUP}/generation": str(int(generation)),
    }


def resource_prefix(namespace: str, kind: str, name: str) -> str:
    """The store key prefix of one resource's artefacts (manifests, results table, result JSON).

    Deliberately without the uid: a resource deleted and re-created by a GitOps sync finds its earlier
    results again.  Run results themselves are content-addressed by run_id beside it (``runs/``).
    """
    return f"{dns_label(namespace)}/{kind.lower()}/{dns_label(name)}"
