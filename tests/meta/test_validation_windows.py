"""Holdout and walk-forward: window arithmetic, run expansion, selection on in-sample, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from s1mple.executors.sweep import LocalSweep
from s1mple.meta.models import Holdout, ValidationSpec, WalkForward
from s1mple.meta.planner import plan_file
from s1mple.meta.windows import holdout_split, plan_windows, walk_forward_windows
from s1mple_engine.config import ConfigError
from s1mple_engine.runspec import RunSpec
from s1mple_engine.segments import encode_returns

from .conftest import BASE_OPERATION, fake_run, write_spec

DAYS = np.datetime64("2020-01-01", "ns") + np.arange(100) * np.timedelta64(1, "D")

GRID = """\
optimization_config:
  name: validated grid
  base_operation: op.yaml
  parameter_space:
    - worker_category: opportunity_workers
      worker_plugin: ma_crossover
      parameters:
        fast: {{values: [5, 10, 20]}}
        slow: {{values: [30, 50]}}
  validation:
{validation}
"""


@pytest.fixture
def base_dir(base_dir):
    """The meta tests' base operation on data the engine ships (windows are planned on its bars)."""
    (base_dir / "op.yaml").write_text(BASE_OPERATION.replace("sample:GOOG", "sample:synthetic_daily"))
    return base_dir


def spans(pairs):
    return [((tr.start, tr.end), (te.start, te.end)) for tr, te in pairs]


def test_rolling_windows_in_bars():
    pairs = walk_forward_windows(DAYS, WalkForward(train=40, test=20, step=20))
    assert spans(pairs) == [((0, 39), (40, 59)), ((20, 59), (60, 79)), ((40, 79), (80, 99))]
    assert [p[1].label for p in pairs] == ["wf0.test", "wf1.test", "wf2.test"]


def test_anchored_windows_in_bars_and_step_defaults_to_test():
    pairs = walk_forward_windows(DAYS, WalkForward(train=40, test=25, anchored=True))
    assert spans(pairs) == [((0, 39), (40, 64)), ((0, 64), (65, 89))]  # 90..99 is not a whole test window


def test_windows_in_durations_follow_the_calendar():
    # weekdays only: a 14-day duration holds 10 bars, 7 days hold 5
    days = np.arange(np.datetime64("2021-01-04"), np.datetime64("2021-03-01"))
    weekdays = days[np.is_busday(days)].astype("datetime64[ns]")
    pairs = walk_forward_windows(weekdays, WalkForward(train="14d", test="7d", step="1w"))
    assert spans(pairs)[:2] == [((0, 9), (10, 14)), ((5, 14), (15, 19))]
    assert all(te.end - te.start + 1 == 5 for _, te in pairs)
    anchored = walk_forward_windows(weekdays, WalkForward(train="14d", test="7d", anchored=True))
    assert spans(anchored)[1] == ((0, 14), (15, 19))


def test_holdout_by_share_and_by_date():
    assert holdout_split(DAYS, Holdout(out_of_sample=0.3)) == 70
    assert holdout_split(DAYS, Holdout(out_of_sample="2020-03-01")) == 60  # 31 + 29 days of 2020
    windows = plan_windows(ValidationSpec(holdout=Holdout(out_of_sample=0.25)), DAYS)
    assert [(w.label, w.start, w.end) for w in windows] == [("is", 0, 74), ("oos", 75, 99)]


@pytest.mark.parametrize(
    ("validation", "field"),
    [
        (ValidationSpec(walk_forward=WalkForward(train=90, test=20)), "validation.walk_forward.test"),
        (ValidationSpec(walk_forward=WalkForward(train="80d", test="30d")), "validation.walk_forward.test"),
        (ValidationSpec(holdout=Holdout(out_of_sample="2019-06-01")), "validation.holdout.out_of_sample"),
        (ValidationSpec(holdout=Holdout(out_of_sample="2021-06-01")), "validation.holdout.out_of_sample"),
    ],
)
def test_windows_that_do_not_fit_the_data_name_the_field(validation, field):
    with pytest.raises(ConfigError, match=field):
        plan_windows(validation, DAYS)


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.2])
def test_out_of_sample_share_must_be_between_0_and_1(base_dir, share):
    spec = write_spec(base_dir, GRID.format(validation=f"    holdout: {{out_of_sample: {share}}}"))
    with pytest.raises(ConfigError, match="validation.holdout.out_of_sample"):
        plan_file(spec)


