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
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    trust = ["PBO", "DSR"] if kind == "Optimization" else []  # how far the best can be trusted
    assert columns == ["Phase", "Progress", "Failed", "Best", *trust, "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # the research half is the local config, camelCase; the cluster half is added
    for field in ("parallelConfig", "storage", "runner", "operation", "marketData"):
        assert field in spec["properties"]
    assert "storage" in spec["required"]
