"""A team's own plugins, shipped in the runner image through S1MPLE_PLUGINS, for the operator's tests:
fragile_crossover raises for slow lengths it cannot handle (a run that raises); slow_crossover sleeps in
each run (a pod to disturb mid-chunk).  Both behave like ma_crossover otherwise."""

import time

from pydantic import Field

from s1mple_engine.plugins.opportunity import MaCrossover
from s1mple_engine.registry import register


@register
class FragileCrossover(MaCrossover):
    """ma_crossover that raises RuntimeError when ``slow`` is in ``fail_on_slow`` (a deliberate bug)."""

    name = "fragile_crossover"

    class Params(MaCrossover.Params):
        fail_on_slow: list[int] = Field(default_factory=list, description="slow lengths that raise (bars)")

    def detect(self, ctx):
        if self.params.slow in self.params.fail_on_slow:
            raise RuntimeError(f"fragile_crossover cannot handle slow={self.params.slow}")
        return super().detect(ctx)


@register
class SlowCrossover(MaCrossover):
    """ma_crossover that takes ``delay`` seconds per run: a chunk long enough to disturb mid-way."""

    name = "slow_crossover"

    class Params(MaCrossover.Params):
        delay: float = Field(default=0.0, ge=0, le=10, description="seconds each detection sleeps")

    def detect(self, ctx):
        time.sleep(self.params.delay)
        return super().detect(ctx)
