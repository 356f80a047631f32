"""A team's own plugin, shipped in the runner image through S1MPLE_PLUGINS: for the operator's tests of a
run that raises. It behaves like ma_crossover except that it raises for slow lengths it cannot handle."""

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
