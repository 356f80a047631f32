"""ParallelRunService: run many run specs on this machine, in a pool of forked processes.

"Pool processes" here, never "workers": in s1mple a worker is a strategy plugin (an opportunity worker,
a sizing worker ...), and ``max_workers`` in a spec's parallelConfig counts pool processes (or pods).

* One pool process per core by default (``max_workers`` honoured).  They are FORKED (Linux) after the
  caller loaded the engine and the market data, so they start instantly and share that memory.
* Work goes out in chunks (guided: large at first, smaller near the end), one message per chunk; each
  finished run comes back as one small message, so the parent knows which run a process is on.
* ``timeout_per_run``: a run that takes longer gets its process KILLED (SIGKILL) and is recorded as
  ``timeout``; the rest of that process's chunk goes back in the queue and a fresh one is forked.  A
  process that dies (segfault, OOM kill) records its run as ``crashed`` the same way.  Neither stops the
  sweep.  (concurrent.futures cannot do this: it cannot kill a stuck task.)
* Ctrl-C (or SIGTERM) stops cleanly: the pool processes are killed, every result already received has been
  handed to ``on_record`` (which writes it), and :meth:`run` returns with ``interrupted=True``.
* Progress on stderr: tqdm's live bar with ETA and counts per worker category when stderr is a TTY, else
  a log line every ``log_every`` seconds.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing as mp
import os
import selectors
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TextIO

from s1mple.meta.service import RunSummary

Payload = dict[str, Any]
RunFn = Callable[[Payload], dict[str, Any]]
MAX_CHUNK = 64


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def execute_payload(payload: Payload) -> dict[str, Any]:
    """The default run function: a RunSpec from the planner's payload, through ``execute_run``."""
    from s1mple_engine.runs import execute_run, record_of
    from s1mple_engine.runspec import RunSpec

    try:
        spec = RunSpec.from_payload(payload)
    except Exception as exc:  # an invalid spec is this run's failure, not the sweep's
        return record_of(payload, "failed", f"invalid run spec: {exc}", 0.0).model_dump(mode="json")
    return execute_run(spec).model_dump(mode="json", exclude_none=True)


def _failure(payload: Payload, status: str, error: str, duration: float) -> dict[str, Any]:
    from s1mple_engine.runs import record_of

    return record_of(payload, status, error, duration).model_dump(mode="json", exclude_none=True)  # type: ignore[arg-type]


def _process_main(conn: Connection, run_fn: RunFn, resolve: Callable[[Any], Payload] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # the inherited heap (imports, plan, market data) outlives every run: keep the GC off it, so its
    # passes stay short and do not write to (and so copy) the pages shared with the parent
    gc.freeze()
    try:
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            for item in chunk:
                t0 = time.perf_counter()
                try:
                    payload = resolve(item) if resolve is not None else item
                    record = run_fn(payload)
                except Exception as exc:  # run_fn should not raise; if it does, it is this run's failure
                    payload = item if resolve is None else _stub(item)
                    record = _failure(
                        payload, "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
                    )
                conn.send(record)
    except (EOFError, BrokenPipeError, OSError):  # the parent is gone
        return
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _stub(item: Any) -> Payload:
    return item if isinstance(item, dict) else {"run_id": "0" * 16, "index": int(item)}


@dataclass
class _PoolProcess:
    proc: Any
    conn: Connection
    inflight: deque = field(default_factory=deque)
    started: float = 0.0  # when the current run started (last send or receive)


def _tqdm() -> Any:
    """tqdm, imported when a progress line is drawn (a --quiet run never needs it)."""
    from tqdm import tqdm

    return tqdm


class Progress:
    """Counts, ETA and per-category counts: tqdm's bar on a TTY, else a log line every ``log_every``
    seconds (a redrawn bar would fill a log file with carriage returns)."""

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        categories: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None,
        label: str = "runs",
        tty: bool | None = None,
        log_every: float = 10.0,
        skipped: int = 0,
    ):
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.categories = categories
        self.label = label
        self.log_every = log_every
        self.skipped = skipped  # already done before this run (resumed): counted as done, not timed
        self.done = skipped
        self.failed = 0
        self.per_category: dict[str, dict[str, int]] = {}
        self.t0 = time.monotonic()
        self._last_log = self.t0
        self.bar = (
            _tqdm()(
                total=total,
                initial=skipped,
                file=self.stream,
                unit=" " + label,
                dynamic_ncols=True,
                mininterval=0.1,
                smoothing=0.1,
            )
            if self.tty
            else None
        )

    def update(self, record: dict[str, Any]) -> None:
        self.done += 1
        if record.get("status") != "ok":
            self.failed += 1
        if self.categories:
            for dim, choice in self.categories(record):
                bucket = self.per_category.setdefault(dim, {})
                bucket[choice] = bucket.get(choice, 0) + 1
        if self.bar is not None:
            self.bar.set_postfix_str(self.counts(), refresh=False)
            self.bar.update(1)
        else:
            self.tick()

    def eta(self) -> float | None:
        elapsed = time.monotonic() - self.t0
        ran = self.done - self.skipped
        if ran <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / ran

    def counts(self) -> str:
        """Failed runs, resumed ones and the most frequent choices per category."""
        head = f"failed {self.failed}" + (f" (resumed: {self.skipped} already done)" if self.skipped else "")
        parts = []
        for dim, counts in self.per_category.items():
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            parts.append(
                f"{dim} " + " ".join(f"{c}={n}" for c, n in top[:4]) + (" ..." if len(top) > 4 else "")
            )
        return " | ".join([head, *parts])

    def text(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = self.eta()
        eta_s = "--" if eta is None else _tqdm().format_interval(math.ceil(eta))
        return f"{self.label}: {self.done}/{self.total} ({pct:.0f}%) ETA {eta_s} {self.counts()}"

    def tick(self, force: bool = False) -> None:
        """A log line when ``log_every`` seconds have passed (no TTY); tqdm redraws its bar itself."""
        now = time.monotonic()
        if self.bar is not None:
            self.bar.refresh()
        elif force or now - self._last_log >= self.log_every:
            self.stream.write(self.text() + "\n")
            self.stream.flush()
            self._last_log = now

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.counts(), refresh=False)
            self.bar.close()
        else:
            self.tick(force=True)


