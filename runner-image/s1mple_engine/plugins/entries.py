"""Entry planning by execution schedule: TWAP over bars."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from ..registry import register
from ..workers import ENTRY_MARKET, Context, Opportunities, PlanDraft, PlanningWorker, PluginParams


def bar_minutes(ctx: Context) -> float:
    """The bar length in minutes: the smallest positive spacing between consecutive timestamps (weekends
    and holidays only make spacings longer); 1440 (daily) when there are fewer than two bars."""

    def compute() -> float:
        dt = np.diff(ctx.data.time).astype("timedelta64[s]").astype(np.int64)
        dt = dt[dt > 0]
        return float(dt.min()) / 60.0 if len(dt) else 1440.0

    return ctx.memo(("bar_minutes",), compute)


@register
class TwapEntry(PlanningWorker):
    """Time-weighted entry: the order is split into equal slices, one per bar, over ``duration_minutes``.

    A backtest on bars cannot trade finer than one bar: slices = max(1, ceil(duration_minutes / bar
    length in minutes)), the first filling like a market entry (next open, or this close with
    ``fill_at: close``) and each next one at the open of the following bar (the position's entry price
    is the average).  So on daily bars 15 minutes is ONE slice, i.e. a plain market entry, and on hourly
    bars 240 minutes is 4 slices over 4 bars; the result carries a note when the TWAP collapses to one
    slice."""

    name = "twap_entry"
    subtype = "twap"
    phase = "entry_planning"

    class Params(PluginParams):
        duration_minutes: int = Field(
            15, ge=1, le=525_600, description="execution window in minutes, sliced into one order per bar"
        )
        max_slices: int = Field(100, ge=1, le=10_000, description="upper bound on the number of slices")

    def slices(self, ctx: Context) -> int:
        k = math.ceil(self.params.duration_minutes / bar_minutes(ctx) - 1e-9)
        return int(min(max(1, k), self.params.max_slices))

    def plan(self, ctx: Context, opps: Opportunities, draft: PlanDraft) -> None:
        draft.entry_type = draft.fill(ENTRY_MARKET, np.int8)
        draft.slices = draft.fill(self.slices(ctx), np.int64)

    def notes(self, ctx: Context) -> list[str]:
        k = self.slices(ctx)
        if k > 1:
            return []
        return [
            f"twap_entry: duration_minutes={self.params.duration_minutes} on {bar_minutes(ctx):g}-minute "
            "bars is 1 slice: executed as a single market order (a backtest cannot slice below one bar)"
        ]
