"""Entry planning by execution schedule: TWAP over bars."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..registration import register
from ..workers import ENTRY_MARKET, Context, Opportunities, PlanDraft, PlanningWorker, PluginParams


def bar_minutes(ctx: Context) -> np.ndarray:
    """The bar length in minutes as known at each bar: the smallest positive spacing between consecutive
    timestamps up to that bar (weekends and holidays only make spacings longer).  Causal: a decision at
    bar t must not see that later bars come closer together; 1440 (daily) at the first bar, where no
    spacing is known yet."""

    def compute() -> np.ndarray:
        dt = np.diff(ctx.data.time).astype("timedelta64[s]").astype(np.int64) / 60.0
        known = np.minimum.accumulate(np.concatenate(([np.inf], np.where(dt > 0, dt, np.inf))))
        return np.where(np.isfinite(known), known, 1440.0)

    return ctx.memo(("bar_minutes",), compute)


class TwapEntryParams(PluginParams):
    duration_minutes: int = Field(
        15, ge=1, le=525_600, description="execution window in minutes, sliced into one order per bar"
    )
    max_slices: int = Field(100, ge=1, le=10_000, description="upper bound on the number of slices")


@register
class TwapEntry(PlanningWorker[TwapEntryParams]):
    """Time-weighted entry: the order is split into equal slices, one per bar, over ``duration_minutes``.

    A backtest on bars cannot trade finer than one bar: slices = max(1, ceil(duration_minutes / bar
    length in minutes)), the bar length being the one known at the opportunity's bar (no lookahead), the
    first filling like a market entry (next open, or this close with
    ``fill_at: close``) and each next one at the open of the following bar (the position's entry price
    is the average).  So on daily bars 15 minutes is ONE slice, i.e. a plain market entry, and on hourly
    bars 240 minutes is 4 slices over 4 bars; the result carries a note when the TWAP collapses to one
    slice."""

    name = "twap_entry"
    subtype = "twap"
    phase = "entry_planning"

    def slices(self, ctx: Context) -> np.ndarray:
        """Slices per bar, from the bar length known at that bar."""
        k = np.ceil(self.params.duration_minutes / bar_minutes(ctx) - 1e-9)
        return np.clip(k, 1, self.params.max_slices).astype(np.int64)

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        draft.entry_type = draft.fill(ENTRY_MARKET, np.int8)
        draft.slices = self.slices(ctx)[opps.bars]

    def notes(self, ctx: Context) -> list[str]:
        if len(ctx.data) == 0 or self.slices(ctx).max() > 1:
            return []
        minutes = float(bar_minutes(ctx)[-1])
        return [
            f"twap_entry: duration_minutes={self.params.duration_minutes} on {minutes:g}-minute "
            "bars is 1 slice: executed as a single market order (a backtest cannot slice below one bar)"
        ]