def test_mixed_units_and_bad_durations_are_rejected(base_dir):
    spec = write_spec(base_dir, GRID.format(validation="    walk_forward: {train: 3y, test: 20}"))
    with pytest.raises(ConfigError, match="validation.walk_forward.train"):
        plan_file(spec)
    with pytest.raises(ConfigError, match="mix bars and durations"):
        walk_forward_windows(DAYS, WalkForward(train="40d", test=20))


def test_the_planner_runs_every_configuration_in_every_window(base_dir):
    """Holdout: an in-sample and an out-of-sample run per configuration; walk-forward: no run of its own,
    its train and test windows are segments of one whole-data run (``wf`` beside a holdout)."""
    spec = write_spec(
        base_dir,
        GRID.format(
            validation="    holdout: {out_of_sample: 0.3}\n    walk_forward: {train: 1000, test: 300}"
        ),
    )
    plan = plan_file(spec)
    labels = plan.window_labels()
    assert labels == ["is", "oos", "wf"]
    assert plan.total == 6 and plan.planned_runs == 6 * len(labels)
    payloads = list(plan.payloads())
    assert len({p["run_id"] for p in payloads}) == len(payloads)
    first = [RunSpec.from_payload(p) for p in payloads[: len(labels)]]
    assert {s.index for s in first} == {0}
    assert [s.window for s in first] == labels
    n = len(plan.bar_times)
    split = n - int(round(n * 0.3))
    assert first[0].operation.window.model_dump() == {"name": "is", "start": 0, "end": split - 1}
    assert first[1].operation.window.end == n - 1
    assert first[0].operation.segments is None and first[1].operation.segments is None
    wf = first[2].operation
    assert (wf.window.start, wf.window.end) == (0, n - 1)
    segments = [(s.name, s.start, s.end, s.per_bar) for s in wf.segments]
    assert segments[:4] == [
        ("wf0.train", 0, 999, False),
        ("wf0.test", 1000, 1299, True),
        ("wf1.train", 300, 1299, False),
        ("wf1.test", 1300, 1599, True),
    ]
    alone_spec = write_spec(
        base_dir, GRID.format(validation="    walk_forward: {train: 1000, test: 300}"), "wf.yaml"
    )
    alone = plan_file(alone_spec)
    assert alone.window_labels() == [""] and alone.planned_runs == 6
    only = RunSpec.from_payload(alone.payload(0))
    assert only.operation.window is None
    assert [s.name for s in only.operation.segments] == [s[0] for s in segments]


def windowed_fake(payload):
    """Metrics that depend on the window: a different configuration wins each train window; in each test
    window the chosen one ends 10 % up over 3 bars, after falling 30 % from its peak inside the window."""
    rec = fake_run(payload)
    fast = payload["configuration"]["ma_crossover"]["fast"]
    slow = payload["configuration"]["ma_crossover"]["slow"]

    def metrics(window):
        k = int(window[2]) if window.startswith("wf") and len(window) > 2 else 0
        favourite = [5, 10, 20][k % 3]
        m = dict(rec["metrics"])
        m["sharpe_ratio"] = (2.0 if fast == favourite else 0.5) + slow / 1000.0
        m["total_return"] = 10.0 if window.endswith(".test") and fast == favourite else -5.0
        if window == "oos":
            m["sharpe_ratio"] = -m["sharpe_ratio"]
        return m, fast == favourite

    window = payload.get("window") or ""
    rec["window"] = payload.get("window")
    rec["metrics"] = metrics(window)[0]
    segments = payload["operation"].get("segments") or []
    if segments:
        rec["segments"] = {}
        for seg in segments:
            m, good = metrics(seg["name"])
            entry = {"metrics": m}
            if seg["per_bar"]:
                path = [1.2, 1.2 * 0.7, 1.1] if good else [1.0, 0.9, 0.95]  # equity after each bar
                per_bar = np.zeros(seg["end"] - seg["start"] + 1)  # flat after the first 3 bars
                per_bar[:3] = np.array(path) / np.array([1.0, *path[:-1]]) - 1.0
                entry.update(returns=encode_returns(per_bar), bars_per_year=252.0)
            rec["segments"][seg["name"]] = entry
    return rec


