"""backtesting.py's tutorial SmaCross: the reference strategy every comparison with backtesting.py uses
(tests/engine/test_reference_backtesting.py, benchmarks/engine.py and benchmarks/meta.py).  At module
level, so the process pool of ``Backtest.optimize`` can pickle it."""

from __future__ import annotations

from backtesting import Strategy
from backtesting.lib import crossover
from backtesting.test import SMA


class SmaCross(Strategy):
    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()
