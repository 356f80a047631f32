"""How far a sweep's best result can be trusted: pure statistics over the runs' return statistics.

* :func:`psr` - Probabilistic Sharpe Ratio (Bailey & Lopez de Prado 2012): the probability that the true
  Sharpe ratio exceeds a benchmark, given the observed one, the bar count, skewness and kurtosis.
* :func:`deflated_sharpe` - Deflated Sharpe Ratio (Bailey & Lopez de Prado 2014): the PSR of the best run
  against the Sharpe ratio the best of ``trials`` skill-less configurations would show.
* :func:`pbo` - Probability of Backtest Overfitting by combinatorially symmetric cross-validation (Bailey,
  Borwein, Lopez de Prado & Zhu 2015), from each run's per-block (bar count, sum, sum of squares) of its
  per-bar returns: no per-bar series is needed.
* :func:`compare_to_baseline` - a paired stationary block bootstrap (Politis & Romano 1994) of the Sharpe
  and total-return differences of variants against a baseline.

Sharpe ratios here are per bar (mean / std with ddof=1 of the per-bar returns), never annualised; kurtosis is
not excess (3 for a normal distribution).  Everything is deterministic: the same records give the same
numbers on every machine (the bootstrap is seeded).  docs/meta.md explains each statistic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist
from typing import Any

import numpy as np

NORMAL = NormalDist()
EULER_GAMMA = 0.5772156649015329
#: PBO needs at least this many feasible runs (fewer: the ranking has too little to say).
MIN_PBO_RUNS = 10
#: Elements of one (runs x splits) working matrix of the PBO (~1 MB a float32 matrix: stays in cache).
_CHUNK_ELEMENTS = 1 << 18
#: Edges of the logit histogram reported with PBO (counts below the first edge, between, above the last).
LOGIT_EDGES = (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)
#: Threads of the PBO ranking (the aggregation runs after the sweep's workers: their cores are free).
PBO_THREADS = 2
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
SIGNIFICANCE_LEVEL = 0.05


def _cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, elementwise (math.erf: no scipy needed)."""
    return np.asarray(0.5 * (1.0 + _erf(np.asarray(z, dtype=float) / math.sqrt(2.0))), dtype=float)


_erf = np.frompyfunc(math.erf, 1, 1)


# --------------------------------------------------------------------------------------------------------
# PSR and DSR
# --------------------------------------------------------------------------------------------------------


def psr(sharpe: Any, bars: Any, skewness: Any, kurtosis: Any, benchmark: float = 0.0) -> np.ndarray | float:
    """Probabilistic Sharpe Ratio: Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)).

    Per-bar SR, ``bars`` = n, kurtosis not excess; arrays work elementwise.  Fewer than 2 bars, or a
    non-positive variance term (impossible for real data), give 0.5: no information either way."""
    if all(isinstance(x, int | float) for x in (sharpe, bars, skewness, kurtosis, benchmark)):
        return _psr_scalar(float(sharpe), float(bars), float(skewness), float(kurtosis), float(benchmark))
    sr, n, g3, g4 = (np.asarray(x, dtype=float) for x in (sharpe, bars, skewness, kurtosis))
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    ok = (n >= 2) & (var > 0)
    z = np.where(ok, (sr - benchmark) * np.sqrt(np.maximum(n - 1, 0)) / np.sqrt(np.where(ok, var, 1)), 0)
    out = np.asarray(_cdf(z), dtype=float)
    return float(out) if out.ndim == 0 else out


def _psr_scalar(sr: float, n: float, g3: float, g4: float, benchmark: float) -> float:
    """:func:`psr` of one run (a results table computes one a row): the same operations in the same
    order on Python floats, so the same number, without numpy's per-call cost."""
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    z = (sr - benchmark) * math.sqrt(max(n - 1, 0)) / math.sqrt(var) if n >= 2 and var > 0 else 0.0
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def expected_max_sharpe(trials: int, variance: float) -> float:
    """E[max SR] of ``trials`` independent skill-less configurations whose Sharpe ratios vary with
    ``variance``: sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))); 0 for one trial."""
    if trials < 2 or variance <= 0:
        return 0.0
    return math.sqrt(variance) * (
        (1 - EULER_GAMMA) * NORMAL.inv_cdf(1 - 1 / trials)
        + EULER_GAMMA * NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    )