def validated_sweep(plan, out):
    return LocalSweep(
        plan, out=str(out), validator=False, warm=False, progress=False, max_workers=2, run_fn=windowed_fake
    ).run()


def test_selection_uses_in_sample_and_picks_the_train_best_per_window(base_dir, tmp_path):
    spec = write_spec(
        base_dir,
        GRID.format(
            validation="    holdout: {out_of_sample: 0.3, top: 3}\n    walk_forward: {train: 500, test: 400}"
        ),
    )
    result = validated_sweep(plan_file(spec), tmp_path / "out").result
    # the main table ranks the in-sample runs only, one per configuration; the counts cover every run
    assert len(result["results"]) == 6
    assert result["successful_runs"] == result["completed_runs"] == result["planned_runs"] == 6 * 3
    assert result["feasible_runs"] == 6
    best = result["best_configuration"]
    assert best["configuration"]["ma_crossover"] == {"fast": 5, "slow": 50}
    holdout = result["validation"]["holdout"]
    assert holdout["best"]["configuration"] == best["configuration"]
    assert holdout["best"]["in_sample"]["sharpe_ratio"] == pytest.approx(2.05)
    assert holdout["best"]["out_of_sample"]["sharpe_ratio"] == pytest.approx(-2.05)
    assert holdout["best"]["degradation"] == pytest.approx(-4.1)
    assert len(holdout["top"]) == 3
    wf = result["validation"]["walk_forward"]
    picks = [w["configuration"]["ma_crossover"] for w in wf["windows"]]
    assert picks == [{"fast": [5, 10, 20][k % 3], "slow": 50} for k in range(len(picks))]
    assert all(w["out_of_sample_return"] == 10.0 for w in wf["windows"])
    oos = wf["out_of_sample"]
    assert oos["total_return"] == pytest.approx((1.1 ** len(picks) - 1) * 100, rel=1e-5)
    assert wf["stability"]["changes"] == len(picks) - 1
    assert wf["windows"][0]["train_start"] < wf["windows"][0]["test_start"]
    # the stitched line is per bar, and the 30 % fall inside each window shows, where compounding window
    # by window (+10 % each) would show no drawdown at all
    assert oos["bars"] == 400 * len(picks) == len(oos["curve"]["equity"]) == len(oos["curve"]["time"])
    assert oos["curve"]["time"][0] == wf["windows"][0]["test_start"]
    assert oos["curve"]["equity"][:3] == pytest.approx([1.2, 0.84, 1.1], rel=1e-6)
    assert all(a < b for a, b in zip(oos["equity"], oos["equity"][1:], strict=False))
    assert oos["max_drawdown"] == pytest.approx(30.0, rel=1e-5)
    assert oos["sharpe_ratio"] is not None


def test_an_unquoted_yaml_date_is_a_split_date(base_dir):
    plan = plan_file(write_spec(base_dir, GRID.format(validation="    holdout: {out_of_sample: 2020-01-02}")))
    split = plan.windows[1].start
    assert str(plan.bar_times[split])[:10] == "2020-01-02"
    assert str(plan.bar_times[split - 1])[:10] < "2020-01-02"


def test_reused_records_of_another_plan_pair_by_configuration(base_dir, tmp_path):
    """A second grid with one more value first: the stored runs come back with the first plan's indices,
    which the new runs reuse for other configurations."""
    both = GRID.format(validation="    holdout: {out_of_sample: 0.3, top: 6}")
    first = both.replace("[5, 10, 20]", "[5, 10]")
    validated_sweep(plan_file(write_spec(base_dir, first)), tmp_path / "out")
    again = both.replace("[5, 10, 20]", "[20, 5, 10]")
    outcome = validated_sweep(plan_file(write_spec(base_dir, again, "again.yaml")), tmp_path / "out")
    assert outcome.skipped == 8 and outcome.executed == 4
    rows = outcome.result["validation"]["holdout"]["top"]
    assert len(rows) == 6
    for row in rows:  # windowed_fake: out-of-sample sharpe = -in-sample sharpe of the same configuration
        assert row["out_of_sample"]["sharpe_ratio"] == -row["in_sample"]["sharpe_ratio"]
