"""The reports open in a real headless chromium: no JavaScript error, the charts hold the data they
should, the table sorts on a header click; a screenshot of each is saved (tests/artifacts/)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.report.browser import CHROMIUM

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tests/system/install)")


def open_report(browser, path) -> None:
    """Open a report from disk: no JavaScript error, and nothing fetched but the file itself."""
    browser.events.clear()
    browser.open(path.as_uri())
    assert browser.errors() == []
    assert [u for u in browser.requests() if not u.startswith("data:")] == [path.as_uri()]


def test_optimization_report_of_a_two_parameter_grid(browser, results, shots):
    open_report(browser, results["grid"] / "report.html")
    table = pd.read_parquet(results["grid"] / "results.parquet")
    combinations = table[["ma_crossover.fast", "ma_crossover.slow"]].drop_duplicates()

    # the heatmap (drawn when scrolled to): one cell per (fast, slow) combination, axes the swept values
    browser.eval("document.getElementById('heatmap').scrollIntoView()")
    browser.wait("document.getElementById('heatmap').data")
    browser.eval("window.scrollTo(0, 0)")
    z = browser.eval("document.getElementById('heatmap').data[0].z")
    cells = [v for row in z for v in row if v is not None]
    assert len(cells) == len(combinations) == 640
    xs = browser.eval("document.getElementById('heatmap').data[0].x")
    assert xs == [str(v) for v in sorted(table["ma_crossover.fast"].unique())]
    best = table.iloc[0]
    assert max(cells) == pytest.approx(best["sharpe_ratio"], abs=1e-4)

    # every run is in the table, best first; a click on a header sorts by it
    assert browser.eval("window.s1mpleReport.table.getDataCount()") == len(table)
    first = browser.eval("window.s1mpleReport.table.getData('active').slice(0, 5).map(r => r.rank)")
    assert first == [1, 2, 3, 4, 5]
    browser.click('#runs-table .tabulator-col[tabulator-field="total_return"] .tabulator-col-title')
    browser.wait("window.s1mpleReport.table.getSorters().length === 1")
    shown = browser.eval("window.s1mpleReport.table.getData('active').map(r => r.total_return)")
    assert shown in (sorted(shown), sorted(shown, reverse=True)) and shown != list(table["total_return"])
    assert sorted(shown) == pytest.approx(sorted(table["total_return"]), abs=1e-4)
    rows_on_screen = browser.eval(
        "[...document.querySelectorAll('#runs-table .tabulator-row')].slice(0, 3)"
        ".map(r => +r.querySelector('[tabulator-field=total_return]').textContent)"
    )
    assert rows_on_screen == pytest.approx(shown[:3], rel=1e-4)

    # the feasible-only filter, and a range typed under a header
    browser.click("#feasible-only")
    browser.wait(f"window.s1mpleReport.table.getDataCount('active') === {int(table['feasible'].sum())}")
    browser.eval("window.s1mpleReport.table.setHeaderFilterValue('ma_crossover.fast', '5..6')")
    expected = int((table["feasible"] & table["ma_crossover.fast"].between(5, 6)).sum())
    browser.wait(f"window.s1mpleReport.table.getDataCount('active') === {expected}")
    browser.eval("document.getElementById('clear-filters').click()")

    # scatter plots: feasible and infeasible runs apart, the best run marked
    browser.eval("window.s1mpleReport.drawAll()")
    names = browser.eval("document.getElementById('scatter-risk').data.map(t => t.name)")
    assert names == ["feasible", "infeasible", "best"]
    counts = browser.eval("document.getElementById('scatter-risk').data.map(t => t.x.length)")
    assert counts[:2] == [int(table["feasible"].sum()), int((~table["feasible"]).sum())]
    assert browser.eval("document.getElementById('top-equity').data.length") == 5
    assert browser.eval("document.getElementById('parcoords').data[0].dimensions.length") == 5
    assert browser.errors() == []
    browser.screenshot(shots / "optimization-report.png")


def test_heatmap_picks_a_pair_and_aggregates_the_other_dimensions(browser, results, shots):
    open_report(browser, results["four"] / "report.html")
    table = pd.read_parquet(results["four"] / "results.parquet")
    dims = browser.eval("[...document.getElementById('hm-x').options].map(o => o.value)")
    assert set(dims) == {
        "ma_crossover.fast",
        "ma_crossover.slow",
        "ma_crossover.kind",
        "fixed_fraction_sizer.fraction",
    }

    def pick(x: str, y: str, agg: str) -> list[list[float]]:
        browser.eval(
            f"(() => {{ const s = (id, v) => {{ const e = document.getElementById(id); e.value = v;"
            f" e.dispatchEvent(new Event('change')); }};"
            f" s('hm-x', '{x}'); s('hm-y', '{y}'); s('hm-agg', '{agg}');"
            " window.s1mpleReport.drawAll(); })()"
        )
        return browser.eval("document.getElementById('heatmap').data[0].z")

    x, y = "ma_crossover.fast", "fixed_fraction_sizer.fraction"
    grouped = table.groupby([y, x])["sharpe_ratio"]
    for agg, expected in (("best", grouped.max()), ("median", grouped.median())):
        z = pick(x, y, agg)
        assert len(z) == table[y].nunique() and len(z[0]) == table[x].nunique()
        got = [v for row in z for v in row]
        assert got == pytest.approx(list(expected.values), abs=1e-4)
    note = browser.eval("document.getElementById('heatmap-note').textContent")
    assert "median" in note and "ma_crossover.slow" in note and "ma_crossover.kind" in note
    assert browser.errors() == []
    browser.screenshot(shots / "optimization-report-4d.png")


def test_variant_report_draws_one_equity_line_per_variant(browser, results, shots):
    open_report(browser, results["vt"] / "report.html")
    browser.eval("window.s1mpleReport.drawAll()")
    variants = browser.eval("window.s1mpleReport.data.variants.map(v => v.name)")
    assert len(variants) == 6
    assert browser.eval("document.getElementById('variant-equity').data.map(t => t.name)") == variants
    assert browser.eval("document.getElementById('variant-drawdown').data.length") == len(variants)
    assert browser.eval("document.getElementById('variant-monthly').data[0].y") == variants
    # trade distribution: one histogram per variant, as many values as the variant's trades
    trades = browser.eval("document.getElementById('variant-trade-pnl').data.map(t => t.x.length)")
    metrics = browser.eval("window.s1mpleReport.data.variants.map(v => v.metrics.total_trades)")
    assert trades == metrics
    header = browser.eval("[...document.querySelectorAll('#metrics-table th')].map(th => th.textContent)")
    assert header[2:] == browser.eval("window.s1mpleReport.data.metrics")
    assert browser.errors() == []
    browser.screenshot(shots / "variant-report.png")


def test_backtest_report_shows_entries_and_exits(browser, results, shots):
    open_report(browser, results["backtest"])
    browser.eval("window.s1mpleReport.drawAll()")
    traces = browser.eval("document.getElementById('price-chart').data.map(t => [t.name, t.x.length])")
    by_name = dict(traces)
    trades = browser.eval("window.s1mpleReport.data.trades.length")
    assert by_name["long entry"] + by_name["short entry"] == trades > 0
    assert by_name["long exit"] + by_name["short exit"] == trades
    hover = browser.eval("document.getElementById('price-chart').data[1].text[0]")
    assert hover.startswith("OPP-") and "exit:" in hover
    assert browser.eval("window.s1mpleReport.table.getDataCount()") == trades
    assert browser.eval("document.getElementById('bt-monthly').data[0].z.length") >= 1
    assert browser.errors() == []
    browser.screenshot(shots / "backtest-report.png")


def test_validation_results_are_shown_when_present(browser, results, tmp_path, shots):
    """result.json's ``validation`` (added by the validation step) gets its section."""
    import json
    import shutil

    from s1mple.cli import main

    folder = tmp_path / "validated"
    shutil.copytree(results["four"], folder)
    result = json.loads((folder / "result.json").read_text())
    result["validation"] = {
        "deflated_sharpe": {"value": 0.91, "p_value": 0.04, "trials": 24},
        "pbo": {"value": 0.125, "combinations": 70},
        "holdout": {"period": {"start": "2022-01-01", "end": "2023-08-30"}, "sharpe_ratio": 0.42},
        "walk_forward": {
            "windows": [{"window": 1, "sharpe_ratio": 0.3}, {"window": 2, "sharpe_ratio": -0.1}]
        },
    }
    (folder / "result.json").write_text(json.dumps(result))
    assert main(["report", str(folder)]) == 0
    open_report(browser, folder / "report.html")
    text = browser.eval("document.getElementById('validation-body').innerText")
    for expected in (
        "Deflated Sharpe ratio",
        "0.91",
        "(PBO)",
        "0.125",
        "hold-out",
        "2022-01-01",
        "Walk-forward",
    ):
        assert expected in text, expected
    assert browser.eval("document.querySelectorAll('#validation-body table tr').length") == 3
    browser.eval("document.getElementById('validation').scrollIntoView()")
    browser.screenshot(shots / "optimization-validation.png", full_page=False)


