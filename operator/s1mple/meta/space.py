"""Dimensions of a search space and mixed-radix indexing: run ``i`` is computed from ``i`` alone.

A plan is an ordered list of dimensions, each with a ``size``; run ``i``'s choice in every dimension are the
digits of ``i`` in the mixed radix of the sizes (the LAST dimension varies fastest, like
``itertools.product``).  Nothing is materialised: a 10**6-run space costs its dimensions, not its runs.

Parameters tied by a constraint are one :class:`ComponentDim` whose choices are the FEASIBLE tuples of the
params' sub-grid (found in one vectorised pass over that sub-grid only, kept as a numpy index array), so
counts and indices reflect the constraints exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .expr import Constraint

#: The largest sub-grid a set of constrained params may span (it is enumerated once, vectorised).
MAX_CONSTRAINED_SUBGRID = 20_000_000
#: Points of a constrained sub-grid evaluated at once.
SUBGRID_BLOCK = 1 << 18


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return repr(round(v, 10))
    return str(v)


@dataclass
class Dimension:
    name: str
    kind: str  # param | constrained | worker_variant | selection | planning | operator
    size: int

    @property
    def structural(self) -> bool:
        return self.kind not in ("param", "constrained")

    def label(self, k: int) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        return ""

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "size": self.size, "describe": self.describe()}


@dataclass
class ParamTarget:
    """Which workers a parameter_space entry sets params on."""

    entry: int
    category: str
    phase: str | None
    plugin: str
    subtype: str | None

    def where(self) -> str:
        return f"{self.category}{'.' + self.phase if self.phase else ''}"

    def matches(self, worker: dict[str, Any]) -> bool:
        if worker.get("plugin") != self.plugin:
            return False
        return self.subtype is None or worker.get("subtype") in (None, self.subtype)


@dataclass
class ParamDim(Dimension):
    ref: str = ""
    param: str = ""
    target: ParamTarget | None = None
    values: list[Any] = field(default_factory=list)
    ordinal: bool = True

    def value(self, k: int) -> Any:
        return self.values[k]

    def label(self, k: int) -> str:
        return fmt_value(self.values[k])

    def probes(self) -> list[int]:
        """Choices that between them show every value once (validation of a space too large to walk)."""
        return list(range(self.size))

    def describe(self) -> str:
        vals = self.values
        if len(vals) <= 6:
            return ", ".join(fmt_value(v) for v in vals)
        return f"{fmt_value(vals[0])}, {fmt_value(vals[1])}, ... {fmt_value(vals[-1])}"


@dataclass
class ComponentDim(Dimension):
    """Params tied by constraints: choice k is the k-th feasible tuple of their sub-grid."""

    members: list[ParamDim] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    feasible: np.ndarray | None = None  # flat indices into the members' sub-grid, ascending; None: lazy
    grid_size: int = 0

    @classmethod
    def lazy(cls, members: list[ParamDim], constraints: list[Constraint]) -> ComponentDim:
        """A group too large to enumerate: choice k is the k-th tuple of the whole sub-grid, feasible or not.

        Its ``size`` counts every tuple; a sampler draws choices and keeps those :meth:`accepts` passes
        (random and bayesian searches), so nothing proportional to the sub-grid is ever built.
        """
        for m in members:
            _as_array(m)  # numeric values only, as for an enumerated group
        grid = product([m.size for m in members])
        name = " & ".join(m.ref for m in members)
        return cls(
            name=name, kind="constrained", size=grid, members=members, constraints=constraints, grid_size=grid
        )

    def accepts(self, k: int) -> Constraint | None:
        """None when choice ``k`` satisfies every constraint, else the first constraint it violates."""
        if self.feasible is not None:
            return None  # an enumerated group holds feasible tuples only
        env = {m.ref: m.values[d] for m, d in zip(self.members, self.member_digits(k), strict=True)}
        return next((c for c in self.constraints if not c.holds(env)), None)

    @classmethod
    def build(cls, members: list[ParamDim], constraints: list[Constraint]) -> ComponentDim:
        sizes = [m.size for m in members]
        grid = int(np.prod(sizes, dtype=np.int64)) if sizes else 0
        if grid > MAX_CONSTRAINED_SUBGRID:
            refs = ", ".join(f"{m.ref} ({m.size})" for m in members)
            raise ValueError(
                f"the constrained parameters {refs} span {grid:,} combinations, more than "
                f"{MAX_CONSTRAINED_SUBGRID:,} can be checked; narrow their ranges"
            )
        # in blocks of the flat sub-grid: memory is a block's worth of values, not the whole grid's
        # (a 20-million-point grid evaluated at once took ~65 MB per intermediate array)
        arrays = [_as_array(m) for m in members]
        parts = []
        for start in range(0, grid, SUBGRID_BLOCK):
            flat = np.arange(start, min(grid, start + SUBGRID_BLOCK), dtype=np.int64)
            digits = np.unravel_index(flat, sizes)  # C order: the last member varies fastest
            env = {m.ref: arr[d] for m, arr, d in zip(members, arrays, digits, strict=True)}
            mask = np.ones(flat.size, dtype=bool)
            for c in constraints:
                mask &= np.broadcast_to(np.asarray(c.evaluate(env), dtype=bool), flat.shape)
            parts.append(flat[mask])
        feasible = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        name = " & ".join(m.ref for m in members)
        return cls(
            name=name,
            kind="constrained",
            size=int(feasible.size),
            members=members,
            constraints=constraints,
            feasible=feasible,
            grid_size=grid,
        )

    def member_digits(self, k: int) -> list[int]:
        flat = k if self.feasible is None else int(self.feasible[k])
        return digits_of(flat, [m.size for m in self.members])

    def value(self, k: int) -> tuple[Any, ...]:
        return tuple(m.values[d] for m, d in zip(self.members, self.member_digits(k), strict=True))

    def index_of(self, member_digits: list[int]) -> int | None:
        """The choice index of a tuple of member digits, or None when the tuple is infeasible."""
        flat = index_of(member_digits, [m.size for m in self.members])
        if self.feasible is None:
            return None if self.accepts(flat) else flat
        pos = int(np.searchsorted(self.feasible, flat))
        if pos < self.feasible.size and int(self.feasible[pos]) == flat:
            return pos
        return None

    def probes(self) -> list[int]:
        """Choices that between them show every value of every member (feasible ones when enumerated)."""
        sizes = [m.size for m in self.members]
        out: set[int] = set()
        for pos, m in enumerate(self.members):
            stride = product(sizes[pos + 1 :])
            if self.feasible is None:  # lazy: the other members at their first value
                out.update(d * stride for d in range(m.size))
            else:
                digit = (self.feasible // stride) % m.size
                out.update(int(i) for i in np.unique(digit, return_index=True)[1])
        return sorted(out)

    def label(self, k: int) -> str:
        return ", ".join(f"{m.ref}={fmt_value(v)}" for m, v in zip(self.members, self.value(k), strict=True))

    def describe(self) -> str:
        texts = "; ".join(c.text for c in self.constraints)
        if self.feasible is None:
            return f"{self.grid_size:,} combinations, each draw checked against {texts}"
        return f"{self.size:,} of {self.grid_size:,} combinations satisfy {texts}"


def _as_array(m: ParamDim) -> np.ndarray:
    vals = m.values
    if not all(isinstance(v, int | float) for v in vals):  # bools are ints
        bad = next(v for v in vals if not isinstance(v, int | float))
        raise ValueError(f"{m.ref} has a non-numeric value {bad!r}; constraints compare numbers")
    return np.asarray(vals, dtype=np.float64)


@dataclass
class ChoiceDim(Dimension):
    """A structural dimension: a list of labelled choices (the payload is interpreted by the planner)."""

    labels: list[str] = field(default_factory=list)
    choices: list[Any] = field(default_factory=list)

    def label(self, k: int) -> str:
        return self.labels[k]

    def describe(self) -> str:
        if len(self.labels) <= 6:
            return ", ".join(self.labels)
        return ", ".join(self.labels[:5]) + f", ... ({len(self.labels)})"


def digits_of(index: int, sizes: list[int]) -> list[int]:
    """Mixed-radix digits of ``index`` (last size varies fastest)."""
    out = [0] * len(sizes)
    for pos in range(len(sizes) - 1, -1, -1):
        index, out[pos] = divmod(index, sizes[pos])
    return out


def index_of(digits: list[int], sizes: list[int]) -> int:
    index = 0
    for d, s in zip(digits, sizes, strict=True):
        index = index * s + d
    return index


def product(sizes: list[int]) -> int:
    total = 1
    for s in sizes:
        total *= s
    return total
