"""The reconcile timer is kopf's own timer handler minus the finalizer (kube/handlers.py).

That registration uses kopf's private API: the registry's ``_spawning`` and the handler being a dataclass
with ``requires_finalizer``.  These tests fail when a kopf upgrade changes that shape, before a cluster
would show resources stuck on deletion (or no reconcile at all).
"""

from __future__ import annotations

import dataclasses

import kopf

from s1mple.kube import handlers
from s1mple.kube.names import GROUP, VERSION
from s1mple.kube.resources import KINDS

#: What the registration relies on kopf's timer handler to have.
FIELDS = {"fn", "id", "param", "selector", "when", "interval", "backoff", "initial_delay"}
FIELDS.add("requires_finalizer")


def _timers(registry: kopf.OperatorRegistry) -> list:
    return list(registry._spawning.get_all_handlers())


def test_kopf_timer_makes_a_dataclass_handler_that_requires_a_finalizer():
    registry = kopf.OperatorRegistry()
    kopf.timer(GROUP, VERSION, "optimizations", id="t", interval=1.0, registry=registry)(handlers.tick)
    (timer,) = _timers(registry)
    assert type(timer).__name__ == "TimerHandler"
    assert dataclasses.is_dataclass(timer) and {f.name for f in dataclasses.fields(timer)} >= FIELDS
    assert timer.requires_finalizer is True  # what the controller's registration takes away


def test_the_reconcile_timer_is_kopf_s_timer_without_the_finalizer():
    registry = kopf.OperatorRegistry()
    handlers.timer_without_finalizer("optimizations", "Optimization", registry)
    (timer,) = _timers(registry)
    assert type(timer).__name__ == "TimerHandler" and timer.requires_finalizer is False
    assert (timer.fn, timer.id, timer.param) == (handlers.tick, "reconcile", "Optimization")
    assert (timer.interval, timer.backoff, timer.initial_delay) == (handlers.INTERVAL,) * 2 + (0.0,)
    assert timer.when is handlers._in_flight
    # the resource it ticks for, as kopf spells a selector of "group, version, plural"
    selector = timer.selector
    assert (selector.group, selector.version, selector.any_name) == (GROUP, VERSION, "optimizations")


def test_importing_the_handlers_registers_one_timer_per_kind_and_no_finalizer_but_cleanup():
    registry = kopf.get_default_registry()
    timers = [t for t in _timers(registry) if t.id == "reconcile"]
    assert sorted(t.param for t in timers) == sorted(KINDS)
    assert not any(t.requires_finalizer for t in timers)
    # the only finalizer comes from the delete handler, which only resources asking for cleanup match
    deleting = [h for h in registry._changing.get_all_handlers() if h.id == "cleanup"]
    assert len(deleting) == len(KINDS) and all(h.requires_finalizer for h in deleting)
    assert all(h.when is handlers._wants_cleanup for h in deleting)
