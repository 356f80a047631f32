"""``s1mple-runner``: what each pod of an Optimization's / VariantTest's Indexed Job executes.

It reads its runs of the plan (``i`` = the Job completion index; the layout is :mod:`.chunks`),
skips runs an earlier attempt of the same index already stored, runs the rest one after another (the pods
are the parallelism), and writes each RunRecord to storage in small atomic batches as it finishes.

Exit codes are what the Job's podFailurePolicy acts on:

* 0: every run of the chunk has a record; a run that raised or timed out is a *failed run*, recorded
  as such, never a failed pod;
* 1: infrastructure (storage unreachable, killed mid-write): the index is retried, and the retry skips
  what this attempt stored;
* 3: the plan or a chunk is missing or unreadable: retrying cannot help, the index fails at once;
* 4: stopped by SIGTERM before the chunk was complete (pod deleted, node drained, eviction, preemption):
  what finished is stored, and the podFailurePolicy retries the index without counting it against
  ``backoffLimitPerIndex`` (exiting 0 here would mark the index succeeded and lose its other runs).

The per-run timeout is a SIGALRM in this process; a run stuck where Python cannot interrupt it is ended
by the pod's activeDeadlineSeconds (then the index is retried, and finally reported as missing runs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .chunks import BadLayout, read_run_lines
from .runs import RecordWriter, execute_run, read_records, record_of
from .runspec import RunSpec
from .store import Store, StoreError, open_store

EXIT_OK = 0
EXIT_INFRASTRUCTURE = 1
EXIT_BAD_MANIFEST = 3
EXIT_INTERRUPTED = 4
#: A process ended by SIGTERM's default action (before our handler was installed) exits 128 + 15.
EXIT_SIGTERM = 128 + signal.SIGTERM
INDEX_ENV = ("JOB_COMPLETION_INDEX", "S1MPLE_COMPLETION_INDEX")


class RunTimeout(Exception):
    pass


class BadManifest(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM arrived: not an Exception, so no ``except Exception`` in a run can swallow it."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the finally blocks may store what finished
    raise Terminated


@contextmanager
def deadline(seconds: float | None):
    """Raise RunTimeout in this thread after ``seconds`` (no-op for None)."""
    if not seconds:
        yield
        return

    def _expire(signum: int, frame: Any) -> None:
        raise RunTimeout(f"run exceeded timeout_per_run={seconds:g}s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def completion_index(given: int | None) -> int:
    if given is not None:
        return given
    for name in INDEX_ENV:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    raise BadManifest(f"no completion index: pass --index or set {' / '.join(INDEX_ENV)}")


class MarketDataCache:
    """Market data on s3:// is fetched once into the pod's scratch dir; run_ids stay as planned."""

    def __init__(self, store_for: Any, workdir: Path):
        self.store_for, self.workdir = store_for, workdir
        self.fetched: dict[str, str] = {}

    def localise(self, payload: dict[str, Any]) -> None:
        md = payload["operation"]["market_data"]
        uri = md["path"]
        if not uri.startswith("s3://"):
            return
        if uri not in self.fetched:
            bucket, _, key = uri[len("s3://") :].partition("/")
            target = self.workdir / "market-data" / Path(key).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.store_for(f"s3://{bucket}").get_bytes(key))
            self.fetched[uri] = str(target)
        md["path"] = self.fetched[uri]


def run_chunk(
    store: Store, plan_id: str, index: int, timeout: float | None, attempt: str | None = None
) -> dict[str, int]:
    """Run one index's runs into the store; returns counts. Raises BadManifest / StoreError."""
    try:
        lines = read_run_lines(store, plan_id, index)
    except BadLayout as exc:
        raise BadManifest(str(exc)) from None
    own_prefix = f"{plan_id}-i{index}-"
    done = {r["run_id"] for r in read_records(store, prefix=f"results/{own_prefix}")}
    market_data = MarketDataCache(open_store, Path(os.environ.get("TMPDIR", "/tmp")))
    attempt = attempt or f"{int(time.time())}-{os.getpid()}-{os.urandom(2).hex()}"
    writer = RecordWriter(store, part_prefix=own_prefix + attempt, max_delay=2.0)
    counts = {"runs": len(lines), "skipped": 0, "ok": 0, "failed": 0}
    try:
        for n, line in enumerate(lines):
            try:
                payload = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadManifest(
                    f"plan {plan_id} index {index}, run {n}: unreadable run spec: {exc}"
                ) from None
            if payload.get("run_id") in done:
                counts["skipped"] += 1
                continue
            market_data.localise(payload)
            t0 = time.perf_counter()
            try:
                spec = RunSpec.from_payload(payload)
                with deadline(timeout):
                    record = execute_run(spec)
            except RunTimeout as exc:
                record = record_of(payload, "timeout", str(exc), time.perf_counter() - t0)
            except Exception as exc:  # an invalid spec is this run's failure
                record = record_of(payload, "failed", f"invalid run spec: {exc}", time.perf_counter() - t0)
            counts["ok" if record.status == "ok" else "failed"] += 1
            writer.add(record.model_dump(mode="json", exclude_none=True))
    finally:
        writer.flush()  # on SIGTERM too: what finished is kept, the retried index skips it
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="s1mple-runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="the resource's folder: s3://bucket/prefix or a path")
    parser.add_argument("--plan", required=True, help="plan id (plans/<id>/ under the store)")
    parser.add_argument("--index", type=int, default=None, help="default: $JOB_COMPLETION_INDEX")
    parser.add_argument("--timeout-per-run", type=float, default=None, help="seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        index = completion_index(args.index)
        store = open_store(args.store)
        t0 = time.perf_counter()
        counts = run_chunk(store, args.plan, index, args.timeout_per_run)
    except BadManifest as exc:
        print(f"s1mple-runner: bad manifest: {exc}", file=sys.stderr)
        return EXIT_BAD_MANIFEST
    except StoreError as exc:
        print(f"s1mple-runner: storage: {exc}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except Terminated:
        print("s1mple-runner: SIGTERM before the chunk was done; finished runs are stored", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("s1mple-runner: interrupted; finished runs are stored", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    print(
        f"s1mple-runner: plan {args.plan} index {index}: {counts['runs']} runs, {counts['skipped']} already "
        f"stored, {counts['ok']} ok, {counts['failed']} failed in {time.perf_counter() - t0:.2f}s",
        file=sys.stderr,
    )
    return EXIT_OK


def console() -> None:
    """The ``s1mple-runner`` console script: :func:`main`, then a clean process exit (see process_exit)."""
    from s1mple_engine.process_exit import console as run_console

    run_console(main)


if __name__ == "__main__":
    console()