class ParallelRunService:
    """A reusable pool: ``with ParallelRunService(...) as svc: svc.run(payloads, on_record)``; :meth:`run`
    may be called repeatedly (bayesian search asks batch after batch) on the same pool processes."""

    def __init__(
        self,
        *,
        max_workers: int | None = None,
        timeout_per_run: float | None = None,
        run_fn: RunFn | None = None,
        chunk_size: int | None = None,
        start_method: str | None = None,
        resolve: Callable[[Any], Payload] | None = None,
    ):
        """``resolve``: with it, :meth:`run` takes light work items (e.g. plan indices) and each pool
        process turns an item into its payload (``resolve(item)``, e.g. ``plan.payload``): nothing big is
        pickled, and the forked pool processes already hold the plan.  Needs the fork start method."""
        self.max_workers = max_workers or default_workers()
        self.timeout = timeout_per_run
        self.run_fn = run_fn or execute_payload
        self.chunk_size = chunk_size
        method = start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.ctx: Any = mp.get_context(method)  # fork or spawn: typeshed's BaseContext has no Process
        self.resolve = resolve
        self.processes: list[_PoolProcess] = []

    # -- pool ----------------------------------------------------------------------------------------
    def _spawn(self) -> _PoolProcess:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_process_main, args=(child, self.run_fn, self.resolve), daemon=True)
        proc.start()
        child.close()
        return _PoolProcess(proc=proc, conn=parent)

    def start(self, n: int | None = None) -> None:
        want = min(self.max_workers, n) if n else self.max_workers
        while len(self.processes) < max(1, want):
            self.processes.append(self._spawn())

    def _kill(self, w: _PoolProcess) -> None:
        with contextlib.suppress(Exception):
            w.proc.kill()
        with contextlib.suppress(Exception):
            w.proc.join(timeout=5)
        with contextlib.suppress(Exception):
            w.conn.close()

    def close(self) -> None:
        for w in self.processes:
            with contextlib.suppress(Exception):
                w.conn.send(None)
        deadline = time.monotonic() + 2
        for w in self.processes:
            w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                self._kill(w)
            with contextlib.suppress(Exception):
                w.conn.close()
        self.processes = []

    def terminate(self) -> None:
        for w in self.processes:
            self._kill(w)
        self.processes = []

    def __enter__(self) -> ParallelRunService:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.terminate()

    # -- running -------------------------------------------------------------------------------------
    def _chunk(self, remaining: int) -> int:
        if self.chunk_size:
            return self.chunk_size
        return max(1, min(MAX_CHUNK, math.ceil(remaining / (4 * max(1, len(self.processes))))))

    def run(
        self,
        payloads: Iterable[Any],
        on_record: Callable[[dict[str, Any]], None],
        progress: Progress | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> RunSummary:
        """Run every payload (or work item, with ``resolve``); ``on_record(record)`` is called in this
        process for each finished run, in completion order; ``on_tick()`` at least every half second (e.g.
        to flush pending results while runs are slow).  Returns a summary; never raises for a run's
        failure."""
        queue: deque[Any] = deque(payloads)
        summary = RunSummary(submitted=len(queue))
        t0 = time.perf_counter()
        if not queue:
            return summary
        self.start(len(queue))
        summary.workers = len(self.processes)
        previous = _install_sigterm()
        try:
            self._loop(queue, on_record, progress, summary, on_tick)
        except KeyboardInterrupt:
            summary.interrupted = True
            self.terminate()
        finally:
            _restore_sigterm(previous)
            summary.elapsed = time.perf_counter() - t0
            if progress:
                progress.finish()
        return summary

    def _account(self, record: dict[str, Any], summary: RunSummary) -> None:
        summary.completed += 1
        status = record.get("status")
        if status == "ok":
            summary.ok += 1
        elif status == "timeout":
            summary.timeouts += 1
        elif status == "crashed":
            summary.crashed += 1
        else:
            summary.failed += 1

    def _loop(
        self,
        queue: deque,
        on_record: Callable,
        progress: Progress | None,
        summary: RunSummary,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        def deliver(record: dict[str, Any]) -> None:
            self._account(record, summary)
            on_record(record)
            if progress:
                progress.update(record)

        # one selector for the whole loop (multiprocessing's wait() and Connection.poll() build one a call:
        # ~3 of them a record, most of the parent's CPU while the runs go)
        with selectors.DefaultSelector() as selector:
            watched: dict[int, _PoolProcess] = {}
            while True:
                for w in self.processes:  # hand out work
                    if not w.inflight and queue:
                        n = self._chunk(len(queue))
                        chunk = [queue.popleft() for _ in range(min(n, len(queue)))]
                        w.inflight.extend(chunk)
                        w.started = time.monotonic()
                        with contextlib.suppress(BrokenPipeError, OSError):  # a dead one: noticed below
                            w.conn.send(chunk)
                busy = [w for w in self.processes if w.inflight]
                if not busy:
                    return
                _watch(selector, watched, busy)
                timeout = 0.5 if on_tick is None else 0.1
                if self.timeout:
                    now = time.monotonic()
                    timeout = min(timeout, max(0.0, min(w.started + self.timeout for w in busy) - now))
                for key, _ in selector.select(timeout):
                    w = key.data
                    try:  # one record a wake-up: more waiting in the pipe wake the next select at once
                        record = w.conn.recv()
                        w.inflight.popleft()
                        w.started = time.monotonic()
                        deliver(record)
                    except (EOFError, OSError):
                        self._replace(w, queue, "crashed", deliver)
                if self.timeout:
                    now = time.monotonic()
                    for w in list(self.processes):
                        if w.inflight and now - w.started > self.timeout:
                            self._replace(w, queue, "timeout", deliver)
                if progress:
                    progress.tick()
                if on_tick is not None:
                    on_tick()

    def _replace(self, w: _PoolProcess, queue: deque, status: str, deliver: Callable) -> None:
        """Kill a stuck/dead pool process, record its current run, requeue the rest of its chunk, fork
        a new one."""
        self._kill(w)
        code = w.proc.exitcode
        item = w.inflight.popleft()
        payload = self.resolve(item) if self.resolve is not None else item
        elapsed = time.monotonic() - w.started
        if status == "timeout":
            error = f"timed out after {self.timeout:g}s (timeout_per_run); the pool process was killed"
        else:
            error = f"the pool process died (exit code {code}) while running this run"
        queue.extendleft(reversed(w.inflight))
        w.inflight.clear()
        self.processes[self.processes.index(w)] = self._spawn()
        deliver(_failure(payload, status, error, elapsed))


def _watch(
    selector: selectors.BaseSelector, watched: dict[int, _PoolProcess], busy: list[_PoolProcess]
) -> None:
    """Make ``selector`` watch the pipes of the ``busy`` pool processes only (an idle one that died would
    otherwise wake every select); a replaced process's pipe is dropped, its successor's added."""
    want = {w.conn.fileno(): w for w in busy}
    for fd, w in list(watched.items()):
        if want.get(fd) is not w:
            selector.unregister(fd)  # a closed pipe too: the selector forgets it
            del watched[fd]
    for fd, w in want.items():
        if fd not in watched:
            selector.register(fd, selectors.EVENT_READ, w)
            watched[fd] = w


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _install_sigterm() -> Any:
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        return None


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)
