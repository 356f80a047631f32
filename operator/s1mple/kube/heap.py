"""Giving the memory a finished aggregation freed back to the OS.

An aggregation builds and drops tens of MB of short-lived objects (parsed records, table rows, the report
page) with the cyclic GC paused.  Freed, they stay in glibc's heap: its arenas do not shrink by
themselves, and each later aggregation lays its own fragmentation on top, so a long-lived s1mple
controller would creep from one sweep to the next.  :func:`release` drops the engine's per-process
caches (the report's re-runs fill them with market data and features; the controller runs no backtest
between generations, and a long-lived one would otherwise keep every dataset it ever reported on),
collects the cycles left behind and trims every arena (``malloc_trim``).  The s1mple controller calls it
once a generation's records are dropped and again when its report is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc

from s1mple_engine import data, features


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to trim
        return None


def release() -> None:
    """Drop the engine's caches, collect garbage cycles, hand the free pages of every arena to the OS."""
    data.clear_cache()
    features.clear_memo()
    gc.collect()
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.malloc_trim(0)