def deflated_sharpe(
    sharpe: float, trials: int, sharpe_variance: float, observations: int, skewness: float, kurtosis: float
) -> dict[str, Any]:
    """The DSR of a selected run: its PSR against :func:`expected_max_sharpe` (all per bar)."""
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    return {
        "dsr": float(psr(sharpe, observations, skewness, kurtosis, benchmark)),
        "sharpe": sharpe,
        "trials": trials,
        "sharpe_variance": sharpe_variance,
        "observations": observations,
        "skewness": skewness,
        "kurtosis": kurtosis,
        "expected_max_sharpe": benchmark,
    }


# --------------------------------------------------------------------------------------------------------
# PBO by CSCV
# --------------------------------------------------------------------------------------------------------


def cscv_halves(blocks: int) -> list[tuple[int, ...]]:
    """The C(S, S/2) / 2 in-sample halves that contain block 0, in lexicographic order: each split and
    its complement (the symmetric split) are one half, evaluated in both directions."""
    return [c for c in combinations(range(blocks), blocks // 2) if c[0] == 0]


def _half_sums(values: np.ndarray, halves: np.ndarray, out: np.ndarray) -> None:
    """Into ``out[:k]``: the sums of a (blocks, runs) matrix over each of ``halves`` ((k, S/2) block
    numbers, in lexicographic order as :func:`cscv_halves` gives them), added left to right.

    Consecutive halves share a prefix, so the sums are built level by level: the distinct prefixes of
    length d are those of length d - 1 plus one block, one array operation a level (~2 vector
    additions a half instead of S/2 - 1).  Every sum is the same chain of float32 additions, in the same
    order, as adding the blocks one by one: the numbers are exactly those of that loop."""
    k, depth = halves.shape
    if depth == 1:
        np.take(values, halves[:, 0], axis=0, out=out[:k])
        return
    prefix = values[halves[:1, 0]]  # (distinct prefixes, runs): every half starts with block 0
    node = np.zeros(k, dtype=np.intp)  # the row of each half's prefix in ``prefix``
    for d in range(2, depth):
        new = np.ones(k, dtype=bool)
        new[1:] = (halves[1:, :d] != halves[:-1, :d]).any(axis=1)
        first = np.flatnonzero(new)
        prefix = prefix[node[first]] + values[halves[first, d - 1]]
        node = np.cumsum(new) - 1
    np.add(prefix[node], values[halves[:, depth - 1]], out=out[:k])


#: Relative slack added to n q in the ranking key: keeps n q - s^2 positive through float32 rounding
#: without changing any order (the key stays a strictly increasing function of the Sharpe, see below).
_SLACK = 1e-5


def _sharpe_order(n: np.ndarray, s: np.ndarray, q: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Into ``key``: a number that orders the runs of each row (split) as their per-bar Sharpe does, in
    five array operations (the cost of PBO on 10,000 runs); ``q`` is overwritten.

    With n bars, sum s and sum of squares q, the Sharpe is s / sqrt(n q - s^2) times a factor of the
    row (sqrt(n - 1), the same bars for every run).  The key sign(s) s^2 / (n (1 + e) q - s^2) is
    x^2 sign(x) / (1 + e + e x^2) of x = s / sqrt(n q - s^2): strictly increasing in x, so no square
    root is needed and the slack e orders nothing differently.  All-zero returns (q = 0 and s = 0, a
    run that never traded) have the key 0 (the tiny q added to every block keeps 0 / 0 away)."""
    np.square(s, out=key)
    np.multiply(q, n * (1 + _SLACK), out=q)
    q -= key
    key /= q
    return np.copysign(key, s, out=key)


def _exact_sharpe(n: np.ndarray, s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe (ddof=1) from bar count, sum and sum of squares; 0 without variance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (q - s * s / n) / (n - 1)
        return np.where(var > 1e-30, s / n / np.sqrt(var), 0.0)


def _ranks(is_sr: np.ndarray, oos_sr: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per split (row): the in-sample best run (ties: the first) and the relative OOS rank omega of it,
    rank 1 (worst) ... N (best), ties averaged (as scipy's rankdata), omega = rank / (N + 1).  ``weight``:
    how many runs each column stands for (identical runs are one column)."""
    k = is_sr.shape[0]
    best = np.argmax(is_sr, axis=1)
    v = oos_sr[np.arange(k), best][:, None]
    if weight is None:
        below = np.count_nonzero(oos_sr < v, axis=1)
        ties = np.count_nonzero(oos_sr == v, axis=1)
        runs = is_sr.shape[1]
    else:
        below = (oos_sr < v) @ weight
        ties = (oos_sr == v) @ weight
        runs = int(weight.sum())
    return best, (below + (ties + 1) / 2.0) / (runs + 1)


@dataclass
class _Panel:
    """The float32 block sums (blocks, runs) the ranking works on, with the bar counts of each in-sample
    half and in all, and the weight of each distinct run (None: all distinct)."""

    s: np.ndarray
    q: np.ndarray
    bars_in: np.ndarray
    bars: np.ndarray
    weight: np.ndarray | None


def _rank_splits(
    halves: list[tuple[int, ...]], bounds: tuple[int, int], p: _Panel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chosen run, omega, half index, swapped) for both directions of the halves[lo:hi]."""
    lo, hi = bounds
    runs = p.s.shape[1]
    blocks = p.s.shape[0]
    table = np.array(halves, dtype=np.intp).reshape(len(halves), blocks // 2)
    total_s, total_q = p.s.sum(0), p.q.sum(0)
    step = max(1, _CHUNK_ELEMENTS // runs)
    sa, qa, sb, qb, key_a, key_b = (np.empty((step, runs), dtype=np.float32) for _ in range(6))
    chosen, omegas, split_rows, swapped = [], [], [], []
    for start in range(lo, hi, step):
        k = min(step, hi - start)
        _half_sums(p.s, table[start : start + k], sa)
        _half_sums(p.q, table[start : start + k], qa)
        na = p.bars_in[start : start + k]
        np.subtract(total_s, sa[:k], out=sb[:k])
        np.subtract(total_q, qa[:k], out=qb[:k])
        sr_a = _sharpe_order(na, sa[:k], qa[:k], key_a[:k])
        sr_b = _sharpe_order(p.bars - na, sb[:k], qb[:k], key_b[:k])
        rows = np.arange(start, start + k)
        for flip, (is_sr, oos_sr) in enumerate(((sr_a, sr_b), (sr_b, sr_a))):
            best, omega = _ranks(is_sr, oos_sr, p.weight)
            chosen.append(best)
            omegas.append(omega)
            split_rows.append(rows)
            swapped.append(np.full(k, bool(flip)))
    if not chosen:
        empty = np.empty(0)
        return empty.astype(int), empty, empty.astype(int), empty.astype(bool)
    return tuple(np.concatenate(x) for x in (chosen, omegas, split_rows, swapped))  # type: ignore[return-value]


def pbo(block_bars: np.ndarray, block_sum: np.ndarray, block_sumsq: np.ndarray) -> dict[str, Any]:
    """PBO over every C(S, S/2) split of the S blocks; inputs are (runs, S) arrays, one row a run.

    For each split the run with the best in-sample Sharpe is found and its out-of-sample Sharpe ranked
    among all runs; PBO is the share of splits where it ranks at or below the median (logit <= 0).  Also:
    quantiles and a histogram of the logits, the probability that the in-sample best loses out of sample
    (OOS Sharpe < 0), and the degradation (least-squares line of OOS on IS Sharpe of the chosen runs).

    Fast enough for 10,000 runs x 12,870 splits: identical runs are counted once with a weight, the
    rankings work in float32 on (splits, runs) matrices, a cache-sized chunk of splits at a time, in two
    threads, and a split and its complement share one chunk row (in- and out-of-sample swap)."""
    panel = np.concatenate([np.asarray(a, dtype=float) for a in (block_bars, block_sum, block_sumsq)], axis=1)
    blocks = panel.shape[1] // 3
    # identical runs (a parameter that changed nothing) become one column with a weight, first seen first
    first: dict[bytes, int] = {}
    group = np.array([first.setdefault(row.tobytes(), len(first)) for row in panel], dtype=np.int64)
    unique, weight = panel[np.unique(group, return_index=True)[1]], np.bincount(group)
    runs, distinct = int(weight.sum()), unique.shape[0]
    n, s, q = (np.ascontiguousarray(unique[:, k * blocks : (k + 1) * blocks].T) for k in range(3))
    del panel, first, group, unique  # ~12 MB at 10,000 runs, not held while the rankings run
    if (n == n[:, :1]).all():  # every run of a sweep sees the same bars: one column for all
        n = n[:, :1]
    halves = cscv_halves(blocks)
    mask = np.zeros((len(halves), blocks), dtype=bool)
    for i, half in enumerate(halves):
        mask[i, list(half)] = True
    panel32 = _Panel(
        s=s.astype(np.float32),
        q=q.astype(np.float32) + np.float32(1e-30),
        bars_in=(mask @ n).astype(np.float32),  # (halves, 1 or runs)
        bars=n.sum(0).astype(np.float32),
        weight=None if (weight == 1).all() else weight.astype(np.float32),
    )
    # two threads (numpy releases the GIL in its loops), each over a contiguous range of the halves
    cut = len(halves) // 2
    with ThreadPoolExecutor(max_workers=PBO_THREADS) as pool:
        parts = list(pool.map(lambda r: _rank_splits(halves, r, panel32), [(0, cut), (cut, len(halves))]))
    best, omega, split_rows, swapped = (np.concatenate(x) for x in zip(*parts, strict=True))
    # the chosen runs' in- and out-of-sample per-bar Sharpe, exact (float64) from their own blocks
    in_sample = mask[split_rows]
    in_sample[swapped] ^= True
    bars = np.broadcast_to(n.T, (distinct, blocks))[best]
    sums, squares = s.T[best], q.T[best]
    ib = _exact_sharpe(*(np.where(in_sample, x, 0).sum(1) for x in (bars, sums, squares)))
    ob = _exact_sharpe(*(np.where(in_sample, 0, x).sum(1) for x in (bars, sums, squares)))
    lam = np.log(omega / (1.0 - omega))
    counts = np.bincount(np.searchsorted(LOGIT_EDGES, lam, side="right"), minlength=len(LOGIT_EDGES) + 1)
    slope, intercept = np.polyfit(ib, ob, 1) if np.ptp(ib) > 0 else (0.0, float(ob.mean()))
    quantiles = np.quantile(lam, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "pbo": float((lam <= 0).mean()),
        "blocks": blocks,
        "splits": int(lam.size),
        "runs": runs,
        "distinct_runs": int(distinct),
        "prob_oos_loss": float((ob < 0).mean()),
        "logits": {
            "mean": float(lam.mean()),
            **{f"p{p:02d}": float(v) for p, v in zip((5, 25, 50, 75, 95), quantiles, strict=True)},
            "histogram": {"edges": list(LOGIT_EDGES), "counts": counts.tolist()},
        },
        "degradation": {
            "slope": float(slope),
            "intercept": float(intercept),
            "is_sharpe_mean": float(ib.mean()),
            "oos_sharpe_mean": float(ob.mean()),
        },
    }


# --------------------------------------------------------------------------------------------------------
# One optimization's validation block
# --------------------------------------------------------------------------------------------------------


def validation_summary(
    returns: dict[str, dict[str, Any]],
    feasible: Iterable[str],
    best_run_id: str | None,
    *,
    blocks: int | None,
    max_pbo: float,
    min_dsr: float,
) -> dict[str, Any]:
    """``result.json``'s ``validation``: DSR of the best run over every run with return statistics,
    PBO over the feasible ones (``blocks`` None: turned off), the thresholds, and a verdict.

    ``returns``: run_id -> :func:`compact_returns` of the record, in rank order."""
    out: dict[str, Any] = {"deflated_sharpe": None, "pbo": None}
    sharpes = np.array([r["sharpe"] for r in returns.values()], dtype=float)
    best = returns.get(best_run_id) if best_run_id else None
    if best is None:
        out["deflated_sharpe"] = {"dsr": None, "reason": "no feasible best run with return statistics"}
    else:
        variance = float(sharpes.var(ddof=1)) if sharpes.size > 1 else 0.0
        out["deflated_sharpe"] = deflated_sharpe(
            float(best["sharpe"]),
            int(sharpes.size),
            variance,
            int(best["bars"]),
            float(best["skewness"]),
            float(best["kurtosis"]),
        )
    out["pbo"] = _pbo_of(returns, feasible, blocks)
    out["thresholds"] = {"max_pbo": max_pbo, "min_dsr": min_dsr}
    out["overfit_risk"], out["verdict"] = verdict(out, max_pbo, min_dsr)
    return out


def compact_returns(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record's ``returns`` without its series, the blocks as one (3, S) array (bar count, sum, sum of
    squares): what the aggregation keeps a run (~0.5 KB for 16 blocks)."""
    if not stats or "sharpe" not in stats:
        return None
    b = stats.get("blocks")
    return {
        "bars": int(stats.get("bars") or 0),
        "sharpe": float(stats["sharpe"]),
        "skewness": float(stats.get("skewness") or 0.0),
        "kurtosis": float(stats.get("kurtosis") or 3.0),
        "blocks": np.array([b["bars"], b["sum"], b["sumsq"]], dtype=float) if b else None,
    }


def _pbo_of(returns: dict[str, dict[str, Any]], feasible: Iterable[str], blocks: int | None) -> dict:
    if blocks is None:
        return {"pbo": None, "reason": "turned off (validation.cscv: false)"}
    rows, other = [], 0
    for rid in feasible:
        b = (returns.get(rid) or {}).get("blocks")
        if b is not None and b.shape[1] == blocks:
            rows.append(b)
        else:
            other += 1
    if len(rows) < MIN_PBO_RUNS:
        why = f"needs >= {MIN_PBO_RUNS} feasible runs with {blocks} return blocks, has {len(rows)}"
        if other:
            why += (
                f" ({other} feasible runs have no such blocks: too few bars, or recorded with another "
                "validation.cscv.blocks; run with --fresh to record them again)"
            )
        return {"pbo": None, "blocks": blocks, "splits": 0, "runs": len(rows), "reason": why}
    panel = np.stack(rows)  # (runs, 3, S)
    return pbo(panel[:, 0], panel[:, 1], panel[:, 2])


def verdict(validation: dict[str, Any], max_pbo: float, min_dsr: float) -> tuple[bool, str]:
    """(overfit risk, one line in plain words) from a validation block."""
    dsr = (validation.get("deflated_sharpe") or {}).get("dsr")
    p = (validation.get("pbo") or {}).get("pbo")
    problems: list[str] = []
    fine: list[str] = []
    if p is not None:
        text = f"PBO {p:.2f}: the in-sample best ranked in the bottom half out of sample in {p:.0%} of splits"
        (problems if p > max_pbo else fine).append(text)
    if dsr is not None:
        text = f"deflated Sharpe {dsr:.2f}: {dsr:.0%} chance that the best Sharpe is more than luck of trials"
        (problems if dsr < min_dsr else fine).append(text)
    if problems:
        return True, "Overfit risk: " + "; ".join(problems) + "."
    if not fine:
        return False, "Not enough runs to judge overfitting."
    return False, "No sign of overfitting: " + "; ".join(fine) + "."


# --------------------------------------------------------------------------------------------------------
# Variant significance: paired stationary block bootstrap
# --------------------------------------------------------------------------------------------------------


def bootstrap_indices(n: int, samples: int, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """(samples, n) indices of a stationary bootstrap: blocks start at uniform positions, wrap around the
    end, and have geometric lengths of mean ``mean_block`` (Politis & Romano 1994)."""
    starts = rng.integers(0, n, size=(samples, n))
    new_block = rng.random((samples, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    t = np.arange(n)
    first = np.maximum.accumulate(np.where(new_block, t, 0), axis=1)
    return (np.take_along_axis(starts, first, axis=1) + t - first) % n


def _sharpe_rows(r: np.ndarray) -> np.ndarray:
    sd = r.std(axis=-1, ddof=1)
    return np.where(sd > 1e-15, r.mean(axis=-1) / np.where(sd > 1e-15, sd, 1.0), 0.0)


def _total_return_rows(r: np.ndarray) -> np.ndarray:
    return (np.prod(1.0 + r, axis=-1) - 1.0) * 100.0


def _difference(observed: float, draws: np.ndarray, level: float) -> dict[str, Any]:
    """CI (percentile) and two-sided p-value (shifted to the null of no difference) of a difference."""
    lo, hi = np.quantile(draws, [level / 2, 1 - level / 2])
    extreme = int((np.abs(draws - observed) >= abs(observed)).sum())
    p = (1 + extreme) / (draws.size + 1)
    return {
        "difference": observed,
        "ci": [float(lo), float(hi)],
        "p_value": p,
        "significant": bool(p < level),
    }


def compare_to_baseline(
    baseline: Sequence[float],
    variants: dict[str, Sequence[float]],
    *,
    annualisation: float = 1.0,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = SIGNIFICANCE_LEVEL,
) -> dict[str, Any]:
    """Each variant's per-bar returns against the baseline's, on their common (last) bars: differences
    of Sharpe (x ``annualisation``) and total return (%), each with a (1 - level) CI and a p-value from
    one paired stationary block bootstrap (the same resampled bars for both series, so their correlation
    is kept); mean block length n^(1/3)."""
    base = np.asarray(baseline, dtype=float)
    out: dict[str, Any] = {}
    for k, (name, values) in enumerate(variants.items()):
        other = np.asarray(values, dtype=float)
        n = min(base.size, other.size)
        if n < 10:
            out[name] = {"bars": n, "reason": "fewer than 10 common bars"}
            continue
        a, b = base[base.size - n :], other[other.size - n :]
        rng = np.random.default_rng([seed, k])
        mean_block = max(1.0, n ** (1 / 3))
        sharpe_draws, return_draws = [], []
        for start in range(0, samples, 256):
            idx = bootstrap_indices(n, min(256, samples - start), mean_block, rng)
            ra, rb = a[idx], b[idx]
            sharpe_draws.append((_sharpe_rows(rb) - _sharpe_rows(ra)) * annualisation)
            return_draws.append(_total_return_rows(rb) - _total_return_rows(ra))
        out[name] = {
            "bars": n,
            "mean_block": mean_block,
            "sharpe": _difference(
                float((_sharpe_rows(b) - _sharpe_rows(a)) * annualisation),
                np.concatenate(sharpe_draws),
                level,
            ),
            "total_return": _difference(
                float(_total_return_rows(b) - _total_return_rows(a)), np.concatenate(return_draws), level
            ),
        }
    return out


def significance_text(baseline: str, comparisons: dict[str, Any]) -> str:
    """Which differences against the baseline are significant, in words (comparative_analysis)."""
    parts = []
    for name, c in comparisons.items():
        for metric, label in (("sharpe", "Sharpe"), ("total_return", "total return")):
            d = c.get(metric)
            if d and d["significant"]:
                word = "higher" if d["difference"] > 0 else "lower"
                parts.append(f"{name} has a {word} {label} than {baseline} (p={d['p_value']:.3f})")
    if not parts:
        return f"no difference from {baseline} is significant at {SIGNIFICANCE_LEVEL:.0%}"
    return "; ".join(parts)
