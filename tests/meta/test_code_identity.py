"""A run's identity covers the code that computes it: editing a custom plugin (loaded through S1MPLE_PLUGINS)
and re-running a sweep recomputes the runs that use it, and only those."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

from s1mple_engine import fingerprint
from s1mple_engine.plugins.opportunity import MaCrossover
from s1mple_engine.runs import EXECUTION_LOG_ENV

from .test_cli import ROOT, S1MPLE

PLUGIN = '''"""A team's crossover: ma_crossover with the slow average {shift} bars longer."""

from s1mple_engine.plugins.opportunity import MaCrossover
from s1mple_engine.registry import register

SLOW_SHIFT = {shift}


@register
class TeamCrossover(MaCrossover):
    """ma_crossover whose slow average is SLOW_SHIFT bars longer."""

    name = "team_crossover"

    def detect(self, ctx):
        longer = self.params.model_copy(update={{"slow": self.params.slow + SLOW_SHIFT}})
        return MaCrossover(longer).detect(ctx)
'''

VARIANTS = f"""\
variant_config:
  name: team plugin
  base_operation: {ROOT}/config/operations/ma_crossover.yaml
  variants:
    - name: baseline
      overrides: {{}}
    - name: team
      overrides:
        opportunity_workers:
          - plugin: team_crossover
            params: {{fast: 10, slow: 20}}
"""


def test_editing_a_custom_plugin_recomputes_only_its_runs(tmp_path):
    module = tmp_path / "team_plugins.py"
    module.write_text(PLUGIN.format(shift=0))
    spec = tmp_path / "variants.yaml"
    spec.write_text(VARIANTS)
    log = tmp_path / "executed.log"
    out = tmp_path / "out"
    env = {
        **os.environ,
        EXECUTION_LOG_ENV: str(log),
        "S1MPLE_PLUGINS": "team_plugins",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def sweep() -> tuple[Counter, dict[str, dict]]:
        r = subprocess.run(
            [S1MPLE, "variant-test", str(spec), "--out", str(out), "--quiet", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        executed = Counter(line.split()[0] for line in log.read_text().splitlines() if line.strip())
        rows = json.loads((out / "result.json").read_text())["results"]
        by_name = {row["variant_name"]: row for row in rows}
        return executed, by_name

    first, before = sweep()
    assert len(first) == 2

    again, unchanged = sweep()
    assert again == first, "unchanged code: every result is reused"
    assert unchanged == before

    module.write_text(PLUGIN.format(shift=15))
    edited, after = sweep()
    new = edited - again
    assert set(new) == {after["team"]["run_id"]}, "only the run using the edited plugin runs again"
    assert after["team"]["run_id"] != before["team"]["run_id"]
    assert after["baseline"]["run_id"] == before["baseline"]["run_id"]
    assert after["baseline"]["metrics"] == before["baseline"]["metrics"]
    assert after["team"]["metrics"] != before["team"]["metrics"], "the edited code's numbers, not stale ones"


def test_fingerprints_name_the_engine_and_custom_plugins_only(tmp_path):
    code = fingerprint.code_fingerprint({"ma_crossover", "ema"})
    assert list(code) == ["engine"], "shipped plugins are covered by the engine's fingerprint"
    version, digest = code["engine"].split("+")
    assert version and len(digest) == fingerprint.HASH_LENGTH
    assert fingerprint.plugin_fingerprint(MaCrossover) == "engine"

    class Outside(MaCrossover):  # a class defined outside the engine (this test module)
        name = "outside_crossover"

    print_ = fingerprint.plugin_fingerprint(Outside)
    assert print_ != "engine" and print_ == fingerprint.plugin_fingerprint(Outside)
    assert fingerprint.plugin_fingerprint.cache_info().hits >= 1, "computed once per class, then cached"
    source = Path(__file__).read_bytes()
    assert print_.endswith(fingerprint._digest([source]))


def test_a_runner_with_other_code_refuses_the_run():
    """The operator plans run ids with its code; a runner pod whose image carries other code must not
    file its result under that id."""
    from s1mple.meta.models import load_meta
    from s1mple.meta.planner import plan_variant_test
    from s1mple_engine.runs import execute_run
    from s1mple_engine.runspec import RunSpec, run_id_of

    plan = plan_variant_test(load_meta(ROOT / "config/variants/ma_crossover_variants.yaml"))
    payload = plan.payload(0)
    assert payload["run_id"] == run_id_of(payload["operation"], payload["code"])
    assert execute_run(RunSpec.from_payload(payload)).ok
    other = dict(payload, code={**payload["code"], "engine": "0.0.1+000000000000"})
    record = execute_run(RunSpec.from_payload(other))
    assert record.status == "failed"
    assert "differs from the code the run was planned with (engine: planned 0.0.1+0000" in record.error
    assert "same S1MPLE_PLUGINS" in record.error
