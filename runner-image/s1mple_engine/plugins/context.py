"""Context workers: causal indicator features, published into ``ctx.features`` by name."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..registration import register
from ..workers import Context, ContextWorker, PluginParams

Source = Literal["close", "open", "high", "low", "hl2", "hlc3"]


class EmaParams(PluginParams):
    period: int = Field(20, ge=2, le=2000, description="lookback in bars (alpha = 2/(period+1))")
    source: Source = Field("close", description="price series: close|open|high|low|hl2|hlc3")


@register
class Ema(ContextWorker[EmaParams]):
    """Exponential moving average of a price series (publishes ``ema_<period>`` and ``ema``)."""

    name = "ema"
    subtype = "indicator"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        v = ctx.ema(self.params.period, self.params.source)
        return {f"ema_{self.params.period}": v, "ema": v}


class AtrParams(PluginParams):
    period: int = Field(14, ge=1, le=1000, description="Wilder smoothing length in bars")


@register
class Atr(ContextWorker[AtrParams]):
    """Average True Range, Wilder smoothing, in price units (publishes ``atr_<period>`` and ``atr``)."""

    name = "atr"
    subtype = "volatility"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        v = ctx.atr(self.params.period)
        return {f"atr_{self.params.period}": v, "atr": v}


class RsiParams(PluginParams):
    period: int = Field(14, ge=2, le=1000, description="Wilder smoothing length in bars")
    source: Source = Field("close", description="price series: close|open|high|low|hl2|hlc3")


@register
class Rsi(ContextWorker[RsiParams]):
    """Relative Strength Index 0..100, Wilder smoothing (publishes ``rsi_<period>`` and ``rsi``)."""

    name = "rsi"
    subtype = "momentum"

    def compute(self, ctx: Context) -> dict[str, np.ndarray]:
        v = ctx.rsi(self.params.period, self.params.source)
        return {f"rsi_{self.params.period}": v, "rsi": v}
