"""The overfitting statistics (meta/overfitting.py) against the papers, a naive reference and known cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from s1mple.meta import overfitting
from s1mple_engine.result import return_stats


def block_stats(returns: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bars, sum, sum of squares) per run and block, as the engine records them (via return_stats)."""
    stats = [return_stats(r, blocks).blocks for r in returns]
    return tuple(np.array([getattr(b, f) for b in stats], dtype=float) for f in ("bars", "sum", "sumsq"))


def naive_pbo(returns: np.ndarray, blocks: int) -> float:
    """PBO the slow way: concatenate the blocks of every split, Sharpe of the actual bars, rank."""
    runs, bars = returns.shape
    parts = np.split(returns, (np.arange(1, blocks) * bars) // blocks, axis=1)
    logits = []
    for half in itertools.combinations(range(blocks), blocks // 2):
        ins = np.concatenate([parts[i] for i in half], axis=1)
        oos = np.concatenate([parts[i] for i in range(blocks) if i not in half], axis=1)
        is_sr = ins.mean(1) / ins.std(1, ddof=1)
        oos_sr = oos.mean(1) / oos.std(1, ddof=1)
        v = oos_sr[np.argmax(is_sr)]
        rank = (oos_sr < v).sum() + ((oos_sr == v).sum() + 1) / 2
        omega = rank / (runs + 1)
        logits.append(math.log(omega / (1 - omega)))
    return float((np.array(logits) <= 0).mean())


def test_deflated_sharpe_reproduces_the_papers_example():
    """Bailey & Lopez de Prado (2014), section 5: annualised SR 2.5 from 100 trials whose annualised
    SRs vary with 0.5, 1,250 daily observations (five years of 250 days), skewness -3, kurtosis 10:
    DSR 0.9004.  De-annualised with the paper's 250 days: SR / sqrt(250), variance / 250."""
    days = 250
    d = overfitting.deflated_sharpe(2.5 / math.sqrt(days), 100, 0.5 / days, 1250, -3.0, 10.0)
    assert d["dsr"] == pytest.approx(0.9004, abs=5e-4)
    # the expected maximum of 100 skill-less trials is ~1.79 annualised (the paper's SR0 = 0.1132 a day)
    assert d["expected_max_sharpe"] * math.sqrt(days) == pytest.approx(1.79, abs=0.01)


def test_psr_is_a_probability_against_the_benchmark():
    assert overfitting.psr(0.0, 1000, 0.0, 3.0) == pytest.approx(0.5)
    # normal returns: z = SR sqrt(n - 1) / sqrt(1 + SR^2 / 2)
    sr, n = 0.05, 1001
    z = sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2)
    assert overfitting.psr(sr, n, 0.0, 3.0) == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))
    # fat tails and negative skew make the same Sharpe less convincing
    assert overfitting.psr(sr, n, -2.0, 12.0) < overfitting.psr(sr, n, 0.0, 3.0)
    column = overfitting.psr(np.array([0.0, sr]), np.array([n, n]), np.zeros(2), np.full(2, 3.0))
    assert column.tolist() == pytest.approx([0.5, overfitting.psr(sr, n, 0.0, 3.0)])


def test_pbo_is_zero_when_one_configuration_is_best_in_every_block():
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, (20, 1600))
    returns[4] += 0.01  # a Sharpe of ~1 a bar: best in every block, in- and out-of-sample
    result = overfitting.pbo(*block_stats(returns, 16))
    assert result["pbo"] == 0.0 and result["splits"] == 12870 and result["runs"] == 20
    assert result["prob_oos_loss"] == 0.0 and result["logits"]["p05"] > 2.0


@pytest.mark.parametrize(("blocks", "seed"), [(8, 11), (2, 7), (4, 11), (12, 11)])
def test_pbo_matches_the_naive_computation_including_ties(blocks, seed):
    """Every even block count, 2 included (a split of one block against one)."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0002, 0.01, (25, 480))
    returns[7] = returns[3]  # identical runs (a parameter that changes nothing)
    returns[9] = returns[3]
    fast = overfitting.pbo(*block_stats(returns, blocks))
    assert fast["pbo"] == pytest.approx(naive_pbo(returns, blocks))


def test_pbo_of_independent_noise_strategies_is_near_one_half_on_average():
    values = []
    for seed in range(40):
        returns = np.random.default_rng(seed).normal(0.0, 0.01, (30, 400))
        values.append(overfitting.pbo(*block_stats(returns, 8))["pbo"])
    assert abs(np.mean(values) - 0.5) < 0.08, np.mean(values)


def test_validation_needs_ten_feasible_runs_and_names_why():
    rng = np.random.default_rng(1)
    stats = {}
    for k in range(9):
        s = return_stats(rng.normal(0.0, 0.01, 400), 16).model_dump()
        stats[f"r{k}"] = overfitting.compact_returns(s)
    v = overfitting.validation_summary(stats, list(stats), "r0", blocks=16, max_pbo=0.5, min_dsr=0.5)
    assert v["pbo"]["pbo"] is None and ">= 10 feasible runs" in v["pbo"]["reason"]
    assert v["deflated_sharpe"]["trials"] == 9 and 0 <= v["deflated_sharpe"]["dsr"] <= 1
    off = overfitting.validation_summary(stats, list(stats), "r0", blocks=None, max_pbo=0.5, min_dsr=0.5)
    assert "cscv: false" in off["pbo"]["reason"]


def test_return_stats_blocks_add_up_and_moments_are_not_excess():
    r = np.random.default_rng(3).standard_t(5, 1000) * 0.01
    s = return_stats(r, 16)
    assert sum(s.blocks.bars) == 1000 and max(s.blocks.bars) - min(s.blocks.bars) <= 1
    assert sum(s.blocks.sum) == pytest.approx(r.sum()) and sum(s.blocks.sumsq) == pytest.approx((r * r).sum())
    assert s.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    z = (r - r.mean()) / r.std()
    assert s.skewness == pytest.approx((z**3).mean()) and s.kurtosis == pytest.approx((z**4).mean())
    assert s.kurtosis > 3.5  # Student-t tails: kurtosis, not excess kurtosis
    assert return_stats(r[:20], 16).blocks is None  # fewer than 2 bars a block: no blocks


def test_bootstrap_is_seeded_and_finds_a_genuine_difference():
    rng = np.random.default_rng(5)
    base = rng.normal(0.0, 0.01, 1500)
    better = base * 0.5 + rng.normal(0.002, 0.005, 1500)
    first = overfitting.compare_to_baseline(base, {"better": better, "same": base})
    again = overfitting.compare_to_baseline(base, {"better": better, "same": base})
    assert first == again
    assert first["better"]["sharpe"]["significant"] and first["better"]["sharpe"]["p_value"] < 0.01
    assert first["better"]["sharpe"]["ci"][0] > 0
    assert first["same"]["sharpe"]["difference"] == 0 and not first["same"]["sharpe"]["significant"]
    text = overfitting.significance_text("base", first)
    assert "better has a higher Sharpe than base" in text and "same" not in text
