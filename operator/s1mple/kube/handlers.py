"""kopf handlers of the s1mple controller: thin. Read the resource, call :func:`reconcile`, write status,
post Events.

One level-triggered timer per resource does all the work (see :mod:`s1mple.kube.reconcile`), so there
is no handler progress to persist and nothing to lose when the controller is killed.  kopf's own state
goes into annotations (not status, whose schema is ours), and a finalizer is added only to resources
that ask for their storage to be cleaned up on deletion.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any

import kopf
from kopf._core.intents import registries as kopf_registries

from s1mple.executors import apiserver
from s1mple.executors.kubernetes import KubernetesExecutor
from s1mple.kube import monitoring
from s1mple.kube.names import GROUP, MANAGED_BY, VERSION
from s1mple.kube.reconcile import Context, in_flight, reconcile
from s1mple.kube.research import ResourceRef, delete_artefacts
from s1mple.kube.resources import KINDS
from s1mple.kube.state import ReconcileState

#: Seconds between reconcile ticks of a resource in flight (S1MPLE_RECONCILE_INTERVAL overrides): short,
#: so a finished Job is aggregated at once; a tick that has nothing new costs a Job read and an S3 LIST.
INTERVAL = float(os.environ.get("S1MPLE_RECONCILE_INTERVAL", "0.5"))
#: What the ticks remember between them (one object, one lock; a deleted resource's entries are dropped).
STATE = ReconcileState()


@functools.cache
def context() -> Context:
    """The cluster (its REST client logs in on first use), the state and S3 storage of every tick."""
    return Context(KubernetesExecutor("=".join(MANAGED_BY)), STATE)


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """kopf's watches log in as the controller's REST client does (in a pod: KUBERNETES_SERVICE_HOST)."""
    return apiserver.login()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """All kopf settings in one place: watch timeouts, backoff, where kopf keeps its own state."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/storage-cleanup"  # only on resources with storage.cleanup
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.watching.reconnect_backoff = 1.0
    settings.networking.error_backoffs = [1, 2, 5, 10, 30, 60]
    settings.networking.request_timeout = 60
    settings.execution.max_workers = 4
    # kopf would post every handler log line of this level as an Event; ours are posted explicitly
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "s1mple-operator"
    settings.peering.standalone = True
    # The s1mple controller knows its two kinds: no listing/watching of CRDs and namespaces, so a Role in the
    # watched namespace is all it needs (--namespace). The kinds must be served when it starts.
    settings.scanning.disabled = True
    # a timer ticks every few seconds per resource: its "succeeded" lines are noise in the log
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # arrow's own pool (jemalloc) keeps what an aggregation freed; the system one hands it back to glibc,
    # and heap.release() on to the OS (10,000 runs: ~28 MB less at the peak)
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def _ref(kind: str, body: kopf.Body) -> ResourceRef:
    meta = body["metadata"]
    return ResourceRef(
        kind=kind,
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 1),
    )


def tick(*, param: str = "", body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Move one resource one step on (the ``param`` of the registration is its kind)."""
    ref, before = _ref(param, body), dict(body.get("status") or {})
    with monitoring.reconciling(param):
        outcome = reconcile(ref, dict(body.get("spec") or {}), before, context())
    monitoring.observe(ref, before, outcome)
    if outcome.status is not None:
        patch.status.update(outcome.status)
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def watched(*, param: str = "", type: str | None, body: kopf.Body, **_: Any) -> None:
    """Every watch event of a resource: keeps ``s1mple_resources{kind,phase}`` current, and forgets a
    deleted resource."""
    uid, deleted = body["metadata"]["uid"], type == "DELETED"
    monitoring.seen(param, uid, dict(body.get("status") or {}), deleted)
    if deleted:
        STATE.forget_resource(uid)


def cleanup(*, param: str = "", body: kopf.Body, **_: Any) -> None:
    """Delete the resource's artefacts from storage (only registered when the spec asks for it)."""
    delete_artefacts(_ref(param, body), dict(body.get("spec") or {}), context().cluster)


def _in_flight(body: kopf.Body, **_: Any) -> bool:
    return in_flight(dict(body.get("status") or {}), int(body["metadata"].get("generation") or 1))


def _wants_cleanup(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("storage") or {}).get("cleanup"))


def timer_without_finalizer(plural: str, kind: str, registry: kopf.OperatorRegistry) -> None:
    """``kopf.timer`` always puts a finalizer on every resource it ticks for; a resource with a finalizer
    cannot be deleted while the controller is down.  Our timer keeps no state to tear down, so it is
    made by ``kopf.timer`` itself (into a scratch registry) and added to ``registry`` with only
    ``requires_finalizer`` changed: only resources that ask for storage cleanup carry one (from the delete
    handler below).  kopf's private parts used here (the registry's ``_spawning``, the handler being a
    dataclass with ``requires_finalizer``) are checked by tests/operator/test_kopf_timer.py."""
    scratch = kopf.OperatorRegistry()
    kopf.timer(
        GROUP,
        VERSION,
        plural,
        id="reconcile",
        param=kind,
        interval=INTERVAL,
        backoff=INTERVAL,
        initial_delay=0.0,
        when=_in_flight,  # no timer at all for finished resources, until their spec changes
        registry=scratch,
    )(tick)
    for handler in scratch._spawning.get_all_handlers():
        registry._spawning.append(dataclasses.replace(handler, requires_finalizer=False))


for _kind, _info in KINDS.items():
    timer_without_finalizer(_info["plural"], _kind, kopf_registries.get_default_registry())
    kopf.on.delete(GROUP, VERSION, _info["plural"], id="cleanup", param=_kind, when=_wants_cleanup)(cleanup)
    kopf.on.event(GROUP, VERSION, _info["plural"], id="phases", param=_kind)(watched)
