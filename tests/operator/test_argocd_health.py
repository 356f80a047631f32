"""The Argo CD health check (config/argocd/), run by a real Lua 5.1 interpreter as Argo CD runs it.

Argo CD evaluates ``health.lua`` with gopher-lua (Lua 5.1) and the resource as the global ``obj``; its
own ``resource_customizations`` are tested with a ``health_test.yaml`` of fixtures, which these tests run.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from s1mple.kube.resources import KINDS
from s1mple.kube.status import Phase, ResearchStatus, conditions_for, status_patch

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "config/argocd/s1mple.io"
HARNESS = Path(__file__).with_name("argocd_health.lua")
LUA = shutil.which("lua5.1")
needs_lua = pytest.mark.skipif(LUA is None, reason="lua5.1 missing: run tests/system/install")


def lua_literal(value: Any) -> str:
    """``value`` (parsed YAML/JSON) as Lua source: maps become tables with string keys, lists sequences."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_lua_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _lua_char(char: str) -> str:
    if char.isascii() and char.isprintable() and char not in '"\\':
        return char
    return "".join(f"\\{byte:03d}" for byte in char.encode())


def health(obj: dict[str, Any], kind: str, tmp_path: Path) -> tuple[str, str]:
    chunk = tmp_path / "obj.lua"
    chunk.write_text("return " + lua_literal(obj) + "\n")
    proc = subprocess.run(
        [LUA, str(HARNESS), str(CHECKS / kind / "health.lua"), str(chunk)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    status, _, message = proc.stdout.partition("\n")
    return status, message


def fixtures() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in sorted(KINDS):
        for case in yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]:
            cases.append((kind, case))
    return cases


@needs_lua
@pytest.mark.parametrize("kind,case", fixtures(), ids=lambda c: c["inputPath"] if isinstance(c, dict) else c)
def test_health_of_each_fixture(kind, case, tmp_path):
    obj = yaml.safe_load((CHECKS / kind / case["inputPath"]).read_text())
    want = case["healthStatus"]
    assert health(obj, kind, tmp_path) == (want["status"], want["message"])


@pytest.mark.parametrize("kind,case", fixtures(), ids=lambda c: c["inputPath"] if isinstance(c, dict) else c)
def test_fixtures_are_resources_of_their_kind_with_a_valid_status(kind, case):
    obj = yaml.safe_load((CHECKS / kind / case["inputPath"]).read_text())
    assert obj["apiVersion"] == "s1mple.io/v1alpha1" and obj["kind"] == kind
    KINDS[kind]["spec"].model_validate(obj["spec"])
    ResearchStatus.model_validate(obj.get("status") or {})


def test_every_kind_has_the_same_check_and_every_fixture_is_tested():
    checks = {kind: (CHECKS / kind / "health.lua").read_text() for kind in KINDS}
    assert len(set(checks.values())) == 1, "one health check for both kinds: keep the copies equal"
    for kind in KINDS:
        tested = {c["inputPath"] for k, c in fixtures() if k == kind}
        on_disk = {f"testdata/{p.name}" for p in (CHECKS / kind / "testdata").glob("*.yaml")}
        assert tested == on_disk


def test_docs_carry_the_check_as_an_argocd_cm_snippet():
    docs = (ROOT / "docs/operator.md").read_text()
    body = "".join("    " + line if line.strip() else line for line in checks_text().splitlines(True))
    for kind in KINDS:
        assert f"  resource.customizations.health.s1mple.io_{kind}: |\n{body}" in docs


def checks_text() -> str:
    return (CHECKS / "Optimization" / "health.lua").read_text()


PHASES = [
    (None, "Progressing"),
    (Phase.PENDING, "Progressing"),
    (Phase.QUEUED, "Progressing"),
    (Phase.RUNNING, "Progressing"),
    (Phase.SUCCEEDED, "Healthy"),
    (Phase.FAILED, "Degraded"),
    (Phase.INVALID, "Degraded"),
]


@needs_lua
@pytest.mark.parametrize("phase,expected", PHASES)
def test_every_phase_the_operator_writes_has_the_intended_health(phase, expected, tmp_path):
    """The statuses come from the operator's own code, so a change there that Argo CD would misread
    fails here, and the condition's message is what Argo CD shows."""
    message = f'because of {phase}: ünïcode "quoted" \\ back'
    status = ResearchStatus(
        phase=phase, observed_generation=3, conditions=conditions_for(phase, "SomeReason", message, 3, [])
    )
    obj = {"metadata": {"name": "x", "generation": 3}, "status": status_patch(status)}
    assert health(obj, "Optimization", tmp_path) == (expected, message)
    obj["metadata"]["generation"] = 4  # edited in Git, not yet seen by the operator
    assert health(obj, "Optimization", tmp_path)[0] == "Progressing"
