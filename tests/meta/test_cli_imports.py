"""What `s1mple optimize` imports, checked in a new interpreter: the heavy libraries of the outputs (pandas,
pyarrow, the report's jinja2 and plotly) are imported only once the pool processes are forked, so the
forks and their runs never wait for them; tqdm, the S3 client, the search and operator stacks not at all
on a local, quiet grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Imported after the fork (behind the runs, for the aggregation and report.html), never before it.
AFTER_THE_FORK = ("pandas", "pyarrow", "jinja2", "plotly")
#: Never imported by a local, quiet grid sweep.
NEVER = ("tqdm", "boto3", "botocore", "optuna", "scipy", "kopf", "s1mple.kube")

CODE = """
import json, sys
import s1mple.executors.local as local
seen = []
start = local.ParallelRunService.start
def recording_start(self, n=None):
    if not seen:
        seen.append(sorted(sys.modules))
    return start(self, n)
local.ParallelRunService.start = recording_start
from s1mple.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "at_fork": seen[0] if seen else None, "at_end": sorted(sys.modules)}))
"""

SPEC = """\
optimization_config:
  name: imports
  base_operation: {op}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{start: 5, end: 6}}
        slow: {{start: 20, end: 21}}
"""


def loaded(modules: list[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_optimize_imports_the_output_stack_after_the_fork_and_nothing_it_does_not_use(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text(SPEC.format(op=ROOT / "config/operations/ma_crossover.yaml"))
    out = tmp_path / "out"
    argv = ["optimize", str(spec), "--out", str(out), "--max-workers", "2", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-c", CODE, *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0
    assert (out / "report.html").exists() and (out / "results.parquet").exists()
    at_fork, at_end = seen["at_fork"], seen["at_end"]
    assert at_fork is not None, "the sweep forked no pool processes"
    assert [p for p in AFTER_THE_FORK if loaded(at_fork, p)] == []
    assert [p for p in AFTER_THE_FORK if loaded(at_end, p)] == list(AFTER_THE_FORK)  # the outputs need them
    assert [p for p in NEVER if loaded(at_end, p)] == []
