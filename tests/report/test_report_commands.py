"""`s1mple report`, `s1mple rerun`, `s1mple run --report` on stored results, and what they say about bad
input (the path and what is missing)."""

from __future__ import annotations

import json
import re
import shutil
import textwrap

import pytest

from s1mple.cli import main
from s1mple.meta.report.build import chosen_visualizations
from s1mple.meta.report.sources import ReportError
from tests.report.conftest import ROOT


def page_data(page: str) -> dict:
    """The JSON a report page carries."""
    return json.loads(page.split('id="report-data">')[1].split("</script>")[0].replace("<\\/", "</"))


def test_report_rebuilds_the_page_from_stored_results(results, tmp_path, capsys):
    out = tmp_path / "again.html"
    assert main(["report", str(results["grid"]), "--out", str(out), "--top", "3"]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "MA Crossover Grid" in page
    data = page_data(page)
    assert [c["rank"] for c in data["top_curves"]] == [1, 2, 3]
    # the page's own markup (inline scripts and styles taken out) loads nothing from elsewhere
    markup = re.sub(r"(?s)<(script|style)[^>]*>.*?</\1>", "", page)
    assert "src=" not in markup and "<link" not in markup and "http" not in markup


def test_rebuilt_report_curves_are_the_stored_runs(results, tmp_path):
    """The best runs drawn are re-run from their stored run specs: their final equity is the stored one."""
    result = json.loads((results["grid"] / "result.json").read_text())
    stored = {r["run_id"]: r["metrics"] for r in result["results"]}
    data = page_data((results["grid"] / "report.html").read_text())
    assert len(data["top_curves"]) == 5
    for curve in data["top_curves"]:
        metrics = stored[curve["run_id"]]
        assert curve["equity"][-1] == pytest.approx(metrics["final_equity"], rel=1e-9)
        assert min(curve["drawdown"]) == pytest.approx(-metrics["max_drawdown"], rel=1e-9)


def test_rerun_the_best_run_with_its_exact_spec(results, tmp_path, capsys):
    stored = json.loads((results["grid"] / "result.json").read_text())
    best = stored["best_configuration"]
    page = tmp_path / "best.html"
    assert main(["rerun", str(results["grid"]), best["run_id"], "--json", "--report", str(page)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["metrics"] == pytest.approx(best["metrics"], rel=1e-12)
    assert len(again["trades"]) == best["metrics"]["total_trades"]
    assert "price-chart" in page.read_text()


def test_rerun_of_an_unknown_run_id_names_the_results(results, capsys):
    assert main(["rerun", str(results["grid"]), "0123456789abcdef"]) == 2
    err = capsys.readouterr().err
    assert "0123456789abcdef" in err and "not in the results" in err and "results.parquet" in err


def test_folder_without_result_json(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert main(["report", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "half") in err and "result.json" in err and "missing" in err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_truncated_parquet(results, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(results["grid"], broken)
    data = (broken / "results.parquet").read_bytes()
    (broken / "results.parquet").write_bytes(data[: len(data) // 2])
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert str(broken / "results.parquet") in err and "truncated" in err


def test_unknown_visualization_lists_the_valid_ones(tmp_path, capsys):
    spec = tmp_path / "vt.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            variant_config:
              name: bad-visualization
              base_operation: {ROOT / "config/operations/ma_crossover.yaml"}
              variants:
                - {{name: a, overrides: {{}}}}
              comparison_config:
                visualizations: [equity_curves, trade_histogram]
            """
        )
    )
    assert main(["variant-test", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "trade_histogram" in err
    assert "equity_curves, drawdown_curves, monthly_returns, trade_distribution" in err or all(
        v in err for v in ("drawdown_curves", "monthly_returns", "trade_distribution")
    )
    # a stored spec (e.g. written by an older version) is checked again by the report
    with pytest.raises(ReportError, match="valid: equity_curves, drawdown_curves, monthly_returns"):
        chosen_visualizations({"spec": {"comparison_config": {"visualizations": ["pie"]}}}, "runs/x")


def test_visualizations_choose_the_sections(results, tmp_path):
    manifest = json.loads((results["vt"] / "manifest.json").read_text())
    assert chosen_visualizations(manifest, "x") == [
        "equity_curves",
        "drawdown_curves",
        "monthly_returns",
        "trade_distribution",
    ]
    only = tmp_path / "vt"
    shutil.copytree(results["vt"], only)
    manifest["spec"]["comparison_config"]["visualizations"] = ["equity_curves"]
    (only / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(only)]) == 0
    page = (only / "report.html").read_text()
    assert 'id="variant-equity"' in page
    assert 'id="variant-drawdown"' not in page and 'id="variant-trade-pnl"' not in page
