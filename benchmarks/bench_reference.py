"""Placeholder asv suite: the NumPy reference step of every rule (the full suite, with
the compiled backends and their speedups, arrives with the benchmarks issue)."""
import numpy as np

import fastopt

RULES = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "Nadam"]


class ReferenceStep:
    params = (RULES, [1_000, 100_000])
    param_names = ["rule", "n"]

    def setup(self, rule, n):
        rng = np.random.default_rng(0)
        self.p = rng.standard_normal(n)
        self.g = rng.standard_normal(n)
        self.opt = getattr(fastopt, rule)(self.p, backend="numpy")

    def time_step(self, rule, n):
        self.opt.step(self.g)
