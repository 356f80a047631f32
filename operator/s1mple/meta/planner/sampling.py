"""Random search: a seeded draw of run indices whose cost grows with the trials drawn, not with the space.

Indices are drawn uniformly from the plan's mixed-radix space.  Groups of constrained params small enough
to enumerate hold feasible tuples only, so every draw is a run; larger groups (above ``LAZY_SUBGRID``
combinations) span their whole sub-grid, and each draw is checked against their constraints and redrawn
when it violates one (rejection sampling, with a bounded number of attempts).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

from s1mple_engine.config import ConfigError

from ..space import ComponentDim, digits_of

if TYPE_CHECKING:
    from .optimization import OptimizationPlan

#: Constrained groups spanning more combinations than this are checked per draw, not enumerated.
LAZY_SUBGRID = 1_000_000
#: Draws allowed per wanted trial before the feasible share is declared too small.
ATTEMPTS_PER_TRIAL = 100
MIN_ATTEMPTS = 10_000


def draw_random(plan: OptimizationPlan, k: int, seed: int) -> list[int]:
    """``k`` distinct feasible configuration indices of ``plan``, ascending; the same seed gives the same."""
    lazy = [(pos, d) for pos, d in enumerate(plan.dims) if isinstance(d, ComponentDim) and d.feasible is None]
    rng = random.Random(seed)
    if not lazy:  # every index is a run: a sample of the range (O(k), whatever the space)
        return sorted(rng.sample(range(plan.total), k))
    sizes = [d.size for d in plan.dims]
    chosen: set[int] = set()
    rejected: Counter[str] = Counter()
    attempts, budget = 0, max(MIN_ATTEMPTS, ATTEMPTS_PER_TRIAL * k)
    while len(chosen) < k and attempts < budget:
        attempts += 1
        index = rng.randrange(plan.total)
        if index in chosen:
            continue
        digits = digits_of(index, sizes)
        broken = next((c for pos, d in lazy if (c := d.accepts(digits[pos])) is not None), None)
        if broken is None:
            chosen.add(index)
        else:
            rejected[broken.text] += 1
    if len(chosen) < k:
        text, count = rejected.most_common(1)[0] if rejected else ("", 0)
        raise ConfigError(
            f"search: {attempts:,} random draws found only {len(chosen):,} of the {k:,} trials wanted; "
            f"parameter_constraints {text!r} rejected {count:,} of them (the feasible share is "
            f"~{len(chosen) / attempts:.2%}). Loosen the constraint, narrow the ranges to where it holds, "
            "or lower search.max_trials",
            plan.source,
        )
    return sorted(chosen)
