"""The CRDs in crds/ (and the chart) are generated from the models: they must not drift."""

from pathlib import Path

import pytest

from s1mple.kube.resources import KINDS, crd, generated_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path,text", sorted(generated_files(ROOT).items()))
def test_generated_file_matches_models(path, text):
    on_disk = ROOT / path
    assert on_disk.exists(), f"{path} is missing: run `s1mple crds` and commit the result"
    assert on_disk.read_text() == text, f"{path} drifted from the models: run `s1mple crds`"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crd_names_and_columns(kind):
    doc = crd(kind)
    names = doc["spec"]["names"]
    assert names["categories"] == ["s1mple"]
    assert names["shortNames"] == {"Optimization": ["opt"], "VariantTest": ["vt"]}[kind]
    version = doc["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]]
    trust = [("PBO", 0), ("DSR", 0)] if kind == "Optimization" else []  # how far the best can be trusted
    assert columns == [
        ("Phase", 0),
        ("Progress", 0),
        ("Failed", 0),
        ("Best", 0),
        *trust,
        ("Age", 0),
        ("Message", 1),
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # the research half is the local config, camelCase; the cluster half is added
    for field in ("parallelConfig", "storage", "runner", "operation", "marketData"):
        assert field in spec["properties"]
    assert "storage" in spec["required"]


def _undocumented(node: dict, path: str) -> list[str]:
    """Paths of schema properties without a description (what `kubectl explain` would show blank)."""
    missing = []
    for name, sub in (node.get("properties") or {}).items():
        where = f"{path}.{name}"
        if where.count(".") == 1 and name == "metadata":
            continue  # ObjectMeta: documented by Kubernetes, and the API server forbids more here
        if not sub.get("description"):
            missing.append(where)
        missing += _undocumented(sub, where)
    if isinstance(node.get("items"), dict):
        missing += _undocumented(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        missing += _undocumented(node["additionalProperties"], f"{path}{{}}")
    return missing


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kubectl_explain_describes_every_field(kind):
    root = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _undocumented(root, kind) == [], "add a Field(description=...) to each of these"


def test_the_walk_finds_a_field_without_description():
    schema = {"properties": {"a": {"type": "object", "description": "x", "properties": {"b": {}}}}}
    assert _undocumented(schema, "K") == ["K.a.b"]
