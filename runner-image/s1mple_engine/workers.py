"""The five worker categories, the two worker kinds, and the data that flows between them.

A plugin is one class: a subclass of one category base (:class:`ContextWorker`, :class:`OpportunityWorker`,
:class:`ThreatWorker`, :class:`PlanningWorker`, :class:`ExecutionWorker`) decorated with
:func:`s1mple_engine.registration.register`, parameterized by its params model (pydantic, bounds +
defaults + a description with units per field): ``class MaCrossover(OpportunityWorker[MaCrossoverParams])``.
Workers are vectorized: they see the whole series at once and must
be *causal* (output at bar t depends on bars <= t only; the no-lookahead property test checks every
registered plugin).

Worker kinds:

* **StandardWorker** – no ``events`` capability; it runs at its implicit place in the pipeline
  (context -> opportunity -> threat -> planning -> execution).
* **EventDrivenWorker** – has the ``events`` capability: a manifest of ``triggers`` (the system events
  it may run on; ``default_triggers`` are used unless the blueprint's ``triggers:`` overrides them),
  and ``wirings``: the events it ``publishes`` and the custom events it ``listens`` to.  The chain is
  validated before a run (:mod:`s1mple_engine.events`).

System events (always published, except ``on_opportunity_detected`` which needs an opportunity worker):
``on_context_ready`` (every bar, after context), ``on_opportunity_detected`` (every opportunity),
``on_ledger_update`` (every fill and every mark-to-market of an open position).  ``on_threat_detected``
is published by threat workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar, cast, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict

from . import features as F

if TYPE_CHECKING:
    from .data import MarketData

SYSTEM_EVENTS: dict[str, str] = {
    "on_context_ready": "ContextOperator: every bar, once its context features are ready",
    "on_opportunity_detected": "OpportunityOperator: every published opportunity",
    "on_ledger_update": "Ledger: every fill and every bar's mark-to-market while a position is open",
}
THREAT_EVENT = "on_threat_detected"

CATEGORIES = ("context", "opportunity", "threat", "planning", "execution")
CATEGORY_FIELD = {
    "context": "context_workers",
    "opportunity": "opportunity_workers",
    "threat": "threat_workers",
    "planning": "planning_workers",
    "execution": "execution_workers",
}
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


class PluginParams(BaseModel):
    """Base of every plugin's ``Params``: unknown keys and mistyped values are errors (strict types)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)


ParamsT = TypeVar("ParamsT", bound=PluginParams)


class Plugin(Generic[ParamsT]):
    """A worker plugin.  Class attributes form its manifest; instances hold validated params.

    Generic over its params model, so ``self.params`` has the plugin's own type: declare the model at
    module level and name it in the category base, ``class MyDetector(OpportunityWorker[MyDetectorParams])``;
    ``Params`` (the class the blueprint's params are validated with) is taken from there.
    """

    name: ClassVar[str] = ""
    category: ClassVar[str] = ""
    subtype: ClassVar[str] = ""
    phase: ClassVar[str | None] = None
    Params: ClassVar[type[PluginParams]] = PluginParams
    worker_type: ClassVar[str] = "StandardWorker"
    #: triggers this plugin may run on (the blueprint's ``triggers:`` must be a subset)
    triggers: ClassVar[tuple[str, ...]] = ()
    #: triggers from the manifest, used when the blueprint does not override them
    default_triggers: ClassVar[tuple[str, ...]] = ()
    #: wirings: events it publishes / custom events it listens to (besides its triggers)
    publishes: ClassVar[tuple[str, ...]] = ()
    listens: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Params" in cls.__dict__:
            return
        for base in cls.__dict__.get("__orig_bases__", ()):
            args = get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], PluginParams):
                cls.Params = args[0]
                return

    def __init__(self, params: ParamsT | None = None, triggers: tuple[str, ...] | None = None):
        self.params: ParamsT = params if params is not None else cast(ParamsT, self.Params())
        self.active_triggers = tuple(triggers) if triggers is not None else tuple(self.default_triggers)
        self.key = (self.name, self.params.model_dump_json())

    @classmethod
    def capabilities(cls) -> list[str]:
        return ["events"] if cls.worker_type == "EventDrivenWorker" else []

    def listened_events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.active_triggers + tuple(self.listens)))

    def __repr__(self) -> str:
        return f"{self.name}({self.params.model_dump()})"

    def notes(self, ctx: Context) -> list[str]:
        """Notes for the result about how this worker behaved on this data (e.g. a TWAP that collapses to one
        slice on coarse bars).  Default: none."""
        return []


class StandardWorker:
    """Marker mixin (list it first): runs at its implicit place in the pipeline (no ``events`` capability)."""

    worker_type: ClassVar[str] = "StandardWorker"


class EventDrivenWorker:
    """Marker mixin (list it first): has the ``events`` capability (triggers + publishes/listens wirings)."""

    worker_type: ClassVar[str] = "EventDrivenWorker"


# --------------------------------------------------------------------------------------------------------
# what flows between workers


