"""ParallelRunService: failures, timeouts (worker killed), crashes, chunking, Ctrl-C, progress output."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

from s1mple.executors.local import ParallelRunService, Progress


def _payloads(n):
    return [{"run_id": f"{i:016x}", "index": i} for i in range(n)]


def behaving(p):
    i = p["index"]
    if i == 3:
        time.sleep(30)  # stuck: must be killed by the timeout
    if i == 5:
        os._exit(7)  # the worker dies
    if i == 8:
        raise RuntimeError("strategy exploded")
    return {"run_id": p["run_id"], "index": i, "status": "ok", "metrics": {"x": i}, "pid": os.getpid()}


def test_failures_timeouts_and_crashes_never_stop_the_sweep():
    records = []
    t0 = time.monotonic()
    with ParallelRunService(max_workers=2, timeout_per_run=1.0, run_fn=behaving) as svc:
        summary = svc.run(_payloads(20), records.append)
    assert time.monotonic() - t0 < 15
    by_index = {r["index"]: r for r in records}
    assert sorted(by_index) == list(range(20))  # every run recorded exactly once
    assert len(records) == 20
    assert by_index[3]["status"] == "timeout" and "timed out after 1s" in by_index[3]["error"]
    assert by_index[5]["status"] == "crashed" and "exit code 7" in by_index[5]["error"]
    assert by_index[8]["status"] == "failed" and "strategy exploded" in by_index[8]["error"]
    assert all(r["status"] == "ok" for i, r in by_index.items() if i not in (3, 5, 8))
    assert (summary.ok, summary.timeouts, summary.crashed, summary.failed) == (17, 1, 1, 1)
    assert not summary.interrupted


def test_max_workers_honoured_and_work_chunked():
    records = []
    with ParallelRunService(max_workers=3, run_fn=behaving_ok) as svc:
        svc.run(_payloads(300), records.append)
        pids = {r["pid"] for r in records}
        assert len(pids) <= 3 and len(svc.processes) == 3
        # the pool is reusable for another batch (bayesian search asks batch after batch)
        more = []
        svc.run(_payloads(5), more.append)
        assert len(more) == 5


def behaving_ok(p):
    return {"run_id": p["run_id"], "index": p["index"], "status": "ok", "pid": os.getpid()}


def test_items_resolved_in_the_workers():
    table = {i: {"run_id": f"{i:016x}", "index": i, "value": i * i} for i in range(50)}
    records = []
    svc = ParallelRunService(max_workers=2, run_fn=lambda p: {**p, "status": "ok"}, resolve=table.__getitem__)
    with svc:
        svc.run(list(range(50)), records.append)
    assert sorted(r["value"] for r in records) == [i * i for i in range(50)]


def test_progress_lines_when_not_a_tty():
    stream = io.StringIO()
    p = Progress(4, stream=stream, tty=False, log_every=0.0, categories=lambda r: [("exit", r["exit"])])
    for e in ("atr", "atr", "rr", "atr"):
        p.update({"status": "ok", "exit": e})
    p.finish()
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("runs: 4/4 (100%) ETA 00:00 failed 0")
    assert "exit atr=3 rr=1" in lines[-1]
    assert "\r" not in stream.getvalue()


def test_progress_redraws_on_a_tty():
    stream = io.StringIO()
    p = Progress(2, stream=stream, tty=True, skipped=1)
    p.update({"status": "failed"})
    p.finish()
    out = stream.getvalue()
    # tqdm's bar, redrawn in place, with the counts after it
    assert out.startswith("\r") and "2/2" in out and "failed 1" in out and "resumed: 1 already done" in out
    assert "|" in out.splitlines()[-1] and out.endswith("\n")


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from s1mple.executors.local import ParallelRunService

    def slow(p):
        time.sleep(0.2)
        return {"run_id": p["run_id"], "index": p["index"], "status": "ok"}

    got = []
    def on_record(r):
        got.append(r["index"])
        print("record", r["index"], flush=True)

    with ParallelRunService(max_workers=2, run_fn=slow) as svc:
        s = svc.run([{"run_id": f"{i:016x}", "index": i} for i in range(200)], on_record)
    info = {"interrupted": s.interrupted, "completed": s.completed, "got": len(got)}
    print("summary", json.dumps(info), flush=True)
    """
)


def test_ctrl_c_stops_cleanly_and_keeps_finished_results(tmp_path):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    seen = 0
    for line in proc.stdout:
        if line.startswith("record"):
            seen += 1
            if seen == 4:
                os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C: the whole process group
                break
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    summary = [line for line in out.splitlines() if line.startswith("summary")]
    assert summary, out
    import json

    data = json.loads(summary[0].split(" ", 1)[1])
    assert data["interrupted"] is True
    assert 4 <= data["completed"] < 200 and data["got"] == data["completed"]
    # no worker left behind
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert leftover == []