WALK_FORWARD = """\
optimization_config:
  name: walk-forward
  base_operation: {base}
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{values: [5, 10, 20]}}
        slow: {{values: [30, 60]}}
  optimization_targets:
    primary_metric: sharpe_ratio
  validation:
    walk_forward: {{train: 500, test: 250}}
"""


def test_walk_forward_chart_is_the_per_bar_stitched_curve(browser, tmp_path, shots):
    """A real walk-forward sweep: the chart draws one point per test bar, the chosen configurations'
    equity chained, and its drawdown is the per-bar one result.json reports."""
    import json

    from s1mple.cli import main
    from tests.report.conftest import ROOT

    spec = tmp_path / "wf.yaml"
    spec.write_text(WALK_FORWARD.format(base=ROOT / "config/operations/ma_crossover.yaml"))
    assert main(["optimize", str(spec), "--out", str(tmp_path / "wf")]) == 0
    wf = json.loads((tmp_path / "wf" / "result.json").read_text())["validation"]["walk_forward"]
    oos = wf["out_of_sample"]
    assert oos["bars"] == 250 * len(wf["windows"]) == len(oos["curve"]["equity"])
    open_report(browser, tmp_path / "wf" / "report.html")
    browser.eval("document.getElementById('wf-equity').scrollIntoView()")
    browser.wait("document.getElementById('wf-equity').data")
    drawn = browser.eval("document.getElementById('wf-equity').data[0].y")
    assert drawn == pytest.approx(oos["curve"]["equity"], rel=1e-9)
    drawdown = browser.eval("document.getElementById('wf-equity').data[1].y")
    assert -min(drawdown) == pytest.approx(oos["max_drawdown"], rel=1e-6)
    assert browser.errors() == []
    browser.screenshot(shots / "optimization-walk-forward.png", full_page=False)