class Context:
    """One run's view of the data: the bars, published features, and memoized indicator helpers."""

    def __init__(self, data: MarketData):
        self.data = data
        self.n = len(data)
        self.features: dict[str, np.ndarray] = {}

    def memo(self, key: Any, compute) -> Any:
        return F.memo(self.data.fingerprint, key, compute)

    def price(self, source: str = "close") -> np.ndarray:
        d = self.data
        if source in ("open", "high", "low", "close", "volume"):
            return getattr(d, source)
        if source == "hl2":
            return self.memo(("hl2",), lambda: (d.high + d.low) / 2.0)
        if source == "hlc3":
            return self.memo(("hlc3",), lambda: (d.high + d.low + d.close) / 3.0)
        raise KeyError(source)

    def sma(self, n: int, source: str = "close") -> np.ndarray:
        return self.memo(("sma", source, n), lambda: F.sma(self.price(source), n))

    def ema(self, n: int, source: str = "close") -> np.ndarray:
        return self.memo(("ema", source, n), lambda: F.ema(self.price(source), n))

    def atr(self, n: int = 14) -> np.ndarray:
        d = self.data
        return self.memo(("atr", n), lambda: F.atr(d.high, d.low, d.close, n))

    def true_range(self) -> np.ndarray:
        d = self.data
        return self.memo(("tr",), lambda: F.true_range(d.high, d.low, d.close))

    def rsi(self, n: int = 14, source: str = "close") -> np.ndarray:
        return self.memo(("rsi", source, n), lambda: F.rsi(self.price(source), n))


class Signals(NamedTuple):
    """An opportunity worker's causal signal events: bar index (ascending), direction (+1 long / -1 short)
    and optional per-signal metadata arrays (same length)."""

    bars: np.ndarray
    dirs: np.ndarray
    meta: dict[str, np.ndarray] = {}

    @staticmethod
    def empty() -> Signals:
        return Signals(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8), {})

    @staticmethod
    def from_masks(long: np.ndarray, short: np.ndarray, meta: dict[str, np.ndarray] | None = None) -> Signals:
        """Signals from per-bar boolean masks (long wins if both are set); meta arrays are per bar."""
        both = long | short
        bars = np.flatnonzero(both)
        dirs = np.where(long[bars], 1, -1).astype(np.int8)
        return Signals(bars.astype(np.int64), dirs, {k: v[bars] for k, v in (meta or {}).items()})


class Opportunities(NamedTuple):
    """Published opportunities (output of the OpportunityOperator), sorted by bar then worker order."""

    bars: np.ndarray  # int64
    dirs: np.ndarray  # int8
    source: np.ndarray  # int16: index of the opportunity worker that produced it
    ref: np.ndarray  # close at the opportunity bar (the planners' reference price)
    meta: dict[str, np.ndarray]
    #: 0 = live; 1 = lost a same-bar conflict to an earlier worker (COLLECT_ALL): recorded, not planned
    pre_status: np.ndarray

    def __len__(self) -> int:
        return len(self.bars)


ENTRY_MARKET, ENTRY_LIMIT, ENTRY_STOP = 0, 1, 2
ENTRY_TYPES = {ENTRY_MARKET: "market", ENTRY_LIMIT: "limit", ENTRY_STOP: "stop"}
HOLD, CLOSE, REVERSE = 0, 1, 2
SIZE_FRACTION, SIZE_RISK, SIZE_AMOUNT = 0, 1, 2


class PlanDraft:
    """A trade plan per opportunity, built by the planning phases (each field: array of len m; None = unset).

    * ``entry_type`` (ENTRY_MARKET/LIMIT/STOP), ``entry_level`` (price for limit/stop), ``valid_bars``
      (how many bars a limit/stop entry stays working);
    * ``stop_dist`` / ``tp_dist``: stop-loss / take-profit distance in price units from the fill price
      (NaN = none);
    * ``on_opposite``: what an opposite opportunity does to the open position (HOLD, CLOSE, REVERSE);
    * ``size_kind`` (SIZE_FRACTION: ``size_value`` = fraction of equity; SIZE_RISK: ``size_value`` =
      fraction of equity risked over ``size_risk_dist``, the distance the sizer saw), ``size_cap``
      (max notional as a fraction of equity), ``integer_units``; SIZE_AMOUNT: ``size_value`` = cash
      amount per entry (capped by the available cash);
    * ``slices``: a market entry split into this many equal slices over consecutive bars (TWAP; 1 = one
      fill); ``scale_in``: a same-direction opportunity adds to the open position instead of being skipped;
    * ``threat_scale`` / ``threat_window`` / ``threat_min_sev``: units x ``threat_scale`` when a threat of
      severity index >= ``threat_min_sev`` (into SEVERITIES) was detected within ``threat_window`` bars up
      to the opportunity bar (1.0 = no adjustment).
    """

    FIELDS = (
        "entry_type",
        "entry_level",
        "valid_bars",
        "stop_dist",
        "tp_dist",
        "on_opposite",
        "size_kind",
        "size_value",
        "size_cap",
        "size_risk_dist",
        "integer_units",
        "slices",
        "scale_in",
        "threat_scale",
        "threat_window",
        "threat_min_sev",
    )
    __slots__ = FIELDS + ("m",)
    entry_type: np.ndarray | None
    entry_level: np.ndarray | None
    valid_bars: np.ndarray | None
    stop_dist: np.ndarray | None
    tp_dist: np.ndarray | None
    on_opposite: np.ndarray | None
    size_kind: np.ndarray | None
    size_value: np.ndarray | None
    size_cap: np.ndarray | None
    size_risk_dist: np.ndarray | None
    integer_units: np.ndarray | None
    slices: np.ndarray | None
    scale_in: np.ndarray | None
    threat_scale: np.ndarray | None
    threat_window: np.ndarray | None
    threat_min_sev: np.ndarray | None

    def __init__(self, m: int):
        self.m = m
        for f in self.FIELDS:
            setattr(self, f, None)

    def fill(self, value: float | int | bool, dtype=np.float64) -> np.ndarray:
        return np.full(self.m, value, dtype=dtype)

    def merge_missing(self, other: PlanDraft) -> None:
        """Take every field ``other`` set and this draft has not (COLLECT_ALL: first worker wins)."""
        for f in self.FIELDS:
            if getattr(self, f) is None and getattr(other, f) is not None:
                setattr(self, f, getattr(other, f))


@dataclass(frozen=True, slots=True)
class Plan:
    """The finished plan the simulation follows: every :class:`PlanDraft` field set (defaults filled in by
    ``operators.finalize_plan``), one array of len m each."""

    entry_type: np.ndarray
    entry_level: np.ndarray
    valid_bars: np.ndarray
    stop_dist: np.ndarray
    tp_dist: np.ndarray
    on_opposite: np.ndarray
    size_kind: np.ndarray
    size_value: np.ndarray
    size_cap: np.ndarray
    size_risk_dist: np.ndarray
    integer_units: np.ndarray
    slices: np.ndarray
    scale_in: np.ndarray
    threat_scale: np.ndarray
    threat_window: np.ndarray
    threat_min_sev: np.ndarray


# --------------------------------------------------------------------------------------------------------
# category bases


class ContextWorker(Plugin[ParamsT]):
    """Computes causal feature arrays over the whole series; publishes them by name into ``ctx.features``."""

    category = "context"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        raise NotImplementedError


class OpportunityWorker(Plugin[ParamsT]):
    """Detects opportunities: causal signal events (bar, direction, metadata), vectorized."""

    category = "opportunity"
    #: bars a signal keeps "agreeing" when this worker confirms another's opportunity (CHAIN_THROUGH)
    confirm_window: ClassVar[int] = 0

    def detect(self, ctx: Context) -> Signals:
        raise NotImplementedError

    def bias(self, ctx: Context) -> np.ndarray:
        """Direction this worker agrees with at every bar (+1/-1/0), used by CHAIN_THROUGH confirmation.

        Default: the direction of its latest signal, if that signal is at most ``confirm_window`` bars old
        (a ``confirm_window`` param overrides the class default).
        """
        sig = self.detect(ctx)
        window = int(getattr(self.params, "confirm_window", self.confirm_window))
        out = np.zeros(ctx.n, dtype=np.int8)
        if len(sig.bars) == 0:
            return out
        idx = np.full(ctx.n, -1, dtype=np.int64)
        idx[sig.bars] = np.arange(len(sig.bars))
        last = np.maximum.accumulate(idx)  # index of the latest signal at or before t
        has = last >= 0
        age = np.arange(ctx.n) - np.where(has, sig.bars[np.maximum(last, 0)], 0)
        ok = has & (age <= window)
        out[ok] = sig.dirs[last[ok]]
        return out


class ThreatWorker(EventDrivenWorker, Plugin[ParamsT]):
    """Detects threats.  ``kind`` "market": per-bar flags from the bars (``flags``); "ledger": breaches found
    in the equity curve (``ledger_scan``).  Every threat worker publishes ``on_threat_detected``."""

    category = "threat"
    kind: ClassVar[str] = "market"
    threat_type: ClassVar[str] = "THREAT"
    publishes = (THREAT_EVENT,)

    @property
    def severity(self) -> str:
        return str(getattr(self.params, "severity", "MEDIUM"))

    def flags(self, ctx: Context) -> np.ndarray:
        """Market threats: bool per bar, True while the threat condition holds (causal)."""
        raise NotImplementedError

    def ledger_scan(self, ctx: Context, eqx: np.ndarray, a: int, b: int, last_day: int) -> list[int]:
        """Ledger threats: onset bars in [a, b], ascending, given ``eqx`` (``eqx[0]`` = initial cash,
        ``eqx[t+1]`` = equity at the close of bar t, valid up to b).  ``last_day`` is the day of the
        previous onset."""
        raise NotImplementedError


class PlanningWorker(Plugin[ParamsT]):
    """Plans trades for all opportunities at once: fills fields of a :class:`PlanDraft`."""

    category = "planning"

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        raise NotImplementedError


class ExecutionWorker(Plugin[ParamsT]):
    """Manages open positions; ``configure`` returns the rules the simulation applies (see simulate/)."""

    category = "execution"

    def configure(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError
